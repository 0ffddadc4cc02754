"""Technology tables (``diffhw/data/technology/*.toml``) -> `Technology` and `MemoryTier`.

A hardware preset's free-text process and memory type pick the rows (`node_of`,
`memory_of`); `load_technology` converts a row's human units (pJ/bit, $/GB, mm2 per
TFLOP/s) to SI; `tier_from_technology` scales a memory device row to a tier.
"""

import tomllib

from .. import units
from .._errors import InputError, did_you_mean
from .._hardware._memory import MemoryTier
from .._hardware._technology import KWH_J, YEAR_S, Technology
from ._files import DATA, number, read_hardware_toml, read_toml, resolve

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
    return sorted(tomllib.loads((TECH / "logic.toml").read_text()))


def list_memories():
    return sorted(tomllib.loads((TECH / "memory.toml").read_text()))


def list_architectures():
    return sorted(tomllib.loads((TECH / "architecture.toml").read_text()))


def architecture_of(preset_names) -> str:
    """Row of ``architecture.toml`` whose ``presets`` list holds one of `preset_names`
    (a preset and the presets it is ``based_on``); ``""`` when none does."""
    arch = read_toml(TECH / "architecture.toml")
    for name in preset_names:
        for row, table in arch.items():
            if name in table.get("presets", []):
                return row
    return ""


def load_technology(node="N4", memory="HBM3", overrides=None, architecture="") -> Technology:
    """A `Technology` for a process node (``N7 N6 N5 N4 N3 N2 N16``) and a main-memory
    technology (``HBM2 HBM2E HBM3 HBM3E HBM4 HBF GDDR6 GDDR6X GDDR7 LPDDR5 LPDDR5X DDR5 SSD
    SRAM``), from the shipped tables; `overrides` maps field names to SI values.
    `architecture` (a row of ``architecture.toml``, e.g. ``"blackwell"``, ``"tpu"``)
    scales the node's compute density and energy per FLOP for that microarchitecture."""
    logic = read_toml(TECH / "logic.toml")
    mem = read_toml(TECH / "memory.toml")
    sysd = read_toml(TECH / "system.toml")
    if node not in logic:
        raise InputError("node", node, "one of " + ", ".join(sorted(logic)), did_you_mean(node, logic))
    if memory not in mem:
        raise InputError("memory technology", memory, "one of " + ", ".join(sorted(mem)), did_you_mean(memory, mem))
    lg, m = logic[node], mem[memory]
    pk, net, dc = sysd["package"], sysd["network"], sysd["datacenter"]
    where_l, where_m = f"logic.toml [{node}]", f"memory.toml [{memory}]"

    def n(table, where, key, **kw):
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
        arch = read_toml(TECH / "architecture.toml")
        if architecture not in arch:
            raise InputError("architecture", architecture, "one of " + ", ".join(sorted(arch)),
                             did_you_mean(architecture, arch))
        a, where_a = arch[architecture], f"architecture.toml [{architecture}]"
        values["compute_mm2_per_flop_per_s"] *= n(a, where_a, "compute_area_scale") if "compute_area_scale" in a else 1.0
        values["compute_j_per_flop"] *= n(a, where_a, "compute_energy_scale") if "compute_energy_scale" in a else 1.0
    for k, v in (overrides or {}).items():
        if k not in values:
            raise InputError("technology field", k, "a Technology field", did_you_mean(k, values))
        values[k] = v
    if values["network_capex_fraction"] >= 1:
        raise InputError("network_capex_fraction", values["network_capex_fraction"], "< 1")
    return Technology(**values, node=node, memory=memory)


def preset_chain(path):
    """Names of a hardware file and of the presets it is (transitively) ``based_on``."""

    names = []
    for _ in range(6):
        d = read_toml(path)
        names.append(str(d.get("name", "")))
        base = d.get("based_on")
        if base is None:
            break
        names.append(str(base))
        path = resolve("hardware", ".toml", base)
    return names


def technology_for(hardware_name_or_path, overrides=None) -> Technology:
    """The `Technology` of a hardware preset or file: its ``[physical] process`` and
    ``[memory] type`` pick the node and memory rows, and its name (or the preset it is
    ``based_on``) the ``architecture.toml`` row, if any."""

    path = resolve("hardware", ".toml", hardware_name_or_path)
    d = read_hardware_toml(path)
    node = node_of(d.get("physical", {}).get("process"))
    memory = memory_of(d.get("memory", {}).get("type"))
    return load_technology(node, memory, overrides, architecture_of(preset_chain(path)))


def memory_device(memory: str) -> dict:
    """One device of a memory technology (stack, module, card) and the figures the
    paper's Table 3 derives from it: GB/s per W, GB per W and pJ per bit read."""
    t = load_technology("N4", memory)
    d = read_toml(TECH / "memory.toml")[memory]
    cap, bw = float(d["device_capacity_gb"]), float(d["device_bandwidth_gb_s"])
    pj = float(t.memory_j_per_byte) / units.PJ / units.BITS_PER_BYTE
    watts = pj * 1e-12 * bw * 1e9 * 8.0
    return dict(
        capacity_gb=cap, bandwidth_gb_s=bw, power_w=watts, pj_per_bit=pj,
        gb_s_per_w=bw / watts if watts else float("inf"), gb_per_w=cap / watts if watts else float("inf"),
    )


def tier_from_technology(name, technology, devices, prefetch_buffer_bytes=None, where="tier"):
    """A `MemoryTier` of `devices` stacks/modules of a memory technology row of
    ``diffhw/data/technology/memory.toml`` (capacity, bandwidth, latency, granularity,
    energy, endurance, price, carbon and PHY area all scale from one device). The prefetch
    buffer defaults to what sustains full bandwidth (`needed_buffer_bytes`)."""
    rows = read_toml(TECH / "memory.toml")
    if technology not in rows:
        raise InputError(f"{where}: technology", technology, "one of " + ", ".join(sorted(rows)),
                         did_you_mean(technology, rows))
    row = rows[technology]
    n = number(where, "devices", devices)
    tech = load_technology("N4", technology)
    bw = n * number(where, "device_bandwidth_gb_s", row["device_bandwidth_gb_s"]) * units.GB_PER_S
    latency = number(where, "read_latency_ns", row["read_latency_ns"]) * units.NS
    buffer = 2.0 * bw * latency if prefetch_buffer_bytes is None else prefetch_buffer_bytes
    return MemoryTier(
        capacity_bytes=n * number(where, "device_capacity_gb", row["device_capacity_gb"]) * units.GB,
        read_bandwidth_bytes_per_s=bw,
        write_bandwidth_bytes_per_s=bw * number(where, "write_bandwidth_fraction", row["write_bandwidth_fraction"],
                                                fraction=True),
        read_latency_s=latency,
        granularity_bytes=number(where, "granularity_bytes", row["granularity_bytes"]),
        prefetch_buffer_bytes=buffer,
        read_j_per_byte=tech.memory_j_per_byte,
        write_j_per_byte=tech.memory_j_per_byte,
        endurance_cycles=number(where, "endurance_cycles", row["endurance_cycles"]),
        usd_per_byte=tech.memory_usd_per_byte,
        kgco2e_per_byte=tech.memory_kgco2e_per_byte,
        phy_mm2=n * tech.phy_mm2_per_device,
        name=name,
    )
