"""Cost, TCO and carbon of a design, from its area, power and throughput.

Die cost follows the standard wafer model (dies per wafer with edge loss, negative-
binomial yield; e.g. chiplet-actuary, Feng & Ma DAC 2022); TCO amortises capital over a
lifetime and adds energy; carbon adds embodied (ACT, Gupta et al. ISCA 2022: logic per
area divided by yield, memory per GB, packaging) and operational (energy x PUE x grid).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from .._hardware._technology import YEAR_S
from . import _energy
from ._area import Area, chip_area, memory_devices

Scalar = Float[Array, ""]


def dies_per_wafer(die_mm2, tech):
    """Whole dies per wafer: ``pi r^2 / A - pi d / sqrt(2 A)`` on the usable radius
    ``r = D/2 - edge`` (de Vries 2005; chiplet-actuary), smoothly kept >= 1."""
    r = tech.wafer_diameter_mm / 2.0 - tech.wafer_edge_mm
    n = jnp.pi * r**2 / die_mm2 - jnp.pi * 2.0 * r / _smooth.safe_sqrt(2.0 * die_mm2)
    return _smooth.smooth_max(n, 1.0)


def die_yield(die_mm2, tech):
    """Negative-binomial yield ``(1 + A D0 / alpha)^-alpha``."""
    return (1.0 + die_mm2 * tech.defect_density_per_mm2 / tech.yield_alpha) ** (-tech.yield_alpha)


def near_memory_dies(hw, tech, area_mm2):
    """Cost ($) and embodied-carbon factor of the near-memory / 3D logic dies.

    The logic (``area_mm2``, from `chip_area`) is split into one die per memory device
    of its tier (an HBM stack's base die or the die bonded under it; one die on another
    tier). Each die is bought at the node's wafer price per good mm2, ``wafer / (usable
    wafer mm2 x yield(die))`` with the usable area ``pi r^2 - pi d sqrt(A / 2)`` of
    `dies_per_wafer` (times the die area, so an area of 0 costs 0 with finite gradients),
    then hybrid-bonded: ``bond_usd_per_mm2`` per mm2 and a ``bond_yield`` loss.

    **Returns:** ``(cost_usd, yield)`` where yield is die yield x bond yield (embodied
    carbon divides the logic's carbon per area by it).
    """
    nm = hw.near_memory
    n = memory_devices(hw, tech) if nm.tier == 0 else jnp.ones_like(area_mm2)
    die = _smooth.safe_div(area_mm2, n)
    r = tech.wafer_diameter_mm / 2.0 - tech.wafer_edge_mm
    usable = _smooth.smooth_max(jnp.pi * r**2 - jnp.pi * 2.0 * r * _smooth.safe_sqrt(die / 2.0), die)
    y = die_yield(die, tech) * tech.bond_yield
    cost = area_mm2 * tech.wafer_usd / (usable * y) + area_mm2 * tech.bond_usd_per_mm2
    return cost, y


class Economics(eqx.Module):
    """Energy, power, area, cost, TCO and carbon of a design (SI units; $ in USD).

    Per chip: `chip_area_mm2` (host logic dies), `die_area_mm2`, `chiplets`, `die_yield`,
    `near_memory_mm2` (near-memory / 3D logic), `near_memory_cost_usd` (its dies and
    bonding), `chip_cost_usd` (manufacturing: dies + near-memory dies + package + test +
    memory), `peak_power_w`
    (modelled), `static_power_w`, `average_power_w` (while serving this workload),
    `embodied_kgco2e_per_chip`.
    Per output token: `energy_per_token_j` (Prefill and Decode of the whole request),
    `decode_energy_per_token_j`.
    Per system: `system_average_power_w` (IT: chips x server overhead),
    `facility_power_w` (x PUE), `system_capex_usd` (servers + network),
    `facility_capex_usd`, `tco_usd_per_year`, `usd_per_million_tokens`,
    `embodied_kgco2e`, `operational_kgco2e_per_year`, `kgco2e_per_million_tokens`,
    `tokens_per_s_per_watt` (per facility watt), `tokens_per_s_per_usd` (per $ of TCO per
    year), `tokens_per_kgco2e`. `area` holds the area breakdown.
    """

    area: Area
    chip_area_mm2: Scalar
    die_area_mm2: Scalar
    chiplets: Scalar
    die_yield: Scalar
    logic_cost_usd: Scalar
    near_memory_mm2: Scalar
    near_memory_cost_usd: Scalar
    package_cost_usd: Scalar
    memory_cost_usd: Scalar
    chip_cost_usd: Scalar
    peak_power_w: Scalar
    static_power_w: Scalar
    average_power_w: Scalar
    energy_per_token_j: Scalar
    decode_energy_per_token_j: Scalar
    prefill_energy_j: Scalar
    system_average_power_w: Scalar
    facility_power_w: Scalar
    system_capex_usd: Scalar
    facility_capex_usd: Scalar
    tco_usd_per_year: Scalar
    usd_per_million_tokens: Scalar
    embodied_kgco2e_per_chip: Scalar
    embodied_kgco2e: Scalar
    operational_kgco2e_per_year: Scalar
    kgco2e_per_million_tokens: Scalar
    tokens_per_s_per_watt: Scalar
    tokens_per_s_per_usd: Scalar
    tokens_per_kgco2e: Scalar


def economics(hw, tech, wl, par, tpot_s, ttft_s, e2e_s, output_tokens_per_s, decode_work, prefill_work,
              tau=_smooth.DEFAULT_TAU) -> Economics:
    """Energy, power, area, cost, TCO and carbon of a design, given its performance.

    Energy: the `Work` of a Decode step (chain of layers on one rank per stage) times
    the chips, per ``batch`` tokens, plus static power over TPOT; Prefill likewise over
    TTFT. Near-memory and 3D logic (`near_memory_dies`) adds its dies, bonding and
    embodied carbon to the chip's. TCO per year: ``capex / lifetime + facility capex / facility lifetime +
    energy x PUE x price + upkeep x capex``, with capex = chips x chip cost x price
    multiplier x server multiplier / (1 - network share), and the facility provisioned
    for peak power. Carbon: embodied / lifetime + operational; both per token assume the
    system serves this workload all year.
    """
    capex = chip_capex(hw, tech, tau)
    chips = par.chips
    static = capex.static_power_w
    prec = wl.activation_precision
    decode_tok = (
        _energy.dynamic_energy_j(hw, tech, decode_work, prec) * chips + static * chips * tpot_s
    ) / wl.batch
    prefill = (
        _energy.dynamic_energy_j(hw, tech, prefill_work, prec) * par.tp * par.dp + static * chips * ttft_s
    )
    total = prefill + wl.batch * (wl.output_tokens - 1.0) * decode_tok
    per_token = total / (wl.batch * wl.output_tokens)
    avg_chip = total / (e2e_s * chips)
    return operating_economics(hw, tech, chips, capex, avg_chip, per_token, decode_tok, prefill,
                               output_tokens_per_s)


class ChipCapex(eqx.Module):
    """What a chip costs before it serves anything: area, dies, yield, cost by part,
    peak and static power, embodied carbon (`chip_capex`)."""

    area: Area
    die_yield: Scalar
    logic_cost_usd: Scalar
    near_memory_cost_usd: Scalar
    package_cost_usd: Scalar
    memory_cost_usd: Scalar
    chip_cost_usd: Scalar
    peak_power_w: Scalar
    static_power_w: Scalar
    embodied_kgco2e_per_chip: Scalar


def chip_capex(hw, tech, tau=_smooth.DEFAULT_TAU) -> ChipCapex:
    """Area, cost, power and embodied carbon of one chip (see `economics`)."""
    area = chip_area(hw, tech, tau)
    die = area.die_mm2
    y = die_yield(die, tech)
    logic_cost = area.chiplets * tech.wafer_usd / (dies_per_wafer(die, tech) * y)
    stacks = memory_devices(hw, tech) * tech.on_interposer
    interposer = tech.interposer_area_factor * (area.total_mm2 + stacks * tech.device_footprint_mm2)
    package_cost = (
        tech.on_interposer * tech.interposer_usd_per_mm2 * interposer
        + (1.0 - tech.on_interposer) * tech.substrate_usd_per_mm2 * area.total_mm2
        + tech.test_assembly_usd_per_mm2 * interposer
    )
    tier_costs = [(1.0 - tech.memory_on_die) * hw.memory_capacity_bytes * tech.memory_usd_per_byte] + [
        t.capacity_bytes * t.usd_per_byte for t in hw.tiers
    ]
    if hw.near_memory is not None:  # PIM loses commodity pricing on its tier
        tier_costs[hw.near_memory.tier] = tier_costs[hw.near_memory.tier] * hw.near_memory.price_multiplier
    memory_cost = sum(tier_costs)
    if hw.near_memory is not None:
        near_cost, near_yield = near_memory_dies(hw, tech, area.near_memory_mm2)
        near_kgco2e = area.near_memory_mm2 * tech.logic_kgco2e_per_mm2 / near_yield
    else:
        near_cost = near_kgco2e = jnp.zeros_like(logic_cost)
    chip_cost = logic_cost + near_cost + package_cost + memory_cost

    embodied_chip = (
        area.total_mm2 * tech.logic_kgco2e_per_mm2 / y
        + (1.0 - tech.memory_on_die) * hw.memory_capacity_bytes * tech.memory_kgco2e_per_byte
        + sum(t.capacity_bytes * t.kgco2e_per_byte for t in hw.tiers)
        + tech.package_kgco2e * area.chiplets
        + tech.on_interposer * interposer * tech.interposer_kgco2e_per_mm2
        + near_kgco2e
    )
    return ChipCapex(area, y, logic_cost, near_cost, package_cost, memory_cost, chip_cost,
                     _energy.peak_power_w(hw, tech), _energy.static_power_w(hw, tech), embodied_chip)


def operating_economics(hw, tech, chips, capex: ChipCapex, avg_chip_power_w, energy_per_token_j,
                        decode_energy_per_token_j, prefill_energy_j, output_tokens_per_s) -> Economics:
    """`Economics` of `chips` chips (each `capex`) drawing `avg_chip_power_w` on average
    while they produce `output_tokens_per_s` output tokens per second, all year."""
    area, avg_chip, peak = capex.area, avg_chip_power_w, capex.peak_power_w
    chip_cost = capex.chip_cost_usd
    system_power = avg_chip * chips * tech.server_power_ratio
    facility_power = system_power * tech.pue

    system_capex = (
        chips * chip_cost * tech.chip_price_multiplier * tech.server_capex_multiplier
        / (1.0 - tech.network_capex_fraction)
    )
    facility_capex = tech.facility_usd_per_w * chips * peak * tech.server_power_ratio
    lifetime_years = tech.lifetime_s / YEAR_S
    energy_usd_year = facility_power * YEAR_S * tech.electricity_usd_per_j
    tco = (
        system_capex / lifetime_years
        + facility_capex / (tech.facility_lifetime_s / YEAR_S)
        + energy_usd_year
        + tech.upkeep_fraction_per_year * system_capex
    )
    tokens_year = output_tokens_per_s * YEAR_S
    embodied_chip = capex.embodied_kgco2e_per_chip
    embodied = chips * embodied_chip
    operational_year = facility_power * YEAR_S * tech.grid_kgco2e_per_j
    carbon_year = embodied / lifetime_years + operational_year
    return Economics(
        area=area,
        chip_area_mm2=area.total_mm2,
        die_area_mm2=area.die_mm2,
        chiplets=area.chiplets,
        die_yield=capex.die_yield,
        logic_cost_usd=capex.logic_cost_usd,
        near_memory_mm2=area.near_memory_mm2,
        near_memory_cost_usd=capex.near_memory_cost_usd,
        package_cost_usd=capex.package_cost_usd,
        memory_cost_usd=capex.memory_cost_usd,
        chip_cost_usd=chip_cost,
        peak_power_w=peak,
        static_power_w=capex.static_power_w,
        average_power_w=avg_chip,
        energy_per_token_j=energy_per_token_j,
        decode_energy_per_token_j=decode_energy_per_token_j,
        prefill_energy_j=prefill_energy_j,
        system_average_power_w=system_power,
        facility_power_w=facility_power,
        system_capex_usd=system_capex,
        facility_capex_usd=facility_capex,
        tco_usd_per_year=tco,
        usd_per_million_tokens=tco / tokens_year * 1e6,
        embodied_kgco2e_per_chip=embodied_chip,
        embodied_kgco2e=embodied,
        operational_kgco2e_per_year=operational_year,
        kgco2e_per_million_tokens=carbon_year / tokens_year * 1e6,
        tokens_per_s_per_watt=output_tokens_per_s / facility_power,
        tokens_per_s_per_usd=output_tokens_per_s / tco,
        tokens_per_kgco2e=tokens_year / carbon_year,
    )
