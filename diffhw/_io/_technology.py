"""Technology tables (``diffhw/data/technology/*.toml``) -> `Technology` and `MemoryTier`.

A hardware preset's free-text process and memory type pick the rows (`node_of`,
`memory_of`); `load_technology` converts a row's human units (pJ/bit, $/GB, mm2 per
TFLOP/s) to SI; `tier_from_technology` scales a memory device row to a tier.
"""

import os

import jax
import numpy as np

from .. import units
from .._errors import InputError, did_you_mean
from .._hardware._memory import MemoryTier
from .._hardware._technology import KWH_J, YEAR_S, Technology
from ._files import DATA, number, preset_names, read_hardware_toml, read_toml, resolve, string

TECH = DATA / "technology"


# Map a preset's free-text process / memory type to a table row.
_NODE_PATTERNS = [("N2", "N2"), ("N3", "N3"), ("3 NM", "N3"), ("4N", "N4"), ("N4", "N4"), ("4 NM", "N4"),
                  ("N5", "N5"), ("5 NM", "N5"), ("N6", "N6"), ("N7", "N7"), ("7 NM", "N7"),
                  ("7NM", "N7"), ("12 NM", "N16"), ("12NM", "N16"), ("14 NM", "N16"), ("16", "N16")]
# TSMC 12FFN/12FFC are optimised 16FF+ processes (same design rules family): the N16 row.


def node_of(process: str | None) -> str:
    """Table row for a process string such as ``"TSMC 4N"`` or ``"TSMC N5 (XCD) + N6"``
    (the first node named wins); ``"N5"`` when unknown."""
    p = (process or "").upper()
    best = None
    for pat, node in _NODE_PATTERNS:
        i = p.find(pat)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, node)
    return best[1] if best else "N5"


def memory_of(kind: str | None) -> str:
    """Table row for a memory type string such as ``"HBM3e (8 stacks)"``."""
    k = (kind or "").upper().replace(" ", "")
    if "CXL" in k:
        return "CXL_DDR5"
    for name in ("HBM2E", "HBM3E", "HBM4", "HBM3", "HBM2", "HBF", "GDDR6X", "GDDR7", "GDDR6",
                 "LPDDR5X", "LPDDR5", "DDR5", "SSD", "SRAM"):
        if k.startswith(name) or name in k.split("(")[0]:
            return name
    if "HBM" in k:
        return "HBM3"
    return "HBM3"


def list_nodes():
    return sorted(read_toml(TECH / "logic.toml"))


def list_memories():
    return sorted(read_toml(TECH / "memory.toml"))


def list_architectures():
    return sorted(read_toml(TECH / "architecture.toml"))


def _table(d, where, key):
    """``d[key]``, which must be a TOML table (`InputError` naming `where` otherwise)."""
    if key not in d:
        raise InputError(f"{where}: {key}", None, "a table (it is missing)")
    if not isinstance(d[key], dict):
        raise InputError(f"{where}: {key}", d[key], "a TOML table")
    return d[key]


def _row(rows, where, key, kind):
    """Row `key` of a technology table (`kind` names what it is in the message)."""
    if not isinstance(key, str) or key not in rows:
        raise InputError(kind, key, "one of " + ", ".join(sorted(rows)), did_you_mean(key, rows))
    return _table(rows, where, key)


def architecture_of(preset_names) -> str:
    """Row of ``architecture.toml`` whose ``presets`` list holds one of `preset_names`
    (a preset and the presets it is ``based_on``); ``""`` when none does."""
    arch = read_toml(TECH / "architecture.toml")
    for name in preset_names:
        for row in arch:
            presets = _table(arch, "architecture.toml", row).get("presets", [])
            if not isinstance(presets, list):
                raise InputError(f"architecture.toml [{row}]: presets", presets, "a list of preset names")
            if name in presets:
                return row
    return ""


#: Technology fields an override must keep > 0 (the model divides by them), and those
#: that are fractions in [0, 1]; every other override must be >= 0 (``pue`` >= 1).
_OVERRIDE_POSITIVE = {"lifetime_s", "facility_lifetime_s", "reticle_mm2", "wafer_diameter_mm", "yield_alpha",
                      "bond_yield", "pue"}
_OVERRIDE_FRACTIONS = {"static_fraction", "on_interposer", "memory_on_die", "bond_yield",
                       "upkeep_fraction_per_year", "network_capex_fraction"}


def _override(key, value):
    """A checked override of a `Technology` field (SI): finite, in the field's range. A
    traced JAX value passes unchanged (it is checked by the entry points inside jit)."""
    if isinstance(value, jax.core.Tracer):
        return value
    field = f"technology override {key}"
    if value is None or isinstance(value, (bool, str, bytes)):
        raise InputError(field, value, "a number (SI units)")
    try:
        a = np.asarray(value, dtype=float)
    except OverflowError:  # an integer past a float's range (its repr may be too long to print)
        shown = f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<too large for a float>"
        raise InputError(field, shown, "a finite number") from None
    except (TypeError, ValueError):
        raise InputError(field, value, "a number (SI units)") from None
    if not np.all(np.isfinite(a)):
        raise InputError(field, value, "a finite number")
    if key == "pue" and np.any(a < 1):
        raise InputError(field, value, ">= 1 (facility power over IT power)")
    if key == "network_capex_fraction" and np.any(a >= 1):
        raise InputError(field, value, "a fraction in [0, 1)")
    if np.any(a < 0) or (key in _OVERRIDE_POSITIVE and np.any(a == 0)):
        raise InputError(field, value, "> 0" if key in _OVERRIDE_POSITIVE else ">= 0")
    if key in _OVERRIDE_FRACTIONS and np.any(a > 1):
        raise InputError(field, value, "a fraction in [0, 1]")
    return value


def load_technology(node="N4", memory="HBM3", overrides=None, architecture="") -> Technology:
    """A `Technology` for a process node (``N7 N6 N5 N4 N3 N2 N16``) and a main-memory
    technology (``HBM2 HBM2E HBM3 HBM3E HBM4 HBF GDDR6 GDDR6X GDDR7 LPDDR5 LPDDR5X DDR5 SSD
    SRAM``), from the shipped tables; `overrides` maps field names to SI values (each
    checked: finite, >= 0, > 0 or in [0, 1] as the field needs; traced values pass).
    `architecture` (a row of ``architecture.toml``, e.g. ``"blackwell"``, ``"tpu"``)
    scales the node's compute density and energy per FLOP for that microarchitecture."""
    logic = read_toml(TECH / "logic.toml")
    mem = read_toml(TECH / "memory.toml")
    sysd = read_toml(TECH / "system.toml")
    lg = _row(logic, "logic.toml", node, "node")
    m = _row(mem, "memory.toml", memory, "memory technology")
    pk, net, dc = (_table(sysd, "system.toml", k) for k in ("package", "network", "datacenter"))
    where_l, where_m = f"logic.toml [{node}]", f"memory.toml [{memory}]"

    def n(table, where, key, **kw):
        if key not in table:
            raise InputError(f"{where}: {key}", None, "a value (the key is missing)")
        return number(where, key, table[key], **kw)

    if "device_power_w" in m:  # Table-3 rows: pJ/bit from the device's power and bandwidth
        pj = n(m, where_m, "device_power_w") / (n(m, where_m, "device_bandwidth_gb_s") * 8.0) * 1e3
    else:
        pj = n(m, where_m, "pj_per_bit")
    values = dict(
        compute_mm2_per_flop_per_s=n(lg, where_l, "compute_mm2_per_tflops") / units.TFLOP_PER_S,
        sram_mm2_per_byte=1.0 / (n(lg, where_l, "sram_mb_per_mm2") * units.MB),
        compute_j_per_flop=n(lg, where_l, "compute_pj_per_flop") * units.PJ,
        static_fraction=n(lg, where_l, "static_fraction", fraction=True),
        wafer_usd=n(lg, where_l, "wafer_usd"),
        defect_density_per_mm2=n(lg, where_l, "defect_density_per_cm2") / 100.0,
        logic_kgco2e_per_mm2=n(lg, where_l, "kgco2e_per_cm2") / 100.0,
        memory_j_per_byte=pj * units.PJ * units.BITS_PER_BYTE,
        memory_usd_per_byte=n(m, where_m, "usd_per_gb", allow_zero=True) / units.GB,
        memory_kgco2e_per_byte=n(m, where_m, "kgco2e_per_gb", allow_zero=True) / units.GB,
        phy_mm2_per_device=n(m, where_m, "phy_mm2_per_device", allow_zero=True),
        device_bandwidth_bytes_per_s=n(m, where_m, "device_bandwidth_gb_s", allow_zero=True) * units.GB_PER_S,
        device_footprint_mm2=n(m, where_m, "device_footprint_mm2", allow_zero=True),
        on_interposer=1.0 if m.get("package") == "2.5d" else 0.0,
        memory_on_die=1.0 if memory == "SRAM" else 0.0,
        reticle_mm2=n(pk, "system.toml [package]", "reticle_mm2"),
        chiplet_overhead=n(pk, "system.toml [package]", "chiplet_overhead", allow_zero=True),
        wafer_diameter_mm=n(pk, "system.toml [package]", "wafer_diameter_mm"),
        wafer_edge_mm=n(pk, "system.toml [package]", "wafer_edge_mm", allow_zero=True),
        yield_alpha=n(pk, "system.toml [package]", "yield_alpha"),
        interposer_usd_per_mm2=n(pk, "system.toml [package]", "interposer_usd_per_mm2", allow_zero=True),
        substrate_usd_per_mm2=n(pk, "system.toml [package]", "substrate_usd_per_mm2", allow_zero=True),
        interposer_area_factor=n(pk, "system.toml [package]", "interposer_area_factor"),
        test_assembly_usd_per_mm2=n(pk, "system.toml [package]", "test_assembly_usd_per_mm2", allow_zero=True),
        package_kgco2e=n(pk, "system.toml [package]", "package_kgco2e", allow_zero=True),
        interposer_kgco2e_per_mm2=n(pk, "system.toml [package]", "interposer_kgco2e_per_cm2", allow_zero=True) / 100.0,
        link_j_per_byte=n(net, "system.toml [network]", "link_pj_per_bit") * units.PJ * units.BITS_PER_BYTE,
        serdes_mm2_per_byte_per_s=n(net, "system.toml [network]", "serdes_mm2_per_tb_s") / units.TB_PER_S,
        sram_j_per_byte=n(net, "system.toml [network]", "sram_pj_per_bit") * units.PJ * units.BITS_PER_BYTE,
        sram_bytes_per_memory_byte=n(net, "system.toml [network]", "sram_bytes_per_memory_byte", allow_zero=True),
        pue=n(dc, "system.toml [datacenter]", "pue"),
        electricity_usd_per_j=n(dc, "system.toml [datacenter]", "electricity_usd_per_kwh", allow_zero=True) / KWH_J,
        grid_kgco2e_per_j=n(dc, "system.toml [datacenter]", "grid_gco2e_per_kwh", allow_zero=True) / 1e3 / KWH_J,
        lifetime_s=n(dc, "system.toml [datacenter]", "lifetime_years") * YEAR_S,
        facility_lifetime_s=n(dc, "system.toml [datacenter]", "facility_lifetime_years") * YEAR_S,
        facility_usd_per_w=n(dc, "system.toml [datacenter]", "facility_usd_per_w", allow_zero=True),
        server_capex_multiplier=n(dc, "system.toml [datacenter]", "server_capex_multiplier"),
        network_capex_fraction=n(dc, "system.toml [datacenter]", "network_capex_fraction", allow_zero=True),
        server_power_ratio=n(dc, "system.toml [datacenter]", "server_power_ratio"),
        chip_price_multiplier=n(dc, "system.toml [datacenter]", "chip_price_multiplier"),
        upkeep_fraction_per_year=n(dc, "system.toml [datacenter]", "upkeep_fraction_per_year", allow_zero=True),
        bond_usd_per_mm2=n(pk, "system.toml [package]", "bond_usd_per_mm2", allow_zero=True),
        bond_yield=n(pk, "system.toml [package]", "bond_yield", fraction=True),
    )
    if architecture:
        a = _row(read_toml(TECH / "architecture.toml"), "architecture.toml", architecture, "architecture")
        where_a = f"architecture.toml [{architecture}]"
        values["compute_mm2_per_flop_per_s"] *= n(a, where_a, "compute_area_scale") if "compute_area_scale" in a else 1.0
        values["compute_j_per_flop"] *= n(a, where_a, "compute_energy_scale") if "compute_energy_scale" in a else 1.0
    if values["network_capex_fraction"] >= 1:
        raise InputError("network_capex_fraction", values["network_capex_fraction"], "< 1")
    if overrides is None:
        overrides = {}
    if not hasattr(overrides, "items"):
        raise InputError("technology overrides", overrides, "a mapping of Technology field names to SI values")
    for k, v in overrides.items():
        if k not in values:
            raise InputError("technology field", k, "a Technology field", did_you_mean(k, values))
        values[k] = _override(k, v)
    return Technology(**values, node=node, memory=memory)


def preset_chain(path):
    """Names of a hardware file and of the presets it is (transitively) ``based_on``: at
    most 6 files; a chain that comes back to a file stops there."""

    names, seen = [], set()
    for _ in range(6):
        d = read_toml(path)
        where = str(path)
        seen.add(os.path.realpath(where))
        names.append(string(where, "name", d.get("name")))
        base = d.get("based_on")
        if base is None:
            break
        names.append(string(where, "based_on", base))
        try:
            path = resolve("hardware", ".toml", base)
        except InputError as e:
            raise InputError(f"{where}: based_on", base, e.allowed,
                             did_you_mean(base.strip().lower(), preset_names("hardware", ".toml"))) from None
        if os.path.realpath(str(path)) in seen:
            break
    return names


def technology_for(hardware_name_or_path, overrides=None) -> Technology:
    """The `Technology` of a hardware preset or file: its ``[physical] process`` and
    ``[memory] type`` pick the node and memory rows, and its name (or the preset it is
    ``based_on``) the ``architecture.toml`` row, if any."""

    path = resolve("hardware", ".toml", hardware_name_or_path)
    where = str(path)
    d = read_hardware_toml(path)
    physical, memory = (_table(d, where, k) if k in d else {} for k in ("physical", "memory"))
    node = node_of(string(f"{where} [physical]", "process", physical.get("process")))
    kind = memory_of(string(f"{where} [memory]", "type", memory.get("type")))
    return load_technology(node, kind, overrides, architecture_of(preset_chain(path)))


def memory_device(memory: str) -> dict:
    """One device of a memory technology (stack, module, card) and the figures the
    paper's Table 3 derives from it: GB/s per W, GB per W and pJ per bit read; with its
    read latency (ns), bytes per read (`granularity_bytes`) and endurance (P/E cycles)."""
    t = load_technology("N4", memory)
    d, where = read_toml(TECH / "memory.toml")[memory], f"memory.toml [{memory}]"
    cap = number(where, "device_capacity_gb", d.get("device_capacity_gb"), allow_zero=True)
    bw = number(where, "device_bandwidth_gb_s", d.get("device_bandwidth_gb_s"), allow_zero=True)
    pj = float(t.memory_j_per_byte) / units.PJ / units.BITS_PER_BYTE
    watts = pj * 1e-12 * bw * 1e9 * 8.0
    return dict(
        capacity_gb=cap, bandwidth_gb_s=bw, power_w=watts, pj_per_bit=pj,
        gb_s_per_w=bw / watts if watts else float("inf"), gb_per_w=cap / watts if watts else float("inf"),
        read_latency_ns=number(where, "read_latency_ns", d.get("read_latency_ns")),
        granularity_bytes=number(where, "granularity_bytes", d.get("granularity_bytes")),
        endurance_cycles=number(where, "endurance_cycles", d.get("endurance_cycles")),
    )


def tier_from_technology(name, technology, devices, prefetch_buffer_bytes=None, where="tier"):
    """A `MemoryTier` of `devices` stacks/modules of a memory technology row of
    ``diffhw/data/technology/memory.toml`` (capacity, bandwidth, latency, granularity,
    energy, endurance, price, carbon and PHY area all scale from one device). The prefetch
    buffer defaults to twice `needed_buffer_bytes` (``bandwidth x latency``, Little's law):
    the full bandwidth, clear of the smooth knee at ``bandwidth x latency`` itself (where
    `sustained_bandwidth` gives ``2**-tau`` = 98.6% of it). Appends are buffered into whole
    units (``buffered_append_fraction = 1``), as a flash controller is built."""
    rows = read_toml(TECH / "memory.toml")
    row = _row(rows, "memory.toml", technology, f"{where}: technology")
    n = number(where, "devices", devices)
    tech = load_technology("N4", technology)

    def get(key):
        if key not in row:
            raise InputError(f"memory.toml [{technology}]: {key}", None, "a value (the key is missing)")
        return row[key]

    bw = n * number(where, "device_bandwidth_gb_s", get("device_bandwidth_gb_s")) * units.GB_PER_S
    latency = number(where, "read_latency_ns", get("read_latency_ns")) * units.NS
    buffer = 2.0 * bw * latency if prefetch_buffer_bytes is None else prefetch_buffer_bytes
    return MemoryTier(
        capacity_bytes=n * number(where, "device_capacity_gb", get("device_capacity_gb")) * units.GB,
        read_bandwidth_bytes_per_s=bw,
        write_bandwidth_bytes_per_s=bw * number(where, "write_bandwidth_fraction", get("write_bandwidth_fraction"),
                                                fraction=True),
        read_latency_s=latency,
        granularity_bytes=number(where, "granularity_bytes", get("granularity_bytes")),
        prefetch_buffer_bytes=buffer,
        read_j_per_byte=tech.memory_j_per_byte,
        write_j_per_byte=tech.memory_j_per_byte,
        endurance_cycles=number(where, "endurance_cycles", get("endurance_cycles")),
        usd_per_byte=tech.memory_usd_per_byte,
        kgco2e_per_byte=tech.memory_kgco2e_per_byte,
        phy_mm2=n * tech.phy_mm2_per_device,
        name=name,
    )
