"""Claim 10: PIM becomes plausible on mobile: small model, batch 1, short context,
energy-limited (Ma & Patterson 2026, direction 2).

A Snapdragon 8 Gen 3-class phone (16 GB LPDDR5X, 76.8 GB/s) against the same phone
with LPDDR5X-PIM (``snapdragon-8-gen-3-pim``: ~1 TFLOP/s of bank-level units, 8x
internal bandwidth at ~1 pJ/bit, 32 MB shards, -25% capacity, +50% $/GB). Llama-3.1-8B
with INT4 weights, 128-token answers, over the batch and the prompt length. Tokens/s
and Decode energy per token (J) from ``technology=``. Both phones are evaluated as one
structure (the plain phone is the PIM phone with its units off: offload 0, no capacity or
price penalty), so one program is compiled. Software overheads are set to 0 (the
hardware's roofline), as in claim 9.
"""

import pathlib
import sys

import _common
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import diffhw

CLAIM = 10
TITLE = "PIM is plausible on mobile: small model, batch 1, short context, energy-limited"

MODEL, PRECISION, OSL = "llama-3.1-8b", "int4", 128


def hardware_only(hw):
    p = eqx.tree_at(lambda p: (p.step_overhead_s, p.layer_overhead_s, p.sequence_overhead_s), hw.profile,
                    (jnp.zeros(()), jnp.zeros(()), jnp.zeros(())))
    return hw.replace(profile=p)


def phones():
    pim = hardware_only(diffhw.presets.hardware("snapdragon-8-gen-3-pim"))
    off = eqx.tree_at(lambda n: (n.offload_fraction, n.capacity_penalty, n.price_multiplier), pim.near_memory,
                      (jnp.asarray(0.0), jnp.asarray(0.0), jnp.asarray(1.0)))
    return {"phone (LPDDR5X)": pim.replace(near_memory=off), "phone + LPDDR5X-PIM": pim}


def run(quick: bool, out: pathlib.Path) -> dict:
    model = diffhw.presets.model(MODEL)
    tech = diffhw.presets.technology_for("snapdragon-8-gen-3-pim")  # N4P logic, LPDDR5X rows (both phones)
    par = diffhw.parallelism()
    batches = [1, 4, 16] if quick else [1, 2, 4, 8, 16, 32]
    contexts = [512, 8192] if quick else [256, 1024, 4096, 16384]
    hws = phones()
    keys, points = [], []
    for name, hw in hws.items():
        for b in batches:
            for c in contexts:
                keys.append((name, b, c))
                points.append(diffhw.Design(hw, model, diffhw.workload(b, c, OSL, PRECISION), par, tech))
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *points)
    # design_values: the metrics compiled with the design (not dispatched one by one)
    vals = jax.vmap(lambda d: diffhw.design_values(d, checked=False))(stacked)
    v = {k: np.asarray(x, dtype=float) for k, x in vals.items()}

    def at(name, b, c, metric):
        return float(v[metric][keys.index((name, b, c))])

    base, pim = list(hws)
    fits = {k: bool(v["memory_margin"][i] >= 0) for i, k in enumerate(keys)}
    rows, speed, energy = [], {}, {}
    for b in batches:
        for c in contexts:
            s = at(pim, b, c, "decode_tokens_per_s") / at(base, b, c, "decode_tokens_per_s")
            e = at(pim, b, c, "decode_energy_per_token_j") / at(base, b, c, "decode_energy_per_token_j")
            speed[b, c], energy[b, c] = s, e
            rows.append([b, c, f"{at(base, b, c, 'per_user_tokens_per_s'):.1f}",
                         f"{at(pim, b, c, 'per_user_tokens_per_s'):.1f}", f"{s:.2f}x",
                         f"{at(base, b, c, 'decode_energy_per_token_j'):.3f}",
                         f"{at(pim, b, c, 'decode_energy_per_token_j'):.3f}", f"{e:.2f}x",
                         "yes" if fits[pim, b, c] else "NO"])
    _common.table(["batch", "prompt", "tok/s/user phone", "tok/s/user PIM", "speed-up", "J/tok phone",
                   "J/tok PIM", "energy ratio", "PIM fits"], rows,
                  f"Claim 10: {MODEL} {PRECISION} on a Snapdragon 8 Gen 3-class phone, {OSL}-token answers")

    b0, c0, c1, bn = batches[0], contexts[0], contexts[-1], batches[-1]
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    for c, ls in zip(contexts, ("-", "--", "-.", ":")):
        axes[0].plot(batches, [speed[b, c] for b in batches], ls=ls, marker="o", color="tab:red",
                     label=f"tokens/s, prompt {c}")
        axes[1].plot(batches, [energy[b, c] for b in batches], ls=ls, marker="o", color="tab:green",
                     label=f"J/token, prompt {c}")
    for ax, what in ((axes[0], "PIM phone / plain phone: Decode tokens/s"),
                     (axes[1], "PIM phone / plain phone: Decode J/token")):
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(xscale="log", xlabel="batch (concurrent sequences)", ylabel="ratio (PIM / plain)", title=what)
        ax.legend(fontsize=8)
    figure = _common.save(fig, out, "claim_10_pim_mobile.png")

    plausible = speed[b0, c0] > 1.2 and energy[b0, c0] < 0.9
    fades = speed[bn, c0] < speed[b0, c0]
    status = "reproduced" if plausible and fades else "partial"
    paper = ("Mobile is the exception to PNM over PIM: small models, batch 1 and short contexts on an "
             "energy-limited device make PIM plausible (no number given).")
    ours = (f"{MODEL} {PRECISION} on the phone, batch {b0}, {c0}-token prompt: PIM gives {speed[b0, c0]:.2f}x the "
            f"Decode tokens/s at {energy[b0, c0]:.2f}x the J/token; at batch {bn} the speed-up falls to "
            f"{speed[bn, c0]:.2f}x ({energy[bn, c0]:.2f}x J/token) as the ~1 TFLOP/s bank units bind, and with a "
            f"{c1}-token prompt at batch {b0} it is {speed[b0, c1]:.2f}x ({energy[b0, c1]:.2f}x J/token). "
            f"Hardware-only roofline (software overheads 0).")
    print(ours)
    return _common.result(
        CLAIM, TITLE, status, paper, ours, figure,
        batches=batches, contexts=contexts,
        speedup_batch1_short=speed[b0, c0], energy_ratio_batch1_short=energy[b0, c0],
        speedup_large_batch_short=speed[bn, c0], energy_ratio_large_batch_short=energy[bn, c0],
        speedup_batch1_long=speed[b0, c1], energy_ratio_batch1_long=energy[b0, c1],
        tokens_per_s_batch1_short={"phone": at(base, b0, c0, "per_user_tokens_per_s"),
                                   "pim": at(pim, b0, c0, "per_user_tokens_per_s")},
        j_per_token_batch1_short={"phone": at(base, b0, c0, "decode_energy_per_token_j"),
                                  "pim": at(pim, b0, c0, "decode_energy_per_token_j")},
    )


if __name__ == "__main__":
    sys.exit(_common.main(run))
