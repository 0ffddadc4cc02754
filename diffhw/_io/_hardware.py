"""Hardware presets and user TOML files -> `Hardware` (with its tiers, placement, near
memory and network options).

Human units live in the files (TFLOP/s, GB, TB/s, GB/s, us); they are converted to SI
here, once. Every loader checks what it reads and raises `InputError` naming the file,
the field, the value and what is allowed.
"""

from .. import units
from .._errors import InputError
from .._hardware._collective_algorithms import ALLREDUCE_ALGORITHMS
from .._hardware._collectives import NetworkOptions
from .._hardware._hardware import TOPOLOGIES, Hardware
from .._hardware._memory import DATA_CLASSES, Placement
from .._hardware._near_memory import NearMemory
from .._hardware._profile import Profile
from ._files import number, preset_names, read_hardware_toml, resolve, unknown_keys
from ._profiles import load_profile
from ._technology import tier_from_technology

_HW_TOP = {"name", "description", "vendor", "default_chips", "profile", "compute", "memory",
           "network", "power", "physical", "tiers", "placement", "tier_access", "based_on", "near_memory"}
_NEAR_KEYS = {"tier", "flop_tflops", "pj_per_flop", "bandwidth_multiple", "pj_per_bit", "shard_mb",
              "offload_fraction", "power_density_w_per_mm2", "footprint_mm2", "name",
              "bandwidth_density_gb_s_per_mm2", "capacity_penalty", "price_multiplier", "logic_die"}
_TIER_KEYS = {"name", "technology", "devices", "prefetch_buffer_mb"}
_HW_COMPUTE = {"fp32_tflops", "bf16_tflops", "fp8_tflops", "int8_tops", "fp4_tflops"}
_HW_MEMORY = {"capacity_gb", "bandwidth_tb_s", "type", "sram_mb"}
_HW_NETWORK = {"link_bandwidth_gb_s", "topology", "link_latency_us", "message_latency_us", "algorithm",
               "in_network_reduction", "switch_radix", "torus_dims", "packet_sram_fraction",
               "sram_landing_latency_us", "dram_landing_latency_us", "straggler_scale_us",
               "straggler_timeout_us"}
_HW_POWER = {"tdp_w"}
_HW_PHYSICAL = {"process", "die_area_mm2", "transistors_billion", "launch_price_usd"}

# Defaults for fields a user's file may leave out, with their source.
#: Per-hop latency: a cut-through switch hop is 0.1-0.6 us (PAPER.md, latency anchors).
DEFAULT_LINK_LATENCY_US = 0.5
#: Per-message latency: NVLink small messages ~1-2 us end to end; a calibrated
#: HGX-H100 collective model uses ~0.94 us (PAPER.md, latency anchors).
DEFAULT_MESSAGE_LATENCY_US = 1.0


def list_hardware():
    return preset_names("hardware", ".toml")


def load_hardware(name_or_path, profile=None) -> Hardware:
    """A `Hardware` from a preset name (``"h100-sxm"``) or a TOML file a user wrote.

    The TOML schema is that of the shipped presets (see ``diffhw/data/hardware/``):
    ``[compute]`` dense peaks in TFLOP/s (``fp32_tflops``, ``bf16_tflops`` required,
    ``fp8_tflops``, ``int8_tops``, ``fp4_tflops``), ``[memory]`` ``capacity_gb``,
    ``bandwidth_tb_s``, ``sram_mb``; ``[network]`` ``link_bandwidth_gb_s`` (one
    direction), ``topology``, ``link_latency_us``, ``message_latency_us``; ``[power]``
    ``tdp_w``. A chip without a format runs it on the next wider one: fp4 -> fp8 ->
    bf16, int8 -> fp8 -> bf16; a missing fp32 peak is taken as bf16 / 4 (FP32 matrix
    work emulated in several BF16 passes) and marked so.

    `profile` (a name, a file or a `Profile`) overrides the file's ``profile = "..."``,
    whose default is ``"default"``.
    """
    path = resolve("hardware", ".toml", name_or_path)
    where = str(path)
    d = read_hardware_toml(path)
    unknown_keys(where, d, _HW_TOP)
    tables = {}
    for key, allowed, required in (
        ("compute", _HW_COMPUTE, {"bf16_tflops"}),
        ("memory", _HW_MEMORY, {"capacity_gb", "bandwidth_tb_s"}),
        ("network", _HW_NETWORK, {"link_bandwidth_gb_s"}),
        ("power", _HW_POWER, set()),
        ("physical", _HW_PHYSICAL, set()),
    ):
        t = d.get(key, {})
        if not isinstance(t, dict):
            raise InputError(f"{where}: {key}", t, "a TOML table")
        unknown_keys(f"{where} [{key}]", t, allowed)
        for r in sorted(required):
            if r not in t:
                raise InputError(f"{where} [{key}]: {r}", None, "a value (the key is missing)")
        tables[key] = t
    c, m, n, pw = tables["compute"], tables["memory"], tables["network"], tables["power"]

    def tf(k):
        return number(f"{where} [compute]", k, c[k]) * units.TFLOP_PER_S if k in c else None

    bf16 = tf("bf16_tflops")
    fp8 = tf("fp8_tflops") or bf16
    int8 = tf("int8_tops") or fp8
    fp4 = tf("fp4_tflops") or fp8
    fp32 = tf("fp32_tflops") or bf16 / 4.0
    topology = n.get("topology", "switch")
    if topology not in TOPOLOGIES:
        raise InputError(f"{where} [network]: topology", topology, "one of " + ", ".join(TOPOLOGIES))
    chips = d.get("default_chips", 1)
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise InputError(f"{where}: default_chips", chips, "a whole number >= 1")
    if isinstance(profile, Profile):
        prof = profile
    else:
        prof = load_profile(profile or d.get("profile", "default"))
    tiers, placement_, access = _tiers(where, d)
    near = _near_memory(where, d, ["main"] + [t.name for t in tiers])
    network = _network_options(f"{where} [network]", n)
    return Hardware(
        flop_per_s_fp32=fp32,
        flop_per_s_bf16=bf16,
        flop_per_s_fp8=fp8,
        flop_per_s_int8=int8,
        flop_per_s_fp4=fp4,
        memory_capacity_bytes=number(f"{where} [memory]", "capacity_gb", m["capacity_gb"]) * units.GB,
        memory_bandwidth_bytes_per_s=number(f"{where} [memory]", "bandwidth_tb_s", m["bandwidth_tb_s"])
        * units.TB_PER_S,
        sram_bytes=number(f"{where} [memory]", "sram_mb", m.get("sram_mb", 0.0), allow_zero=True) * units.MB,
        link_bandwidth_bytes_per_s=number(
            f"{where} [network]", "link_bandwidth_gb_s", n["link_bandwidth_gb_s"]
        ) * units.GB_PER_S,
        link_latency_s=number(
            f"{where} [network]", "link_latency_us", n.get("link_latency_us", DEFAULT_LINK_LATENCY_US),
            allow_zero=True,
        ) * units.US,
        message_latency_s=number(
            f"{where} [network]", "message_latency_us",
            n.get("message_latency_us", DEFAULT_MESSAGE_LATENCY_US), allow_zero=True,
        ) * units.US,
        tdp_w=number(f"{where} [power]", "tdp_w", pw.get("tdp_w", 0.0), allow_zero=True),
        profile=prof,
        tiers=tiers,
        placement=placement_,
        near_memory=near,
        network=network,
        tier_access=access,
        topology=topology,
        default_chips=chips,
        name=str(d.get("name", path.stem)),
        description=str(d.get("description", "")),
    )


def _network_options(w, n):
    """`NetworkOptions` from the optional keys of a ``[network]`` table."""

    algo = n.get("algorithm", "auto")
    if algo not in ALLREDUCE_ALGORITHMS:
        raise InputError(f"{w}: algorithm", algo, "one of " + ", ".join(ALLREDUCE_ALGORITHMS))
    innet = n.get("in_network_reduction", False)
    if not isinstance(innet, bool):
        raise InputError(f"{w}: in_network_reduction", innet, "true or false")
    us = units.US
    stragglers = "straggler_scale_us" in n
    return NetworkOptions(
        switch_radix=number(w, "switch_radix", n.get("switch_radix", 64.0)),
        torus_dims=number(w, "torus_dims", n.get("torus_dims", 6.0)),
        packet_sram_fraction=number(w, "packet_sram_fraction", n.get("packet_sram_fraction", 0.0),
                                  allow_zero=True, fraction=True) if n.get("packet_sram_fraction", 0.0) else 0.0,
        sram_landing_latency_s=number(w, "sram_landing_latency_us", n.get("sram_landing_latency_us", 0.0),
                                    allow_zero=True) * us,
        dram_landing_latency_s=number(w, "dram_landing_latency_us", n.get("dram_landing_latency_us", 0.0),
                                    allow_zero=True) * us,
        straggler_scale_s=number(w, "straggler_scale_us", n.get("straggler_scale_us", 0.0), allow_zero=True) * us,
        straggler_timeout_s=number(w, "straggler_timeout_us", n.get("straggler_timeout_us", 1e6)) * us,
        algorithm=algo,
        in_network_reduction=innet,
        stragglers=stragglers,
    )


def _near_memory(where, d, tier_names):
    """The ``[near_memory]`` table: PNM/PIM/3D logic on one tier."""

    t = d.get("near_memory")
    if t is None:
        return None
    w = f"{where} [near_memory]"
    if not isinstance(t, dict):
        raise InputError(w, t, "a table")
    unknown_keys(w, t, _NEAR_KEYS)
    for k in ("flop_tflops", "pj_per_flop", "bandwidth_multiple", "pj_per_bit", "shard_mb"):
        if k not in t:
            raise InputError(f"{w}: {k}", None, "a value (the key is missing)")
    if float(t.get("capacity_penalty", 0.0)) >= 1.0:
        raise InputError(f"{w}: capacity_penalty", t["capacity_penalty"], "a fraction in [0, 1)")
    tier = t.get("tier", "main")
    if tier not in tier_names:
        raise InputError(f"{w}: tier", tier, "one of " + ", ".join(tier_names))
    return NearMemory(
        flop_per_s=number(w, "flop_tflops", t["flop_tflops"]) * units.TFLOP_PER_S,
        j_per_flop=number(w, "pj_per_flop", t["pj_per_flop"]) * units.PJ,
        bandwidth_multiple=number(w, "bandwidth_multiple", t["bandwidth_multiple"]),
        j_per_byte=number(w, "pj_per_bit", t["pj_per_bit"]) * units.PJ * units.BITS_PER_BYTE,
        shard_bytes=number(w, "shard_mb", t["shard_mb"]) * units.MB,
        offload_fraction=number(w, "offload_fraction", t.get("offload_fraction", 1.0), allow_zero=True, fraction=True),
        power_density_w_per_mm2=number(w, "power_density_w_per_mm2", t.get("power_density_w_per_mm2", 1e9)),
        footprint_mm2=number(w, "footprint_mm2", t.get("footprint_mm2", 1.0)),
        bandwidth_density_bytes_per_s_per_mm2=number(
            w, "bandwidth_density_gb_s_per_mm2", t.get("bandwidth_density_gb_s_per_mm2", 0.0), allow_zero=True
        ) * units.GB_PER_S,
        capacity_penalty=number(w, "capacity_penalty", t.get("capacity_penalty", 0.0), allow_zero=True),
        price_multiplier=number(w, "price_multiplier", t.get("price_multiplier", 1.0)),
        logic_die=number(w, "logic_die", t.get("logic_die", 1.0), allow_zero=True, fraction=True),
        tier=tier_names.index(tier),
        name=str(t.get("name", "near-memory")),
    )


def _tiers(where, d):
    """Extra memory tiers (``[[tiers]]``) and the ``[placement]`` of data classes."""

    raw = d.get("tiers", [])
    if not isinstance(raw, list):
        raise InputError(f"{where}: tiers", raw, "an array of tables ([[tiers]])")
    tiers, names = [], ["main"]
    for i, t in enumerate(raw):
        w = f"{where} [[tiers]] #{i + 1}"
        if not isinstance(t, dict):
            raise InputError(w, t, "a table")
        unknown_keys(w, t, _TIER_KEYS)
        for k in ("name", "technology", "devices"):
            if k not in t:
                raise InputError(f"{w}: {k}", None, "a value (the key is missing)")
        if t["name"] in names:
            raise InputError(f"{w}: name", t["name"], "a name not used by another tier (or 'main')")
        buf = t.get("prefetch_buffer_mb")
        buf = None if buf is None else number(w, "prefetch_buffer_mb", buf, allow_zero=True) * units.MB
        tiers.append(tier_from_technology(str(t["name"]), str(t["technology"]), t["devices"], buf, w))
        names.append(str(t["name"]))
    access = d.get("tier_access", "parallel")
    if access not in ("parallel", "serial"):
        raise InputError(f"{where}: tier_access", access, "parallel or serial")
    pl = d.get("placement")
    if pl is None:
        return tuple(tiers), None, access
    w = f"{where} [placement]"
    if not isinstance(pl, dict):
        raise InputError(w, pl, "a table of fraction lists")
    unknown_keys(w, pl, DATA_CLASSES)
    rows = []
    for c in DATA_CLASSES:
        row = pl.get(c, [1.0] + [0.0] * len(tiers))
        if not isinstance(row, list) or len(row) != len(names):
            raise InputError(f"{w}: {c}", row, f"a list of {len(names)} fractions, one per tier ({', '.join(names)})")
        vals = [number(w, f"{c}[{j}]", x, allow_zero=True) for j, x in enumerate(row)]
        if abs(sum(vals) - 1.0) > 1e-6:
            raise InputError(f"{w}: {c}", row, "fractions that add up to 1")
        rows.append(vals)
    return tuple(tiers), Placement(rows), access


def hardware_description(name):
    return read_hardware_toml(resolve("hardware", ".toml", name)).get("description", "")
