"""Hardware presets and user TOML files -> `Hardware` (with its tiers, placement, near
memory and network options).

Human units live in the files (TFLOP/s, GB, TB/s, GB/s, us); they are converted to SI
here, once. Every loader checks what it reads and raises `InputError` naming the file,
the field, the value and what is allowed.
"""

import dataclasses

from .. import units
from .._errors import InputError
from .._hardware._collective_algorithms import ALLREDUCE_ALGORITHMS
from .._hardware._collectives import NetworkOptions, ScaleOut
from .._hardware._hardware import REFERENCE_MATMUL_EFFICIENCY, TOPOLOGIES, Hardware
from .._hardware._memory import DATA_CLASSES, Placement
from .._hardware._near_memory import NearMemory
from .._hardware._profile import Profile
from ._files import number, preset_names, range_text, read_hardware_toml, resolve, string, unknown_keys
from ._profiles import load_profile
from ._technology import tier_from_technology

_HW_TOP = {"name", "description", "vendor", "default_chips", "profile", "compute", "memory",
           "network", "power", "physical", "tiers", "placement", "tier_access", "based_on", "near_memory",
           "scale_out"}
_HW_SCALE_OUT = {"domain_chips", "nic_gb_s", "latency_us"}
_NEAR_KEYS = {"tier", "flop_tflops", "pj_per_flop", "bandwidth_multiple", "pj_per_bit", "shard_mb",
              "offload_fraction", "power_density_w_per_mm2", "footprint_mm2", "name",
              "bandwidth_density_gb_s_per_mm2", "capacity_penalty", "price_multiplier", "logic_die"}
_TIER_KEYS = {"name", "technology", "devices", "prefetch_buffer_mb", "buffered_append_fraction", "endurance_cycles"}
_HW_COMPUTE = {"fp32_tflops", "bf16_tflops", "fp8_tflops", "int8_tops", "fp4_tflops", "matmul_efficiency"}
_HW_MEMORY = {"capacity_gb", "bandwidth_tb_s", "type", "sram_mb"}
_HW_NETWORK = {"link_bandwidth_gb_s", "topology", "link_latency_us", "message_latency_us", "algorithm",
               "in_network_reduction", "switch_radix", "torus_dims", "packet_sram_fraction",
               "sram_landing_latency_us", "dram_landing_latency_us", "straggler_scale_us",
               "straggler_timeout_us"}
_HW_POWER = {"tdp_w"}
_HW_PHYSICAL = {"process", "die_area_mm2", "transistors_billion", "launch_price_usd"}

#: Physical range of each number a hardware file may hold, in the file's unit: field ->
#: (lo, hi, unit). Each is far wider than any real or plausible chip, so only a typo or a
#: unit slip is refused (instead of reaching the model as NaN/inf); where the loader
#: allows 0 (an optional feature left out) it is allowed as well as the range.
BOUNDS = {
    # [compute], [near_memory]: shipped 2.8 (phone NPU fp32) .. 62,500 (Cerebras WSE-3 bf16); 1 GFLOP/s .. 1 EFLOP/s
    "fp32_tflops": (1e-3, 1e6, "TFLOP/s"),
    "bf16_tflops": (1e-3, 1e6, "TFLOP/s"),
    "fp8_tflops": (1e-3, 1e6, "TFLOP/s"),
    "int8_tops": (1e-3, 1e6, "TOP/s"),
    "fp4_tflops": (1e-3, 1e6, "TFLOP/s"),
    "flop_tflops": (1e-3, 1e6, "TFLOP/s"),
    # measured 0.514 (MI300X) .. 0.869 (A100 SXM); a share of the peak, from 1%
    "matmul_efficiency": (0.01, 1.0, "of the bf16 peak"),
    # [memory]: shipped 0.23 GB (Groq LPU SRAM) .. 384 GB per chip; 1 MB .. 1 PB
    "capacity_gb": (1e-3, 1e6, "GB"),
    # shipped 0.077 (phone) .. 21,000 TB/s (WSE-3 on-wafer SRAM); 1 MB/s .. 1 EB/s
    "bandwidth_tb_s": (1e-6, 1e6, "TB/s"),
    # shipped 6 (V100) .. 44,000 MB (WSE-3's 44 GB of SRAM); up to 1 TB of SRAM
    "sram_mb": (0.0, 1e6, "MB"),
    # [network]: shipped 1.25 .. 900 GB/s per link; 1 MB/s .. 1 PB/s
    "link_bandwidth_gb_s": (1e-3, 1e6, "GB/s"),
    # latencies: shipped 0.05 .. 2 us; up to 1 s
    "link_latency_us": (0.0, 1e6, "us"),
    "message_latency_us": (0.0, 1e6, "us"),
    "sram_landing_latency_us": (0.0, 1e6, "us"),
    "dram_landing_latency_us": (0.0, 1e6, "us"),
    "straggler_scale_us": (0.0, 1e6, "us"),
    # a collective's timeout: default 1e6 us (1 s); NCCL's own is 10-30 min; up to ~3 h
    "straggler_timeout_us": (1e-3, 1e10, "us"),
    # switch ports: default 64; below 8 no real switch, and at <= 4 the fat-tree/dragonfly formulas divide by 0
    "switch_radix": (8.0, 1e6, "ports"),
    # torus dimensions: default 6; 64 dimensions of side 2 already hold 2**64 chips
    "torus_dims": (1.0, 64.0, "dimensions"),
    # [scale_out]: chips per scale-up domain, shipped 8 (HGX) .. 72 (NVL72); NIC per chip, shipped 50 .. 100 GB/s
    # (400-800 Gb/s); latency of one message between domains, shipped 2 us
    "domain_chips": (1.0, 1e6, "chips"),
    "nic_gb_s": (1e-3, 1e6, "GB/s"),
    "latency_us": (0.0, 1e6, "us"),
    # [power]: shipped 72 (L4) .. 23,000 W (a whole CS-3 system); up to 1 MW
    "tdp_w": (0.0, 1e6, "W"),
    # [physical]: shipped 294 .. 46,225 mm2 (WSE-3, a whole wafer); 1 mm2 .. 1 m2
    "die_area_mm2": (1.0, 1e6, "mm2"),
    # shipped 21 .. 4,000 billion (WSE-3); 1 million .. 1e15 transistors
    "transistors_billion": (1e-3, 1e6, "billion"),
    # shipped $1,599 .. $2.5M (a whole CS-3 system); up to $100M
    "launch_price_usd": (0.0, 1e8, "USD"),
    # default_chips: shipped 1 .. 72 (GB200 NVL72); up to a million-chip cluster
    "default_chips": (1.0, 1e6, "chips"),
    # [[tiers]]: shipped 8 devices; fractional (relaxed) counts allowed; up to a million stacks
    "devices": (1e-3, 1e6, "devices"),
    # shipped 40 MB; up to 1 TB
    "prefetch_buffer_mb": (0.0, 1e6, "MB"),
    # the write path: 0 (every KV append programmed alone) .. 1 (appends gathered into pages; default)
    "buffered_append_fraction": (0.0, 1.0, "fraction"),
    # P/E cycles per cell, overriding the technology's: QLC ~1e2 .. SLC 1e5 (memory.toml's HBF row
    # cites the range); DRAM-like 1e15 (unlimited)
    "endurance_cycles": (1.0, 1e15, "P/E cycles"),
    # [near_memory]: shipped 0.3 .. 1 pJ/FLOP and 0.8 .. 1.22 pJ/bit; 1e-4 (beyond any device) .. 1e4 (over 100x an old CPU)
    "pj_per_flop": (1e-4, 1e4, "pJ/FLOP"),
    "pj_per_bit": (1e-4, 1e4, "pJ/bit"),
    # shipped 1 .. 8 x main-memory bandwidth
    "bandwidth_multiple": (1e-3, 1e4, "x"),
    # shipped 32 .. 48,000 MB per unit; 1 kB .. 1 PB (the capacity's own bound)
    "shard_mb": (1e-3, 1e9, "MB"),
    # default 1e9 W/mm2 (no thermal cap); shipped 0.5 W/mm2; 1 uW/mm2 .. 1e10
    "power_density_w_per_mm2": (1e-6, 1e10, "W/mm2"),
    # default 1 mm2, shipped 968 mm2; the die area's range, from 1e-3 mm2
    "footprint_mm2": (1e-3, 1e6, "mm2"),
    # hybrid bonding gives a few TB/s per mm2; up to 1e7 GB/s per mm2
    "bandwidth_density_gb_s_per_mm2": (0.0, 1e7, "GB/s per mm2"),
    # shipped 1.5; a die 1000x cheaper or dearer than its host's share
    "price_multiplier": (1e-3, 1e3, "x"),
}

# Defaults for fields a user's file may leave out, with their source.
#: Per-hop latency: a cut-through switch hop is 0.1-0.6 us (PAPER.md, latency anchors).
DEFAULT_LINK_LATENCY_US = 0.5
#: Per-message latency: NVLink small messages ~1-2 us end to end; a calibrated
#: HGX-H100 collective model uses ~0.94 us (PAPER.md, latency anchors).
DEFAULT_MESSAGE_LATENCY_US = 1.0
#: Scale-out message latency between domains: InfiniBand NDR / 400 GbE RoCE, ~1-5 us and
#: ~2-10 us end to end (https://fridayswithfaraday.com/posts/gpu-hw-nvlink-nvswitch-interconnect,
#: "The Interconnect Hierarchy" table); an RDMA message through one (rail) switch, ~2 us.
DEFAULT_SCALE_OUT_LATENCY_US = 2.0


def list_hardware():
    return preset_names("hardware", ".toml")


def _num(where, table, field, default=None, **kw):
    """`table[field]` (or `default`) checked as a number in its physical range (`BOUNDS`)."""
    lo, hi, unit = BOUNDS[field]
    value = table[field] if default is None else table.get(field, default)
    return number(where, field, value, lo=lo, hi=hi, unit=unit, **kw)


def _choice(where, field, value, allowed):
    """A text field that must be one of `allowed`."""
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{where}: {field}", value, "one of " + ", ".join(allowed))
    return value


def load_hardware(name_or_path, profile=None) -> Hardware:
    """A `Hardware` from a preset name (``"h100-sxm"``) or a TOML file a user wrote.

    The TOML schema is that of the shipped presets (see ``diffhw/data/hardware/``):
    ``[compute]`` dense peaks in TFLOP/s (``fp32_tflops``, ``bf16_tflops`` required,
    ``fp8_tflops``, ``int8_tops``, ``fp4_tflops``; ``matmul_efficiency``, the measured
    share of the bf16 peak the chip's large matrix multiplies reach, default
    `REFERENCE_MATMUL_EFFICIENCY`), ``[memory]`` ``capacity_gb``,
    ``bandwidth_tb_s``, ``sram_mb``; ``[network]`` ``link_bandwidth_gb_s`` (one
    direction), ``topology``, ``link_latency_us``, ``message_latency_us``; ``[power]``
    ``tdp_w``; optionally ``[scale_out]`` (a multi-node system's network between
    scale-up domains: ``nic_gb_s`` per chip one direction, ``latency_us``,
    ``domain_chips``, default ``default_chips``). A chip without a format runs it on the next wider one: fp4 -> fp8 ->
    bf16, int8 -> fp8 -> bf16; a missing fp32 peak is taken as bf16 / 4 (FP32 matrix
    work emulated in several BF16 passes) and marked so. Every number must lie in its
    physical range (`BOUNDS`).

    `profile` (a name, a file or a `Profile`) overrides the file's ``profile = "..."``,
    whose default is ``"default"``.
    """
    path = resolve("hardware", ".toml", name_or_path)
    where = str(path)
    d = read_hardware_toml(path)
    unknown_keys(where, d, _HW_TOP)
    name = string(where, "name", d.get("name"), path.stem)
    description = string(where, "description", d.get("description"))
    string(where, "vendor", d.get("vendor"))
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
    c, m, n, pw, ph = (tables[k] for k in ("compute", "memory", "network", "power", "physical"))
    wc, wm, wn = f"{where} [compute]", f"{where} [memory]", f"{where} [network]"

    def tf(k):
        return _num(wc, c, k) * units.TFLOP_PER_S if k in c else None

    bf16 = tf("bf16_tflops")
    fp8 = tf("fp8_tflops") or bf16
    int8 = tf("int8_tops") or fp8
    fp4 = tf("fp4_tflops") or fp8
    fp32 = tf("fp32_tflops") or bf16 / 4.0
    string(wm, "type", m.get("type"))
    string(f"{where} [physical]", "process", ph.get("process"))
    for k in ("die_area_mm2", "transistors_billion", "launch_price_usd"):  # not modelled; checked all the same
        if k in ph:
            _num(f"{where} [physical]", ph, k, allow_zero=BOUNDS[k][0] == 0)
    topology = _choice(wn, "topology", n.get("topology", "switch"), TOPOLOGIES)
    chips = d.get("default_chips", 1)
    if isinstance(chips, bool) or not isinstance(chips, int) or not 1 <= chips <= BOUNDS["default_chips"][1]:
        raise InputError(f"{where}: default_chips", chips, "a whole number " + range_text(*BOUNDS["default_chips"]))
    if isinstance(profile, Profile):
        prof = profile
    else:
        prof = load_profile(profile or string(where, "profile", d.get("profile"), "default"))
    tiers, placement_, access = _tiers(where, d)
    near = _near_memory(where, d, ["main"] + [t.name for t in tiers])
    network = _network_options(wn, n)
    scale_out = _scale_out(where, d, chips)
    return Hardware(
        flop_per_s_fp32=fp32,
        flop_per_s_bf16=bf16,
        flop_per_s_fp8=fp8,
        flop_per_s_int8=int8,
        flop_per_s_fp4=fp4,
        memory_capacity_bytes=_num(wm, m, "capacity_gb") * units.GB,
        memory_bandwidth_bytes_per_s=_num(wm, m, "bandwidth_tb_s") * units.TB_PER_S,
        sram_bytes=_num(wm, m, "sram_mb", 0.0, allow_zero=True) * units.MB,
        link_bandwidth_bytes_per_s=_num(wn, n, "link_bandwidth_gb_s") * units.GB_PER_S,
        link_latency_s=_num(wn, n, "link_latency_us", DEFAULT_LINK_LATENCY_US, allow_zero=True) * units.US,
        message_latency_s=_num(wn, n, "message_latency_us", DEFAULT_MESSAGE_LATENCY_US, allow_zero=True) * units.US,
        tdp_w=_num(f"{where} [power]", pw, "tdp_w", 0.0, allow_zero=True),
        profile=prof,
        tiers=tiers,
        placement=placement_,
        near_memory=near,
        network=network,
        scale_out=scale_out,
        matmul_efficiency=_num(wc, c, "matmul_efficiency", REFERENCE_MATMUL_EFFICIENCY),
        tier_access=access,
        topology=topology,
        default_chips=chips,
        name=name,
        description=description,
    )


def _network_options(w, n):
    """`NetworkOptions` from the optional keys of a ``[network]`` table."""

    algo = _choice(w, "algorithm", n.get("algorithm", "auto"), ALLREDUCE_ALGORITHMS)
    innet = n.get("in_network_reduction", False)
    if not isinstance(innet, bool):
        raise InputError(f"{w}: in_network_reduction", innet, "true or false")
    us = units.US
    stragglers = "straggler_scale_us" in n
    return NetworkOptions(
        switch_radix=_num(w, n, "switch_radix", 64.0),
        torus_dims=_num(w, n, "torus_dims", 6.0),
        packet_sram_fraction=0.0 if n.get("packet_sram_fraction") is None else number(
            w, "packet_sram_fraction", n["packet_sram_fraction"], allow_zero=True, fraction=True),
        sram_landing_latency_s=_num(w, n, "sram_landing_latency_us", 0.0, allow_zero=True) * us,
        dram_landing_latency_s=_num(w, n, "dram_landing_latency_us", 0.0, allow_zero=True) * us,
        straggler_scale_s=_num(w, n, "straggler_scale_us", 0.0, allow_zero=True) * us,
        straggler_timeout_s=_num(w, n, "straggler_timeout_us", 1e6) * us,
        algorithm=algo,
        in_network_reduction=innet,
        stragglers=stragglers,
    )


def _check_table(w, t, allowed, required):
    """A table of the file at `w`: a TOML table, no key outside `allowed`, every key in
    `required` present (`InputError` naming the first that is not)."""
    if not isinstance(t, dict):
        raise InputError(w, t, "a table")
    unknown_keys(w, t, allowed)
    for k in required:
        if k not in t:
            raise InputError(f"{w}: {k}", None, "a value (the key is missing)")


def _scale_out(where, d, default_chips):
    """The ``[scale_out]`` table: the network between scale-up domains of a multi-node
    system (`ScaleOut`): ``nic_gb_s`` per chip, one direction (required), ``latency_us``
    per message (default `DEFAULT_SCALE_OUT_LATENCY_US`), ``domain_chips`` (default: the
    file's ``default_chips``, its scale-up unit). None without the table."""
    t = d.get("scale_out")
    if t is None:
        return None
    w = f"{where} [scale_out]"
    _check_table(w, t, _HW_SCALE_OUT, ("nic_gb_s",))
    domain = t.get("domain_chips", default_chips)
    if isinstance(domain, bool) or not isinstance(domain, int) or not 1 <= domain <= BOUNDS["domain_chips"][1]:
        raise InputError(f"{w}: domain_chips", domain, "a whole number " + range_text(*BOUNDS["domain_chips"]))
    return ScaleOut(
        domain_chips=float(domain),
        bandwidth_bytes_per_s=_num(w, t, "nic_gb_s") * units.GB_PER_S,
        latency_s=_num(w, t, "latency_us", DEFAULT_SCALE_OUT_LATENCY_US, allow_zero=True) * units.US,
    )


def _near_memory(where, d, tier_names):
    """The ``[near_memory]`` table: PNM/PIM/3D logic on one tier."""

    t = d.get("near_memory")
    if t is None:
        return None
    w = f"{where} [near_memory]"
    _check_table(w, t, _NEAR_KEYS, ("flop_tflops", "pj_per_flop", "bandwidth_multiple", "pj_per_bit", "shard_mb"))
    penalty = number(w, "capacity_penalty", t.get("capacity_penalty", 0.0), allow_zero=True)
    if penalty >= 1.0:
        raise InputError(f"{w}: capacity_penalty", t["capacity_penalty"], "a fraction in [0, 1)")
    tier = _choice(w, "tier", t.get("tier", "main"), tier_names)
    return NearMemory(
        flop_per_s=_num(w, t, "flop_tflops") * units.TFLOP_PER_S,
        j_per_flop=_num(w, t, "pj_per_flop") * units.PJ,
        bandwidth_multiple=_num(w, t, "bandwidth_multiple"),
        j_per_byte=_num(w, t, "pj_per_bit") * units.PJ * units.BITS_PER_BYTE,
        shard_bytes=_num(w, t, "shard_mb") * units.MB,
        offload_fraction=number(w, "offload_fraction", t.get("offload_fraction", 1.0), allow_zero=True, fraction=True),
        power_density_w_per_mm2=_num(w, t, "power_density_w_per_mm2", 1e9),
        footprint_mm2=_num(w, t, "footprint_mm2", 1.0),
        bandwidth_density_bytes_per_s_per_mm2=_num(
            w, t, "bandwidth_density_gb_s_per_mm2", 0.0, allow_zero=True
        ) * units.GB_PER_S,
        capacity_penalty=penalty,
        price_multiplier=_num(w, t, "price_multiplier", 1.0),
        logic_die=number(w, "logic_die", t.get("logic_die", 1.0), allow_zero=True, fraction=True),
        tier=tier_names.index(tier),
        name=string(w, "name", t.get("name"), "near-memory"),
    )


def _tiers(where, d):
    """Extra memory tiers (``[[tiers]]``) and the ``[placement]`` of data classes."""

    raw = d.get("tiers", [])
    if not isinstance(raw, list):
        raise InputError(f"{where}: tiers", raw, "an array of tables ([[tiers]])")
    tiers, names = [], ["main"]
    for i, t in enumerate(raw):
        w = f"{where} [[tiers]] #{i + 1}"
        _check_table(w, t, _TIER_KEYS, ("name", "technology", "devices"))
        name, technology = string(w, "name", t["name"]), string(w, "technology", t["technology"])
        if name in names:
            raise InputError(f"{w}: name", name, "a name not used by another tier (or 'main')")
        devices = _num(w, t, "devices")
        buf = t.get("prefetch_buffer_mb")
        buf = None if buf is None else _num(w, t, "prefetch_buffer_mb", allow_zero=True) * units.MB
        tier = tier_from_technology(name, technology, devices, buf, w)
        overrides = {k: _num(w, t, k, allow_zero=k == "buffered_append_fraction")
                     for k in ("buffered_append_fraction", "endurance_cycles") if k in t}
        tiers.append(dataclasses.replace(tier, **overrides) if overrides else tier)
        names.append(name)
    access = _choice(where, "tier_access", d.get("tier_access", "parallel"), ("parallel", "serial"))
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
        vals = [number(w, f"{c}[{j}]", x, allow_zero=True, fraction=True) for j, x in enumerate(row)]
        if abs(sum(vals) - 1.0) > 1e-6:
            raise InputError(f"{w}: {c}", row, "fractions that add up to 1")
        rows.append(vals)
    return tuple(tiers), Placement(rows), access


def hardware_description(name):
    path = resolve("hardware", ".toml", name)
    return string(str(path), "description", read_hardware_toml(path).get("description"))
