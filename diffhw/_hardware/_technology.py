"""Technology: process node, memory technology, package, network and datacenter
constants, as an Equinox module of float leaves (so every cost metric is
differentiable in them). `diffhw._io._technology` builds it from
``diffhw/data/technology/*.toml``, where every number carries its source."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


def _leaf():
    return eqx.field(converter=_f)


class Technology(eqx.Module):
    """Technology constants for one chip design, SI units.

    **Logic (process node):** `compute_mm2_per_flop_per_s` (mm2 per dense BF16 FLOP/s),
    `sram_mm2_per_byte`, `compute_j_per_flop` (dense BF16; other widths scale with bits),
    `static_fraction` (static share of peak power), `wafer_usd`, `defect_density_per_mm2`,
    `logic_kgco2e_per_mm2` (pre-yield).

    **Main memory technology:** `memory_j_per_byte`, `memory_usd_per_byte`,
    `memory_kgco2e_per_byte`, `phy_mm2_per_device`, `device_bandwidth_bytes_per_s`,
    `device_footprint_mm2`, `on_interposer` (1 for 2.5D stacks, 0 on the board),
    `memory_on_die` (1 when main memory is on-chip SRAM).

    **Package:** `reticle_mm2`, `chiplet_overhead`, `wafer_diameter_mm`,
    `wafer_edge_mm`, `yield_alpha`, `interposer_usd_per_mm2`, `substrate_usd_per_mm2`,
    `interposer_area_factor`, `test_assembly_usd_per_mm2`, `package_kgco2e`,
    `interposer_kgco2e_per_mm2`.

    **Network and SRAM traffic:** `link_j_per_byte`, `serdes_mm2_per_byte_per_s`,
    `sram_j_per_byte`, `sram_bytes_per_memory_byte`.

    **Datacenter:** `pue`, `electricity_usd_per_j`, `grid_kgco2e_per_j`,
    `lifetime_s`, `facility_lifetime_s`, `facility_usd_per_w`,
    `server_capex_multiplier`, `network_capex_fraction`, `server_power_ratio`,
    `chip_price_multiplier`, `upkeep_fraction_per_year`.

    **3D stacking:** `bond_usd_per_mm2` (hybrid-bonding cost per mm2 of stacked logic),
    `bond_yield` (per bonded die); used for near-memory and 3D logic dies.
    """

    compute_mm2_per_flop_per_s: Scalar = _leaf()
    sram_mm2_per_byte: Scalar = _leaf()
    compute_j_per_flop: Scalar = _leaf()
    static_fraction: Scalar = _leaf()
    wafer_usd: Scalar = _leaf()
    defect_density_per_mm2: Scalar = _leaf()
    logic_kgco2e_per_mm2: Scalar = _leaf()
    memory_j_per_byte: Scalar = _leaf()
    memory_usd_per_byte: Scalar = _leaf()
    memory_kgco2e_per_byte: Scalar = _leaf()
    phy_mm2_per_device: Scalar = _leaf()
    device_bandwidth_bytes_per_s: Scalar = _leaf()
    device_footprint_mm2: Scalar = _leaf()
    on_interposer: Scalar = _leaf()
    memory_on_die: Scalar = _leaf()
    reticle_mm2: Scalar = _leaf()
    chiplet_overhead: Scalar = _leaf()
    wafer_diameter_mm: Scalar = _leaf()
    wafer_edge_mm: Scalar = _leaf()
    yield_alpha: Scalar = _leaf()
    interposer_usd_per_mm2: Scalar = _leaf()
    substrate_usd_per_mm2: Scalar = _leaf()
    interposer_area_factor: Scalar = _leaf()
    test_assembly_usd_per_mm2: Scalar = _leaf()
    package_kgco2e: Scalar = _leaf()
    interposer_kgco2e_per_mm2: Scalar = _leaf()
    link_j_per_byte: Scalar = _leaf()
    serdes_mm2_per_byte_per_s: Scalar = _leaf()
    sram_j_per_byte: Scalar = _leaf()
    sram_bytes_per_memory_byte: Scalar = _leaf()
    pue: Scalar = _leaf()
    electricity_usd_per_j: Scalar = _leaf()
    grid_kgco2e_per_j: Scalar = _leaf()
    lifetime_s: Scalar = _leaf()
    facility_lifetime_s: Scalar = _leaf()
    facility_usd_per_w: Scalar = _leaf()
    server_capex_multiplier: Scalar = _leaf()
    network_capex_fraction: Scalar = _leaf()
    server_power_ratio: Scalar = _leaf()
    chip_price_multiplier: Scalar = _leaf()
    upkeep_fraction_per_year: Scalar = _leaf()
    bond_usd_per_mm2: Scalar = eqx.field(converter=_f, default=0.017)  # system.toml [package]
    bond_yield: Scalar = eqx.field(converter=_f, default=0.99)  # system.toml [package]
    node: str = eqx.field(static=True, default="N4")
    memory: str = eqx.field(static=True, default="HBM3")

    def replace(self, **changes):
        """A copy with some float fields changed."""
        names = list(changes)
        return eqx.tree_at(lambda t: [getattr(t, n) for n in names], self, [_f(changes[n]) for n in names])


#: Seconds in a (Julian) year.
YEAR_S = 365.25 * 24 * 3600.0
#: Joules in a kWh.
KWH_J = 3.6e6
