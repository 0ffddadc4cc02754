"""Claim 11: 3D memory-logic stacking (Ma & Patterson 2026, direction 3).

(a) Compute on the HBM base die: the same bandwidth as HBM at 2-3x lower memory power,
so lower energy per token. ``b200-hbm4-pnm`` (8 HBM4 stacks whose base dies run the
memory-bound Decode work at 1.22 pJ/bit, against HBM4's 3.05) is compared with the same
chip with its base-die units off (offload 0, no logic die: a plain HBM4 B200).

(b) Heat: stacked logic has less surface, so its FLOP/s is capped (low clock and
voltage, DVFS: power ~ f^3) by a power density limit (W/mm2 of footprint) less the
stacked memory's own power. ``b200-3d`` (1000 TFLOP/s of logic under 8 HBM3E stacks,
4x internal bandwidth, 968 mm2) is swept over the limit. Decode runs on the stacked
logic (diffhw offloads it); Prefill, in diffhw, stays on the host, so here Prefill is
evaluated as if it ran on the same capped logic (the host's FLOP/s replaced by the
capped rate) — the paper's case of a design whose compute is the stacked die. Below the
limit where the memory alone exceeds the budget (``thermal_margin_w`` < 0) the design
is infeasible (diffhw's floor keeps the numbers finite; the region is marked).

Llama-3.1-70B BF16 on 8 chips (tp 8), batch 16, 4K-token prompts, 256-token answers.
Software overheads are set to 0 (the hardware's roofline).
"""

import pathlib
import sys

import _common
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import diffhw

CLAIM = 11
TITLE = "3D stacking: base-die compute cuts memory energy; a thermal FLOPS cap barely slows Decode but slows Prefill"

MODEL, PRECISION, BATCH, ISL, OSL, TP = "llama-3.1-70b", "bf16", 16, 4096, 256, 8
#: Ma & Patterson 2026, direction 3(a): the base die gives HBM's bandwidth at 2-3x lower power.
PAPER_POWER_CUT = (2.0, 3.0)
UNCAPPED_W_PER_MM2 = 1e3  # no thermal limit in practice
HALF_PEAK = 0.5  # the operating point: the logic capped to about half its peak FLOP/s
FLOPS = ("flop_per_s_fp32", "flop_per_s_bf16", "flop_per_s_fp8", "flop_per_s_int8", "flop_per_s_fp4")


def hardware_only(hw):
    p = eqx.tree_at(lambda p: (p.step_overhead_s, p.layer_overhead_s, p.sequence_overhead_s), hw.profile,
                    (jnp.zeros(()), jnp.zeros(()), jnp.zeros(())))
    return hw.replace(profile=p)


def evaluate_all(designs):
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *designs)
    vals = jax.vmap(lambda d: diffhw.metric_values(diffhw.evaluate_design(d, checked=False), d))(stacked)
    return {k: np.asarray(x, dtype=float) for k, x in vals.items()}


def _base_die_designs():
    """(a)'s designs: the chip with its base-die units off (host), then on, at two batches."""
    pnm = hardware_only(diffhw.presets.hardware("b200-hbm4-pnm"))
    tech = diffhw.presets.technology_for("b200-hbm4-pnm")
    host = pnm.replace(near_memory=eqx.tree_at(lambda n: (n.offload_fraction, n.logic_die), pnm.near_memory,
                                               (jnp.asarray(0.0), jnp.asarray(0.0))))
    model = diffhw.presets.model(MODEL)
    batches = [1, 64]
    designs = [diffhw.Design(hw, model, diffhw.workload(b, ISL, OSL, PRECISION), diffhw.parallelism(tp=TP), tech)
               for hw in (host, pnm) for b in batches]
    # the memory side alone: energy per byte the units read against the host's
    power_cut = float(tech.memory_j_per_byte / pnm.near_memory.j_per_byte)
    return designs, batches, power_cut


def _base_die_ratios(v, batches):
    n = len(batches)
    out = {}
    for i, b in enumerate(batches):
        out[b] = dict(tpot_ratio=v["tpot_s"][n + i] / v["tpot_s"][i],
                      energy_ratio=v["decode_energy_per_token_j"][n + i] / v["decode_energy_per_token_j"][i],
                      host_j=v["decode_energy_per_token_j"][i], pnm_j=v["decode_energy_per_token_j"][n + i])
    return out


def base_die(quick):
    """(a): Decode energy per token with and without the base-die units, two batches."""
    designs, batches, power_cut = _base_die_designs()
    return _base_die_ratios(evaluate_all(designs), batches), power_cut


def _relabel(designs, like):
    """`designs` in the structure of `like` (its static names; every value theirs): the
    b200-hbm4-pnm designs of (a) share (b)'s compiled program (the chips' fields are
    the same, only their names differ)."""
    hw = jax.tree_util.tree_structure(like.hardware)
    return [diffhw.Design(jax.tree_util.tree_unflatten(hw, jax.tree_util.tree_leaves(d.hardware)), d.model,
                          d.workload, d.parallelism, d.technology) for d in designs]


def run(quick: bool, out: pathlib.Path) -> dict:
    model = diffhw.presets.model(MODEL)
    hw = hardware_only(diffhw.presets.hardware("b200-3d"))
    tech = None
    par = diffhw.parallelism(tp=TP)
    wl = diffhw.workload(BATCH, ISL, OSL, PRECISION)
    densities = ([UNCAPPED_W_PER_MM2, 1.0, 0.5, 0.3, 0.22, 0.18, 0.1] if quick else
                 [UNCAPPED_W_PER_MM2, 2.0, 1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.22, 0.2, 0.19, 0.18, 0.17, 0.15, 0.1])
    peak = float(hw.near_memory.flop_per_s)

    def at_density(d, host_scale=None):
        nm = eqx.tree_at(lambda n: n.power_density_w_per_mm2, hw.near_memory, jnp.asarray(d))
        h = hw.replace(near_memory=nm)
        if host_scale is not None:  # Prefill on the capped stacked logic: host FLOP/s -> capped rate
            h = h.replace(**{f: getattr(h, f) * host_scale for f in FLOPS})
        return diffhw.Design(h, model, wl, par, tech)

    if quick:
        # (a) and (b) in one compiled program: (b) with (a)'s technology (which changes
        # none of (b)'s metrics), (a)'s designs relabelled to (b)'s structure, appended
        # to both passes (same structure and count)
        extra, die_batches, power_cut = _base_die_designs()
        tech = extra[0].technology
        extra = _relabel(extra, at_density(densities[0]))
    else:
        extra = []
    n = len(densities)
    # one compiled program for both passes (same structure and count)
    v1 = evaluate_all([at_density(d) for d in densities] + extra)
    if quick:
        die = _base_die_ratios({k: x[n:] for k, x in v1.items()}, die_batches)
        v1 = {k: x[:n] for k, x in v1.items()}
    capped = v1["near_memory_flop_per_s"]
    scale = capped / float(hw.flop_per_s_bf16)
    v2 = evaluate_all([at_density(d, s) for d, s in zip(densities, scale)] + extra)
    v2 = {k: x[:n] for k, x in v2.items()}
    decode = v1["decode_tokens_per_s"] / v1["decode_tokens_per_s"][0]
    prefill_tps = BATCH * ISL / v2["ttft_s"]
    prefill = prefill_tps / prefill_tps[0]
    margin = v1["thermal_margin_w"]
    feasible = margin >= 0
    # where the budget runs out (margin = 0): linear in the density
    budget_per_density = float(hw.near_memory.footprint_mm2)
    memory_w = float(UNCAPPED_W_PER_MM2 * budget_per_density - margin[0])
    cliff = memory_w / budget_per_density

    rows = [[f"{d:g}" if d < UNCAPPED_W_PER_MM2 else "none", f"{c / 1e12:.0f}", f"{c / peak:.2f}", f"{dec:.3f}",
             f"{pre:.3f}", f"{m:,.0f}", "" if ok else "INFEASIBLE"]
            for d, c, dec, pre, m, ok in zip(densities, capped, decode, prefill, margin, feasible)]
    _common.table(["W/mm2 limit", "logic TFLOP/s", "of peak", "Decode tok/s (norm.)", "Prefill tok/s (norm.)",
                   "thermal margin W", ""], rows,
                  f"Claim 11(b): b200-3d, {MODEL} {PRECISION}, tp {TP}, batch {BATCH}, {ISL}+{OSL} tokens")

    if not quick:
        die, power_cut = base_die(quick)
    _common.table(["batch", "Decode J/token HBM4", "with base-die PNM", "energy ratio", "TPOT ratio"],
                  [[b, f"{r['host_j']:.3f}", f"{r['pnm_j']:.3f}", f"{r['energy_ratio']:.2f}",
                    f"{r['tpot_ratio']:.3f}"] for b, r in die.items()],
                  f"Claim 11(a): b200-hbm4-pnm, memory energy per byte {power_cut:.2f}x lower (paper: 2-3x)")

    # the operating point: the tightest limit on the grid that leaves the logic at least
    # half its peak FLOP/s (a DVFS cap of ~0.8x clock and voltage), and what Decode and
    # Prefill keep there; and the tightest feasible limit (near the cliff)
    half = np.where(feasible & (capped / peak >= HALF_PEAK))[0]
    j = int(half[-1])
    tight_density, tight_decode, tight_prefill = float(densities[j]), float(decode[j]), float(prefill[j])
    edge = int(np.where(feasible)[0][-1])

    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    xs = np.array(densities[1:])
    ax.plot(xs, decode[1:], "o-", color="tab:blue", label="Decode tokens/s (on the stacked logic)")
    ax.plot(xs, prefill[1:], "s-", color="tab:red", label="Prefill tokens/s (if run on the same logic)")
    ax.plot(xs, capped[1:] / peak, ":", color="grey", label="stacked logic FLOP/s / peak (DVFS cap)")
    ax.axvspan(min(xs) * 0.9, cliff, color="k", alpha=0.12,
               label=f"infeasible: memory alone > budget (< {cliff:.2f} W/mm2)")
    ax.set(xscale="log", xlabel="thermal limit of the stacked logic (W/mm2 of footprint)",
           ylabel="relative to no thermal limit", ylim=(0, 1.1),
           title="3D stacking under a thermal cap: Decode barely moves, Prefill falls")
    ax.legend(fontsize=8, loc="lower right")
    figure = _common.save(fig, out, "claim_11_3d_thermal.png")

    b1 = die[1]
    # (a) at batch 1 (memory-bound Decode, where the paper's case applies)
    lower_energy = b1["energy_ratio"] < 1.0 and die[64]["energy_ratio"] < 1.0
    same_bw = abs(b1["tpot_ratio"] - 1.0) < 0.05
    decode_holds = tight_decode > 0.9
    prefill_hurts = tight_prefill < 0.7
    in_range = PAPER_POWER_CUT[0] <= power_cut <= PAPER_POWER_CUT[1]
    status = "reproduced" if (lower_energy and same_bw and decode_holds and prefill_hurts and in_range) else "partial"
    paper = ("Compute on the HBM base die gives HBM's bandwidth at 2-3x lower power; stacked logic must cap "
             "its FLOPS (low clock and voltage) for heat, which Decode tolerates (low arithmetic intensity) "
             "while Prefill does not.")
    ours = (f"Base die (b200-hbm4-pnm, {power_cut:.1f}x less energy per byte by assumption): TPOT "
            f"{b1['tpot_ratio']:.2f}x, Decode energy per token {b1['energy_ratio']:.2f}x at batch 1 and "
            f"{die[64]['energy_ratio']:.2f}x at batch 64, where the 400 TFLOP/s base dies (offload 1) bind "
            f"(TPOT {die[64]['tpot_ratio']:.2f}x) and their static power outweighs the memory saving. "
            f"b200-3d at {tight_density:g} W/mm2 (logic at {capped[j] / peak:.0%} of peak): Decode keeps "
            f"{tight_decode:.0%} of its throughput, Prefill on the same logic {tight_prefill:.0%}; at "
            f"{densities[edge]:g} W/mm2, near the cliff, Decode too falls ({decode[edge]:.0%}); below "
            f"{cliff:.2f} W/mm2 the stacked memory alone exceeds the budget and the design is flagged infeasible "
            f"(thermal_margin_w < 0).")
    print(ours)
    return _common.result(
        CLAIM, TITLE, status, paper, ours, figure,
        base_die_energy_per_byte_cut=power_cut,
        base_die_tpot_ratio_batch1=float(b1["tpot_ratio"]),
        base_die_energy_ratio_batch1=float(b1["energy_ratio"]),
        base_die_energy_ratio_batch64=float(die[64]["energy_ratio"]),
        densities_w_per_mm2=[float(d) for d in densities],
        decode_relative=[float(x) for x in decode], prefill_relative=[float(x) for x in prefill],
        logic_flop_fraction=[float(c / peak) for c in capped],
        thermal_margin_w=[float(m) for m in margin], feasible=[bool(f) for f in feasible],
        infeasible_below_w_per_mm2=cliff,
        operating_w_per_mm2=tight_density, decode_at_operating=tight_decode, prefill_at_operating=tight_prefill,
        base_die_tpot_ratio_batch64=float(die[64]["tpot_ratio"]),
    )


if __name__ == "__main__":
    sys.exit(_common.main(run))
