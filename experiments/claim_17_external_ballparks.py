"""Claim 17: the two outside ballparks the paper quotes for HBF (Ma & Patterson 2026,
direction 1), rebuilt from presets.

SanDisk: Llama-3.1-405B on HBF came within 2.2% of an HBM of unlimited capacity.
Assumptions: one `b200-hbf` chip (weights in its 8 HBF stacks, KV cache in HBM), BF16
weights and KV, 16 requests of 8192 + 1024 tokens; the reference is the same chip whose HBF
tier reads like HBM (Table 3: 10-100 ns, taken as 100 ns; 32-byte accesses) with 100x
its capacity, i.e. the same bandwidth without flash's latency and page size. The ratio
is the TPOT of the HBF chip over the reference's.

SK hynix H3: a B200 with 8 HBM3E + 8 HBF stacks, read-only data (weights and a shared,
pre-computed KV cache of a long context) in HBF, a 40 MB SRAM latency buffer (the
`b200-hbf` preset as shipped) against an HBM-only B200 system with the same number of
GPUs. Assumptions: Llama-3.1-405B in BF16 (weights and KV: 10M shared tokens are
5.2 TB, the H3 paper's "5.4 TB"), each request adds 1024 prompt + 1024 output tokens to
the shared context; the GPU count is the fewest HBM-only B200s that hold the weights,
the longest (10M-token) shared context and one request (`diffhw.min_chips`, every tp x
pp layout), the same system and layout for both designs and every context; each system serves the largest batch its memory holds (the H3 paper's
"more requests at once with the same number of GPUs"). Gains: Decode tokens/s and
tokens/s per facility watt, H3 over HBM-only.
"""

import pathlib
import sys

import _common
import equinox as eqx
import jax.numpy as jnp
import numpy as np

import diffhw

CLAIM = 17
TITLE = "External ballparks: SanDisk's 405B within 2.2% of unlimited HBM; SK hynix H3's gains grow with context"

#: Ma & Patterson 2026, direction 1 (outside figures): SanDisk HBF within 2.2% of unlimited HBM; SK hynix H3
#: tokens/s gains 1.25x at 1M and 6.14x at 10M tokens of context, 2.69x perf/W (also reported: 18.8x larger
#: batch, https://www.pulse.bot/ai/news/sk-hynix-proposes-hbm-and-hbf-hybrid-for-llm-inference-fe232417-a360-47a0-a178-fd350dfc47d8).
PAPER_SANDISK_GAP = 0.022
PAPER_H3 = {1_000_000: 1.25, 10_000_000: 6.14}
PAPER_H3_PERF_PER_W = 2.69
PAPER_H3_BATCH = 18.8
HBM_LATENCY_S = 100e-9  # Ma & Patterson 2026, Table 3: HBM4 read latency 10-100 ns (upper end)
HBM_ACCESS_BYTES = 32.0  # Ma & Patterson 2026, Table 3: HBM bytes per read
MODEL = "llama-3.1-405b"
H3_MAX_CHIPS = 64


def sandisk(model):
    hw = diffhw.presets.hardware("b200-hbf")
    tech = diffhw.presets.technology_for("b200-hbf")
    wl = diffhw.workload(16, 8192, 1024, "bf16")  # BF16 as H3's below: one compiled program for both
    par = diffhw.parallelism()
    hbf = diffhw.evaluate(hw, model, wl, par, technology=tech)
    ideal_tier = eqx.tree_at(lambda t: (t.read_latency_s, t.granularity_bytes, t.capacity_bytes), hw.tiers[0],
                             (jnp.asarray(HBM_LATENCY_S, dtype=jnp.float32), jnp.asarray(HBM_ACCESS_BYTES, dtype=jnp.float32),
                              hw.tiers[0].capacity_bytes * 100.0))
    # (float32 leaves, not weakly typed ones, as the preset's: the same compiled program)
    ideal = diffhw.evaluate(hw.replace(tiers=(ideal_tier,)), model, wl, par, technology=tech)
    # the same HBF chip with a tenth of H3's 40 MB latency buffer: what the buffer hides
    small_tier = eqx.tree_at(lambda t: t.prefetch_buffer_bytes, hw.tiers[0], hw.tiers[0].prefetch_buffer_bytes / 10.0)
    small = diffhw.evaluate(hw.replace(tiers=(small_tier,)), model, wl, par, technology=tech)
    return {"hbf_tpot_ms": float(hbf.tpot_s) * 1e3, "ideal_tpot_ms": float(ideal.tpot_s) * 1e3,
            "gap": float(hbf.tpot_s) / float(ideal.tpot_s) - 1.0, "fits": bool(hbf.fits),
            "gap_with_4mb_buffer": float(small.tpot_s) / float(ideal.tpot_s) - 1.0}


def serve_max_batch(name, model, context, par):
    """Decode tokens/s, tokens/s per W and batch at the largest batch that fits."""
    hw = diffhw.presets.hardware(name)
    tech = diffhw.presets.technology_for(name)
    wl1 = diffhw.workload(1, 1024, 1024, "bf16", shared_context_tokens=float(context))
    probe = diffhw.evaluate(hw, model, wl1, par, technology=tech)
    batch = float(probe.max_batch)
    if batch < 1.0:
        return {"batch": 0.0, "tokens_per_s": 0.0, "tokens_per_s_per_w": 0.0, "tpot_ms": float("nan")}
    wl = diffhw.workload(batch, 1024, 1024, "bf16", shared_context_tokens=float(context))
    m = diffhw.evaluate(hw, model, wl, par, technology=tech)
    return {"batch": batch, "tokens_per_s": float(m.decode_tokens_per_s),
            "tokens_per_s_per_w": float(m.decode_tokens_per_s) / float(m.economics.facility_power_w),
            "tpot_ms": float(m.tpot_s) * 1e3}


def h3_system(model, context):
    """The fewest HBM-only B200s (and their tp x pp layout) holding the weights, `context`
    shared tokens and one request."""
    wl1 = diffhw.workload(1, 1024, 1024, "bf16", shared_context_tokens=float(context))
    design = diffhw.Design(diffhw.presets.hardware("b200"), model, wl1, diffhw.parallelism(),
                           diffhw.presets.technology_for("b200"))
    r = diffhw.min_chips(design, max_chips=H3_MAX_CHIPS, data_parallel=False)
    if r.chips is None:
        raise RuntimeError(f"{context} tokens do not fit {H3_MAX_CHIPS} B200s")
    return r


def h3(model, context, system):
    base = serve_max_batch("b200", model, context, system.parallelism)
    hyb = serve_max_batch("b200-hbf", model, context, system.parallelism)
    return {"gpus": system.chips,
            "layout": f"tp{int(float(system.parallelism.tp))} pp{int(float(system.parallelism.pp))}",
            "hbm": base, "h3": hyb,
            "speedup": hyb["tokens_per_s"] / base["tokens_per_s"],
            "perf_per_w_gain": hyb["tokens_per_s_per_w"] / base["tokens_per_s_per_w"],
            "batch_gain": hyb["batch"] / base["batch"]}


def run(quick: bool, out: pathlib.Path) -> dict:
    model = diffhw.presets.model(MODEL)
    sd = sandisk(model)
    contexts = [1_000_000, 10_000_000] if quick else [125_000, 1_000_000, 2_000_000, 4_000_000, 10_000_000]
    system = h3_system(model, max(contexts))  # one system for every context, as "the same number of GPUs"
    res = {c: h3(model, c, system) for c in contexts}

    _common.table(["ballpark", "paper", "diffhw"], [
        ["SanDisk: 405B on HBF vs unlimited HBM (TPOT gap)", f"{PAPER_SANDISK_GAP:.1%}",
         f"{sd['gap']:.2%} ({sd['hbf_tpot_ms']:.2f} vs {sd['ideal_tpot_ms']:.2f} ms)"],
        ["  same, latency buffer 4 MB instead of 40 MB", "", f"{sd['gap_with_4mb_buffer']:.1%}"],
    ], "SanDisk HBF, Llama-3.1-405B BF16 on one b200-hbf, batch 16, 8192+1024 tokens")
    _common.table(
        ["shared context", "GPUs (layout)", "batch HBM / H3", "tokens/s HBM", "tokens/s H3", "speedup (paper)",
         "perf/W gain (paper)"],
        [[f"{c / 1e6:g}M", f"{r['gpus']} ({r['layout']})", f"{r['hbm']['batch']:.0f} / {r['h3']['batch']:.0f}",
          r["hbm"]["tokens_per_s"], r["h3"]["tokens_per_s"],
          f"{r['speedup']:.2f}x" + (f" ({PAPER_H3[c]}x)" if c in PAPER_H3 else ""),
          f"{r['perf_per_w_gain']:.2f}x" + (f" (up to {PAPER_H3_PERF_PER_W}x)" if c == contexts[-1] else "")]
         for c, r in res.items()],
        "SK hynix H3 (8 HBM3E + 8 HBF per B200) vs HBM-only B200s, Llama-3.1-405B BF16, same GPUs, largest batch")

    figure = _figure(out, contexts, res, sd)
    s1, s10 = res[1_000_000]["speedup"], res[10_000_000]["speedup"]
    pw = max(r["perf_per_w_gain"] for r in res.values())
    grows = s10 > 1.2 * s1  # clearly larger, not a rounding-level drift
    sd_ok = abs(sd["gap"]) <= 0.05  # within a few percent, as SanDisk's 2.2%
    h3_ok = grows and 0.5 <= s1 / PAPER_H3[1_000_000] <= 2.0 and 0.5 <= s10 / PAPER_H3[10_000_000] <= 2.0
    status = "reproduced" if sd_ok and h3_ok else "partial"
    ours = (f"SanDisk: the HBF chip's TPOT is {sd['gap']:.2%} above the same chip with HBM-like reads and unlimited "
            f"capacity ({sd['hbf_tpot_ms']:.1f} vs {sd['ideal_tpot_ms']:.1f} ms; the 40 MB buffer hides the flash "
            f"latency; with 4 MB the gap is {sd['gap_with_4mb_buffer']:.1%}). H3 vs HBM-only B200s with the same GPU count: {s1:.2f}x Decode tokens/s at 1M shared tokens "
            f"({res[1_000_000]['gpus']} GPUs), {s10:.2f}x at 10M ({res[10_000_000]['gpus']} GPUs), perf/W up to "
            f"{pw:.2f}x, batch {res[10_000_000]['batch_gain']:.1f}x larger at 10M (H3 paper: 18.8x).")
    # attention FLOPs of one generated token over the shared context (QK^T and PV, 2 FLOP per MAC)
    attn_tflop = 4.0 * model.n_heads * float(model.head_dim) * 10_000_000 * model.n_layers / 1e12
    ours += (" Both systems hold thousands of requests, so attention over the shared context, not memory, sets "
             "the pace.")
    if not grows:
        ours += (" The gain does not grow with context here: with a shared context of millions of tokens every "
                 "generated token attends over all of it (4 x heads x head_dim x context x layers = "
                 f"{attn_tflop:.0f} TFLOP per token at 10M for Llama-3.1-405B), so the large batch H3's capacity allows makes Decode "
                 "compute-bound and adds no tokens/s; H3's 6.14x would need an attention cost that does not grow "
                 "with the shared context (e.g. sparse or retrieval attention), which this model does not assume.")
    elif not h3_ok:
        ours += (" The gain grows with context, as H3's, but its size differs: it hinges on the GPU count and the "
                 "batch each system can hold, which the H3 paper sets differently (not public in detail).")
    return _common.result(
        CLAIM, TITLE, status,
        "(outside) SanDisk: Llama-3.1-405B on HBF within 2.2% of an unlimited-capacity HBM. SK hynix H3 (B200, 8 HBM3E "
        "+ 8 HBF, read-only shared KV in HBF, 40 MB SRAM buffer): 1.25x tokens/s at 1M-token context, 6.14x at 10M, "
        "2.69x perf/W (Ma & Patterson 2026, direction 1).",
        ours, figure,
        sandisk=sd, attention_tflop_per_token_10m=attn_tflop,
        h3={str(c): {"gpus": r["gpus"], "layout": r["layout"], "speedup": r["speedup"],
                     "perf_per_w_gain": r["perf_per_w_gain"], "batch_gain": r["batch_gain"],
                     "batch_hbm": r["hbm"]["batch"], "batch_h3": r["h3"]["batch"]} for c, r in res.items()},
        published={"sandisk_gap": PAPER_SANDISK_GAP, "h3_speedup": {str(k): v for k, v in PAPER_H3.items()},
               "h3_perf_per_w": PAPER_H3_PERF_PER_W, "h3_batch": PAPER_H3_BATCH})


def _figure(out, contexts, res, sd):
    plt = _common.pyplot()
    fig = plt.figure(figsize=(10, 4.4))
    ax = fig.add_subplot(1, 2, 1)
    cs = np.asarray(contexts, dtype=float)
    ax.plot(cs, [res[c]["speedup"] for c in contexts], "-o", label="diffhw: tokens/s, H3 / HBM-only")
    ax.plot(cs, [res[c]["perf_per_w_gain"] for c in contexts], "-s", label="diffhw: tokens/s per W, H3 / HBM-only")
    ax.plot(cs, [res[c]["batch_gain"] for c in contexts], "-^", label="diffhw: batch that fits, H3 / HBM-only")
    ax.plot(list(PAPER_H3), list(PAPER_H3.values()), "k*", ms=13, ls="none", label="paper (SK hynix): tokens/s")
    ax.plot([10_000_000], [PAPER_H3_BATCH], "kx", ms=10, mew=2, ls="none", label="SK hynix: 18.8x batch")
    ax.axhline(PAPER_H3_PERF_PER_W, color="k", ls=":", lw=1, label=f"paper: perf/W up to {PAPER_H3_PERF_PER_W}x")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("shared read-only context (tokens)")
    ax.set_ylabel("gain over HBM-only B200s, same GPU count (x)")
    first = res[contexts[0]]
    ax.set_title(f"SK hynix H3: 8 HBM3E + 8 HBF per B200 vs HBM-only,\n{first['gpus']} GPUs ({first['layout']}) "
                 "each, Llama-3.1-405B BF16, largest batch that fits", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    ax2 = fig.add_subplot(1, 2, 2)
    small = sd["ideal_tpot_ms"] * (1.0 + sd["gap_with_4mb_buffer"])
    ax2.bar(["HBF chip\n(40 MB buffer)", "HBF chip\n(4 MB buffer)", "HBM-like reads,\nunlimited capacity"],
            [sd["hbf_tpot_ms"], small, sd["ideal_tpot_ms"]], color=["tab:orange", "tab:red", "tab:blue"])
    ax2.set_ylabel("TPOT (ms)")
    ax2.set_title(f"SanDisk: Llama-3.1-405B BF16 on one b200-hbf\ngap {sd['gap']:.2%} (paper: 2.2%)", fontsize=9)
    lo = min(sd["hbf_tpot_ms"], sd["ideal_tpot_ms"])
    ax2.axhline(lo * (1 + PAPER_SANDISK_GAP), color="k", ls="--", lw=1, label="paper: +2.2% over unlimited HBM")
    ax2.legend(fontsize=7, loc="lower right")
    return _common.save(fig, out, "claim_17_external_ballparks.png")


if __name__ == "__main__":
    sys.exit(_common.main(run))
