"""Claim 14: the trend matrix (Ma & Patterson 2026, Table 2). Each of the six trends
(`diffhw.trends`) is applied to one baseline workload and its demands are compared with
the baseline's, resource by resource:

- capacity: memory the whole system must hold (weights, KV cache, shared context,
  activations), from `diffhw.evaluate` on one (unbounded) chip;
- bandwidth: bytes read from memory per generated token in Decode
  (`diffhw.workload_costs(...)["decode_per_output_token"]`);
- interconnect latency: chips needed to hold that memory (a larger system has more
  hops and more chips in each per-token collective; the Decode communication time on
  that system is shown beside it);
- compute: FLOPs per generated token in Decode, counted as a stress only where compute
  also binds the Decode step (FLOPs that arrive with proportional memory reads, as
  attention over a longer context does, are paid by the memory system).

A trend "stresses" a resource when it raises that demand by at least `THRESHOLD`
(25 %) over the baseline. The paper's marks are overlaid on the heat map.
"""

import math
import sys

import numpy as np

import _common
import diffhw
from diffhw import trends

CLAIM = 14
TITLE = "The trend matrix: which of capacity, bandwidth, interconnect latency and compute each trend stresses"

RESOURCES = ("capacity", "bandwidth", "latency", "compute")
# Ma & Patterson 2026, Table 2 (PAPER.md, "Trend x bottleneck"): the marks per trend.
PAPER = {
    "moe": {"capacity", "bandwidth", "latency"},
    "reasoning": {"capacity", "bandwidth"},
    "multimodal": {"capacity", "bandwidth"},
    "long_context": {"capacity", "bandwidth"},
    "rag": {"capacity", "bandwidth"},
    "diffusion": {"compute"},
}
# The paper adds interconnect latency to these four only "via a larger system": a mark
# for latency there agrees with the paper either way.
INDIRECT = {"reasoning": {"latency"}, "multimodal": {"latency"}, "long_context": {"latency"}, "rag": {"latency"}}
THRESHOLD = 1.25  # a demand at least 25 % above the baseline's counts as stressed

MODEL, HARDWARE = "llama-3.1-70b", "h100-sxm"
BASE = dict(batch=32, input_tokens=2048, output_tokens=256)  # a chat-serving baseline, bf16
OTHER_BATCHES = (8, 128)  # the same matrix at a small and a large batch


def _layout(chips):
    """Tensor parallel up to 8 (one NVLink domain), pipeline stages beyond."""
    tp = min(8, 2 ** math.ceil(math.log2(max(chips, 1))))
    return tp, math.ceil(chips / tp)


def measure(hw, model, wl, trend):
    """Demands of `trend` (None: the baseline) applied to (model, wl) on `hw`."""
    names = [] if trend is None else [trend]
    m, w, _ = trends.apply(model, wl, names)
    one = diffhw.evaluate(hw, m, w, diffhw.parallelism())  # one chip: the whole system's bytes
    total = float(one.memory_required_bytes)
    chips = max(1, math.ceil(total / float(one.memory_usable_bytes)))
    tp, pp = _layout(chips)
    m, w, par = trends.apply(model, wl, names, diffhw.parallelism(tp=tp, pp=pp))
    r = diffhw.evaluate(hw, m, w, par)
    per_tok = diffhw.workload_costs(m, w)["decode_per_output_token"]["model"]
    d = r.decode
    return {
        "memory_bytes": total, "chips": chips, "tp": tp, "pp": pp,
        "bytes_per_token": per_tok["bytes"], "flops_per_token": per_tok["flops"],
        "tpot_s": float(r.tpot_s), "bound": diffhw.bound_name(r),
        "decode_compute_s": float(d.compute_s), "decode_memory_s": float(d.memory_s),
        "decode_communication_s": float(d.communication_s), "decode_overhead_s": float(d.overhead_s),
    }


def marks(base, x):
    """Relative increases of `x` over `base` and the resources stressed."""
    ratio = {"capacity": x["memory_bytes"] / base["memory_bytes"],
             "bandwidth": x["bytes_per_token"] / base["bytes_per_token"],
             "latency": x["chips"] / base["chips"],
             "compute": x["flops_per_token"] / base["flops_per_token"]}
    stressed = {k for k in ("capacity", "bandwidth", "latency") if ratio[k] >= THRESHOLD}
    if ratio["compute"] >= THRESHOLD and x["bound"] == "compute":
        stressed.add("compute")
    return ratio, stressed


def agrees(trend, stressed):
    paper = PAPER[trend]
    optional = INDIRECT.get(trend, set())
    return paper <= stressed and stressed <= paper | optional


def _diff(trend, stressed):
    """What a row lacks (-) or adds (+) against the paper's marks."""
    stressed = set(stressed)
    lack = sorted(PAPER[trend] - stressed)
    extra = sorted(stressed - PAPER[trend] - INDIRECT.get(trend, set()))
    return ", ".join([f"-{k}" for k in lack] + [f"+{k}" for k in extra])


def matrix(hw, model, batch):
    wl = diffhw.workload(batch, BASE["input_tokens"], BASE["output_tokens"], "bf16")
    base = measure(hw, model, wl, None)
    out = {}
    for t in trends.TRENDS:
        x = measure(hw, model, wl, t)
        ratio, stressed = marks(base, x)
        out[t] = dict(x, ratio=ratio, stressed=sorted(stressed), agrees=agrees(t, stressed))
    return base, out


def run(quick, out):
    hw = diffhw.presets.hardware(HARDWARE)
    model = diffhw.presets.model(MODEL)
    base, res = matrix(hw, model, BASE["batch"])

    rows = []
    for t, x in res.items():
        r = x["ratio"]
        cells = [f"{r[k]:.2f}x{' *' if k in x['stressed'] else ''}" for k in RESOURCES]
        paper = ", ".join(k for k in RESOURCES if k in PAPER[t]) + (" (+latency via size)" if t in INDIRECT else "")
        rows.append([t, *cells, x["bound"], f"{x['chips']} ({x['tp']}x{x['pp']})",
                     f"{x['decode_communication_s'] / max(base['decode_communication_s'], 1e-12):.2f}x", paper,
                     "yes" if x["agrees"] else "NO"])
    _common.table(
        ["trend", "capacity", "bandwidth", "latency (chips)", "compute", "Decode bound", "chips (tp x pp)",
         "comm/token", "paper's marks (Table 2)", "agrees"], rows,
        f"Claim 14: demand over the baseline ({MODEL} bf16 on {HARDWARE}, batch {BASE['batch']}, "
        f"{BASE['input_tokens']} in / {BASE['output_tokens']} out: {base['chips']} chips, Decode "
        f"{base['bound']}-bound); * = stressed (>= {THRESHOLD:.2f}x; compute also needs a compute-bound Decode)")

    # robustness: the same matrix at other baseline batches (values only: no new compile)
    by_batch = {}
    for b in OTHER_BATCHES:
        _, rb = matrix(hw, model, b)
        by_batch[b] = {t: dict(stressed=x["stressed"], agrees=bool(x["agrees"]), bound=x["bound"],
                               ratios={k: float(v) for k, v in x["ratio"].items()}) for t, x in rb.items()}
    _common.table(["batch", *trends.TRENDS], [[b, *(("ok " if v["agrees"] else "NO ") + "+".join(v["stressed"])
                                                     for v in rb.values())] for b, rb in by_batch.items()],
                  "The same marks at other baseline batches (ok: agrees with Table 2)")

    figure = _figure(base, res, out)

    compute_bound = [t for t, x in res.items() if x["bound"] == "compute"]
    agreeing = [t for t, x in res.items() if x["agrees"]]
    here = len(agreeing) == len(res) and compute_bound == ["diffusion"]
    elsewhere = {b: [t for t, v in rb.items() if not v["agrees"]] for b, rb in by_batch.items()}
    if here and not any(elsewhere.values()):
        status = "reproduced"
    elif here or compute_bound == ["diffusion"]:
        status = "partial"
    else:
        status = "contradicted"
    missing = [f"{t} ({_diff(t, res[t]['stressed'])})" for t in res if not res[t]["agrees"]]
    other = "; ".join(f"at batch {b}: " + ", ".join(f"{t} ({_diff(t, by_batch[b][t]['stressed'])})" for t in ts)
                      for b, ts in elsewhere.items() if ts)
    r = {t: x["ratio"] for t, x in res.items()}
    paper = ("Table 2: MoE stresses capacity, bandwidth and interconnect; reasoning, multimodal, long context "
             "and RAG stress capacity and bandwidth (and latency via a larger system); only diffusion raises "
             "compute.")
    ours = (f"On {MODEL} bf16, {HARDWARE}, batch {BASE['batch']}: {len(agreeing)} of 6 trends match the paper's "
            f"marks at a {THRESHOLD:.2f}x threshold; only {', '.join(compute_bound) or 'none'} leaves Decode "
            f"compute-bound (diffusion: {r['diffusion']['compute']:.0f}x FLOPs/token, "
            f"{r['diffusion']['bandwidth']:.2f}x bytes/token). MoE needs {r['moe']['capacity']:.1f}x the memory and "
            f"{r['moe']['bandwidth']:.1f}x the bytes/token; long context {r['long_context']['capacity']:.1f}x and "
            f"{r['long_context']['bandwidth']:.1f}x."
            f" MoE's Decode communication per token on its {res['moe']['chips']} chips is only "
            f"{res['moe']['decode_communication_s'] / base['decode_communication_s']:.2f}x the baseline's."
            + (f" Mismatches: {'; '.join(missing)}." if missing else "")
            + (f" The marks move with the batch: {other}." if other else ""))
    return _common.result(
        CLAIM, TITLE, status, paper, ours, figure,
        threshold=THRESHOLD, baseline_chips=base["chips"], baseline_bound=base["bound"],
        ratios={t: {k: float(v) for k, v in x.items()} for t, x in r.items()},
        stressed={t: x["stressed"] for t, x in res.items()},
        agrees={t: bool(x["agrees"]) for t, x in res.items()},
        bound={t: x["bound"] for t, x in res.items()},
        chips={t: int(x["chips"]) for t, x in res.items()},
        compute_bound=compute_bound, by_batch={str(b): v for b, v in by_batch.items()},
    )


def _figure(base, res, out):
    plt = _common.pyplot()
    names = list(res)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
    z = np.array([[math.log2(res[t]["ratio"][k]) for k in RESOURCES] for t in names])
    lim = max(1.0, float(np.max(np.abs(z))))
    im = ax.imshow(z, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for i, t in enumerate(names):
        for j, k in enumerate(RESOURCES):
            ours = k in res[t]["stressed"]
            ax.text(j, i, f"{res[t]['ratio'][k]:.2g}x" + ("\nstressed" if ours else ""), ha="center",
                    va="center", fontsize=7.5, fontweight="bold" if ours else "normal")
            if k in PAPER[t] or k in INDIRECT.get(t, set()):
                dashed = k in INDIRECT.get(t, set())
                ax.add_patch(plt.Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=2,
                                           ls="--" if dashed else "-", ec="black"))
    ax.set_xticks(range(len(RESOURCES)))
    ax.set_xticklabels(["capacity\n(memory held)", "bandwidth\n(bytes/token)", "latency\n(chips needed)",
                        "compute\n(FLOPs/token)"], fontsize=8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_title("demand over the baseline (colour: log2 ratio)\nbox: paper's mark (Table 2), dashed: via system size",
                 fontsize=9)
    fig.colorbar(im, ax=ax, label="log2(trend / baseline)")

    parts = ("decode_compute_s", "decode_memory_s", "decode_communication_s", "decode_overhead_s")
    labels = ("compute", "memory", "communication", "overhead")
    rows = ["baseline", *names]
    vals = np.array([[(base if t == "baseline" else res[t])[p] for p in parts] for t in rows])
    share = vals / vals.sum(axis=1, keepdims=True)
    left = np.zeros(len(rows))
    for j, lab in enumerate(labels):
        bx.barh(range(len(rows)), share[:, j], left=left, label=lab, color=f"C{j}")
        left += share[:, j]
    bx.set_yticks(range(len(rows)))
    bx.set_yticklabels([f"{t} ({(base if t == 'baseline' else res[t])['chips']} chips)" for t in rows], fontsize=8)
    bx.invert_yaxis()
    bx.set_xlabel("share of the Decode step time (on the chips needed)")
    bx.set_title("what binds Decode: only diffusion is compute-bound in the paper", fontsize=9)
    bx.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4)
    return _common.save(fig, out, "claim_14_trend_matrix.png")


if __name__ == "__main__":
    sys.exit(_common.main(run))
