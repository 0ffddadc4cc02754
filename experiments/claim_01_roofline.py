"""Claim 1: Decode is memory-bound and Prefill compute-bound; batching raises the arithmetic
intensity of weight reads but not of KV-cache reads; disaggregating Prefill from Decode
changes neither (Ma & Patterson 2026, "The argument" 2 and Claims 1).

Llama-3.1-70B in bf16 on 8 H100-SXM (tensor parallel 8): FLOPs and bytes per chip from
`diffhw.workload_costs`, step times from `diffhw.evaluate`, and a served load colocated vs
disaggregated from `diffhw.serve`.
"""

import sys

import _common
import numpy as np

import diffhw

CLAIM = 1
TITLE = "Decode is memory-bound, Prefill compute-bound; batching amortises weights, not the KV cache"

HW, MODEL, TP = "h100-sxm", "llama-3.1-70b", 8
INPUT, OUTPUT = 4096, 256


def _f(x):
    return float(np.asarray(x))


def _decode_point(hw, model, par, batch):
    """Per-chip FLOPs and bytes of one Decode step, split into weight and KV-cache reads,
    and diffhw's step time for it."""
    wl = diffhw.workload(batch, INPUT, OUTPUT)
    costs = diffhw.workload_costs(model, wl, par)["decode_step"]["per_chip"]
    tot = costs["total"]
    # attention_core reads the KV cache; every other group reads weights
    kv_flops = sum(o["flops"] * o["layers"] for o in costs["ops"] if o["kv_read_bytes"] > 0)
    w_flops = sum(o["flops"] * o["layers"] for o in costs["ops"] if o["weight_bytes"] > 0)
    m = diffhw.evaluate(hw, model, wl, par)
    d = m.decode
    return dict(
        batch=batch, flops=tot["flops"], bytes=tot["bytes"], weight_bytes=tot["weight_bytes"],
        kv_bytes=tot["kv_read_bytes"], ai=tot["flops"] / tot["bytes"],
        ai_weights=w_flops / tot["weight_bytes"], ai_kv=kv_flops / tot["kv_read_bytes"],
        compute_s=_f(d.compute_s), memory_s=_f(d.memory_s), step_s=_f(d.total_s),
        fits=bool(np.asarray(m.fits)),
        # whole-model bytes read per sequence per step (all 8 chips)
        weight_bytes_per_seq=tot["weight_bytes"] * TP / batch, kv_bytes_per_seq=tot["kv_read_bytes"] * TP / batch,
    )


def _prefill_point(hw, model, par, prompt):
    wl = diffhw.workload(1, prompt, OUTPUT)
    tot = diffhw.workload_costs(model, wl, par)["prefill_pass"]["per_chip"]["total"]
    m = diffhw.evaluate(hw, model, wl, par)
    p = m.prefill
    return dict(prompt=prompt, flops=tot["flops"], bytes=tot["bytes"], ai=tot["flops"] / tot["bytes"],
                compute_s=_f(p.compute_s), memory_s=_f(p.memory_s), step_s=_f(p.total_s))


def _serving(hw, model, par, rate):
    """Decode step of a served load (`rate` requests/s), colocated and disaggregated (a
    second 8-chip H100 pool runs Prefill)."""
    tr = diffhw.traffic(rate, INPUT, OUTPUT)
    out = {}
    for label, dis in (("colocated", None), ("disaggregated", diffhw.disaggregated(hw, par))):
        s = diffhw.serve(hw, model, tr, par, disaggregation=dis)
        d = s.decode
        out[label] = dict(compute_s=_f(d.compute_s), memory_s=_f(d.memory_s), step_s=_f(s.step_time_s),
                          sequences=_f(s.decode_sequences), prefill_tokens=_f(s.prefill_tokens_per_step),
                          tpot_ms=_f(s.tpot_mean_s) * 1e3, ttft_ms=_f(s.ttft_mean_s) * 1e3)
    return out


def run(quick, out):
    hw = diffhw.presets.hardware(HW)
    model = diffhw.presets.model(MODEL)
    par = diffhw.parallelism(tp=TP)
    peak = _f(hw.flop_per_s_bf16)
    bw = _f(hw.memory_bandwidth_bytes_per_s)
    ridge = peak / bw
    batches = [1, 8, 64, 256] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    prompts = [512, 4096] if quick else [128, 512, 2048, 4096, 16384]
    dec = [_decode_point(hw, model, par, b) for b in batches]
    pre = [_prefill_point(hw, model, par, p) for p in prompts]
    srv = _serving(hw, model, par, 2.0)

    rows = [[f"Decode b={p['batch']}", p["ai"], p["ai_weights"], p["ai_kv"],
             "memory" if p["memory_s"] > p["compute_s"] else "compute", p["step_s"] * 1e3] for p in dec]
    rows += [[f"Prefill {p['prompt']} tok", p["ai"], "", "",
              "memory" if p["memory_s"] > p["compute_s"] else "compute", p["step_s"] * 1e3] for p in pre]
    _common.table(["phase", "FLOP/B", "FLOP/B weights", "FLOP/B KV", "bound (diffhw)", "step ms"], rows,
                  f"{MODEL} bf16 on 8 x {HW} (ridge {ridge:.0f} FLOP/B); paper: Decode memory-bound, Prefill "
                  "compute-bound")
    _common.table(["serving 2 req/s", "Decode seqs", "Prefill tok/step", "memory share of step", "TPOT ms"],
                  [[k, v["sequences"], v["prefill_tokens"], v["memory_s"] / max(v["memory_s"] + v["compute_s"], 1e-30),
                    v["tpot_ms"]] for k, v in srv.items()])

    # --- figure: roofline and bytes per sequence
    plt = _common.pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    x = np.logspace(-1, 4.5, 200)
    ax.loglog(x, np.minimum(peak, x * bw) / 1e12, "k-", label=f"{HW} roofline (bf16 peak, HBM)")
    ax.axvline(ridge, color="grey", ls=":", lw=1)
    ax.text(ridge * 1.1, peak / 1e12 * 0.05, f"ridge {ridge:.0f} FLOP/B", color="grey", fontsize=8)
    ai_d = np.array([p["ai"] for p in dec])
    ach_d = np.array([p["flops"] / p["step_s"] for p in dec]) / 1e12
    ax.loglog(ai_d, np.minimum(peak, ai_d * bw) / 1e12, "o", mfc="none", color="C0", label="Decode: roofline bound")
    ax.loglog(ai_d, ach_d, "o", color="C0", label="Decode: diffhw (calibrated)")
    for p, y in zip(dec, ach_d):
        ax.annotate(f"b={p['batch']}", (p["ai"], y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ai_p = np.array([p["ai"] for p in pre])
    ach_p = np.array([p["flops"] / p["step_s"] for p in pre]) / 1e12
    ax.loglog(ai_p, np.minimum(peak, ai_p * bw) / 1e12, "s", mfc="none", color="C3", label="Prefill: roofline bound")
    ax.loglog(ai_p, ach_p, "s", color="C3", label="Prefill: diffhw (calibrated)")
    ai_kv = dec[0]["ai_kv"]
    ax.axvline(ai_kv, color="C2", ls="--", lw=1, label=f"KV-cache reads: {ai_kv:.0f} FLOP/B at every batch")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of HBM traffic)")
    ax.set_ylabel("FLOP/s per chip (TFLOP/s)")
    ax.set_title(f"Roofline: {MODEL} bf16, 8 x {HW}, {INPUT}+{OUTPUT} tokens")
    ax.legend(fontsize=7, loc="lower right")
    b = np.array(batches, dtype=float)
    ax2.loglog(b, [p["weight_bytes_per_seq"] / 1e9 for p in dec], "o-", label="weights read per sequence")
    ax2.loglog(b, [p["kv_bytes_per_seq"] / 1e9 for p in dec], "s-", label="KV cache read per sequence")
    ax2.set_xlabel("Decode batch (sequences)")
    ax2.set_ylabel("GB read per sequence per Decode step (whole model)")
    ax2.set_title("Batching amortises weights (1/batch), not the KV cache")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    figure = _common.save(fig, out, "claim_01_roofline.png")

    decode_memory_bound = all(p["memory_s"] > p["compute_s"] for p in dec)
    # a prompt shorter than the ridge (in tokens) is memory-bound even in Prefill: judged from 512 tokens
    prefill_compute_bound = all(p["compute_s"] > p["memory_s"] for p in pre if p["prompt"] >= 512)
    short = [p for p in pre if p["prompt"] < 512]
    kv_ai = [p["ai_kv"] for p in dec]
    w_ai = [p["ai_weights"] for p in dec]
    kv_flat = max(kv_ai) / min(kv_ai)
    w_growth = w_ai[-1] / w_ai[0]
    dis = srv["disaggregated"]
    dis_memory_bound = dis["memory_s"] > dis["compute_s"]
    ok = decode_memory_bound and prefill_compute_bound and kv_flat < 1.05 and w_growth > 0.5 * batches[-1] \
        and dis_memory_bound
    status = "reproduced" if ok else "partial"
    ours = (f"On 8 x {HW} (ridge {ridge:.0f} FLOP/B), Llama-3.1-70B Decode sits at {dec[0]['ai']:.1f}-"
            f"{dec[-1]['ai']:.0f} FLOP/B for batch {batches[0]}-{batches[-1]} and is memory-bound at every batch; "
            f"Prefill of 512+ token prompts sits at {min(p['ai'] for p in pre if p['prompt'] >= 512):.0f}-"
            f"{pre[-1]['ai']:.0f} FLOP/B and is compute-bound"
            + (f" (a {short[0]['prompt']}-token prompt, {short[0]['ai']:.0f} FLOP/B, is below the ridge and "
               "memory-bound)" if short else "")
            + ". Weight reads go "
            f"from {w_ai[0]:.1f} to {w_ai[-1]:.0f} FLOP/B ({w_growth:.0f}x) with batch, KV reads stay at "
            f"{kv_ai[0]:.1f} FLOP/B; disaggregated (second H100 pool for Prefill), the Decode step is "
            f"{100 * dis['memory_s'] / (dis['memory_s'] + dis['compute_s']):.0f}% memory time at "
            f"{dis['sequences']:.1f} sequences, colocated it carries {srv['colocated']['prefill_tokens']:.0f} "
            "Prefill tokens per step but its Decode work is the same.")
    paper = ("Decode is memory-bound (every step streams the weights and every request's KV cache), Prefill "
             "compute-bound; batching amortises weights but not the KV cache; disaggregation changes neither "
             "(Ma & Patterson 2026, Sec. 2).")
    return _common.result(
        CLAIM, TITLE, status, paper, ours, figure,
        ridge_flop_per_byte=ridge, batches=batches,
        decode_ai=[p["ai"] for p in dec], decode_ai_weights=w_ai, decode_ai_kv=kv_ai,
        decode_memory_bound=decode_memory_bound, prefill_prompts=prompts, prefill_ai=[p["ai"] for p in pre],
        prefill_compute_bound=prefill_compute_bound, kv_ai_spread=kv_flat, weight_ai_growth=w_growth,
        weight_gb_per_seq=[p["weight_bytes_per_seq"] / 1e9 for p in dec],
        kv_gb_per_seq=[p["kv_bytes_per_seq"] / 1e9 for p in dec],
        disaggregated_decode_memory_share=dis["memory_s"] / (dis["memory_s"] + dis["compute_s"]),
        colocated_decode_memory_share=srv["colocated"]["memory_s"]
        / (srv["colocated"]["memory_s"] + srv["colocated"]["compute_s"]),
        disaggregated_decode_memory_bound=dis_memory_bound,
    )


if __name__ == "__main__":
    sys.exit(_common.main(run))
