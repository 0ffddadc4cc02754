"""The CLI's JSON dictionary of a design's metrics (a public contract)."""

import jax.numpy as jnp

from .._hardware import _near_memory
from ._evaluate import Metrics, bound_name


def metrics_dict(m: Metrics, hw, model, wl, par) -> dict:
    """The JSON dictionary of the CLI (a public contract: keys and units are stable)."""

    def f(x):
        return float(jnp.asarray(x))

    def steps(s):
        return {
            "compute": f(s.compute_s),
            "memory": f(s.memory_s),
            "communication": f(s.communication_s),
            "overhead": f(s.overhead_s),
            "total": f(s.total_s),
        }

    return {
        "hardware": hw.name,
        "model": model.name,
        "profile": hw.profile.name,
        "chips": int(round(f(par.chips))),
        "tp": int(round(f(par.tp))),
        "pp": int(round(f(par.pp))),
        "dp": int(round(f(par.dp))),
        "ep": int(round(f(par.ep))),
        "batch": f(wl.batch),
        "input_tokens": f(wl.input_tokens),
        "output_tokens": f(wl.output_tokens),
        "weight_precision": wl.weight_precision.name,
        "activation_precision": wl.activation_precision.name,
        "kv_precision": wl.kv_precision.name,
        "tpot_s": f(m.tpot_s),
        "ttft_s": f(m.ttft_s),
        "e2e_latency_s": f(m.e2e_latency_s),
        "output_tokens_per_s": f(m.output_tokens_per_s),
        "decode_tokens_per_s": f(m.decode_tokens_per_s),
        "per_user_tokens_per_s": f(m.per_user_tokens_per_s),
        "memory_required_bytes": f(m.memory_required_bytes),
        "memory_capacity_bytes": f(m.memory_capacity_bytes),
        "memory_usable_bytes": f(m.memory_usable_bytes),
        "memory_breakdown_bytes": {
            "weights": f(m.weight_bytes),
            "kv_cache": f(m.kv_cache_bytes),
            "activations": f(m.activation_bytes),
        },
        "fits": bool(m.fits),
        "max_batch": int(f(m.max_batch)),
        "bound": bound_name(m),
        "step_time_breakdown_s": steps(m.decode),
        "prefill_time_breakdown_s": steps(m.prefill),
        "shared_context_tokens": f(wl.shared_context_tokens),
        "routing_skew": f(wl.routing_skew),
        "beam_width": f(wl.beam_width),
        "tiers": _tiers_list(m.tiers),
        "total_params": f(model.total_params()),
        "active_params": f(model.active_params()),
        **(_economics_dict(m.economics) if m.economics is not None else {}),
        **(_near_memory_dict(hw) if hw.near_memory is not None else {}),
    }


def _near_memory_dict(hw) -> dict:
    """Near-memory units: the thermal margin (W, < 0 is infeasible) and the FLOP/s they
    sustain under the thermal cap."""
    return {"thermal_margin_w": float(_near_memory.thermal_margin_w(hw)),
            "near_memory_flop_per_s": float(_near_memory.near_flop_per_s(hw))}


#: Economics fields reported by the CLI, with their JSON names (units in the names).
ECONOMICS_KEYS = (
    "energy_per_token_j", "decode_energy_per_token_j", "prefill_energy_j", "average_power_w",
    "peak_power_w", "static_power_w", "system_average_power_w", "facility_power_w", "chip_area_mm2",
    "die_area_mm2", "chiplets", "die_yield", "chip_cost_usd", "logic_cost_usd", "package_cost_usd",
    "memory_cost_usd", "system_capex_usd", "facility_capex_usd", "tco_usd_per_year",
    "usd_per_million_tokens", "embodied_kgco2e", "embodied_kgco2e_per_chip",
    "operational_kgco2e_per_year", "kgco2e_per_million_tokens", "tokens_per_s_per_watt",
    "tokens_per_s_per_usd", "tokens_per_kgco2e", "near_memory_cost_usd",
)


def _tiers_list(t) -> list:
    """Per-tier traffic, occupancy and lifetime (tier 0 is main memory), per chip."""
    out = []
    for i, name in enumerate(t.names):
        out.append({
            "name": name,
            "capacity_bytes": float(t.capacity_bytes[i]),
            "occupancy_bytes": float(t.occupancy_bytes[i]),
            "margin": float(t.margin[i]),
            "read_bytes_per_s": float(t.read_bytes_per_s[i]),
            "write_bytes_per_s": float(t.write_bytes_per_s[i]),
            "lifetime_s": float(t.lifetime_s[i]),
            "needed_buffer_bytes": float(t.needed_buffer_bytes[i]),
        })
    return out


def _economics_dict(e) -> dict:
    out = {k: float(jnp.asarray(getattr(e, k))) for k in ECONOMICS_KEYS}
    a = e.area
    out["area_breakdown_mm2"] = {
        "compute": float(a.compute_mm2), "sram": float(a.sram_mm2),
        "memory_phy": float(a.memory_phy_mm2), "serdes": float(a.serdes_mm2),
        "near_memory": float(a.near_memory_mm2),
    }
    return out
