"""Claim 2: the memory wall. NVIDIA GPU FP64 FLOPS grew 80x and memory bandwidth 17x from
2012 to 2022 (machine balance ~4.7x, derived), so the attainable fraction of peak FLOP/s in
Decode falls across generations (Ma & Patterson 2026, Challenge 1).

The growth factors come from the datasheets in ``data/nvidia_fp64.csv``. The fraction of
peak is computed with `diffhw.evaluate` for the shipped presets, twice: with the calibrated
profile (a real serving stack: ~3 ms of fixed software time per step, 85% of peak
bandwidth) and with a hardware-only profile (every efficiency 1, every overhead 0), which
is the pure roofline.
"""

import csv
import itertools
import pathlib
import sys

import _common
import numpy as np

import diffhw

CLAIM = 2
TITLE = "The memory wall: FLOPS outgrow bandwidth, and Decode reaches a falling fraction of peak"

DATA = pathlib.Path(__file__).resolve().parent / "data" / "nvidia_fp64.csv"
PAPER_FLOPS_GROWTH, PAPER_BW_GROWTH = 80.0, 17.0  # Ma & Patterson 2026, Challenge 1 (2012-2022)

# Presets by announcement year (NVIDIA GTC / SC keynotes and press releases: V100 May 2017,
# A100 May 2020, H100 March 2022, H200 November 2023, B200 March 2024, B300 March 2025).
GENERATIONS = [("v100-sxm2", 2017), ("a100-sxm-80gb", 2020), ("h100-sxm", 2022), ("h200-sxm", 2023),
               ("b200", 2024), ("b300", 2025)]
MODEL = "llama-3.1-8b"  # fits one chip of every generation (16 GB of bf16 weights): no collectives
BATCH, INPUT, OUTPUT = 32, 2048, 256


def _f(x):
    return float(np.asarray(x))


def _rows():
    with open(DATA) as f:
        return [r for r in csv.DictReader(line for line in f if not line.startswith("#"))]


def growth():
    """FP64 FLOP/s and bandwidth growth from the 2012 parts to the 2022 part (H100 SXM)."""
    rows = _rows()
    h100 = next(r for r in rows if r["chip"] == "H100 SXM")
    out = {}
    for r in rows:
        if r["year"] != "2012":
            continue
        fl = float(h100["fp64_tensor_tflops"]) / float(r["fp64_tflops"])
        fl_vec = float(h100["fp64_tflops"]) / float(r["fp64_tflops"])
        bw = float(h100["memory_bw_gb_s"]) / float(r["memory_bw_gb_s"])
        out[r["chip"]] = dict(flops=fl, flops_vector=fl_vec, bandwidth=bw, balance=fl / bw)
    return rows, out


def hardware_only(profile):
    """`profile` with every efficiency 1 and every software overhead 0: the pure roofline."""
    return diffhw.Profile(
        bandwidth_efficiency=1.0, compute_efficiency=1.0, compute_half_rows=0.0, network_efficiency=1.0,
        collective_latency_s=0.0, step_overhead_s=0.0, layer_overhead_s=0.0,
        memory_utilization=profile.memory_utilization, max_batched_tokens=profile.max_batched_tokens,
        collective_step_latency_s=0.0, sequence_overhead_s=0.0, name="hardware-only")


def run(quick, out):
    rows, g = growth()
    model = diffhw.presets.model(MODEL)
    par = diffhw.parallelism()
    wl = diffhw.workload(BATCH, INPUT, OUTPUT)
    flops = diffhw.workload_costs(model, wl, par)["decode_step"]["per_chip"]["total"]
    ai = flops["flops"] / flops["bytes"]
    res = []
    for name, year in GENERATIONS:  # one compiled structure: few points are cheap
        hw = diffhw.presets.hardware(name)
        peak, bw = _f(hw.flop_per_s_bf16), _f(hw.memory_bandwidth_bytes_per_s)
        cal = diffhw.evaluate(hw, model, wl, par)
        raw = diffhw.evaluate(hw.replace(profile=hardware_only(hw.profile)), model, wl, par)
        frac_cal = flops["flops"] / _f(cal.decode.total_s) / peak
        frac_hw = flops["flops"] / _f(raw.decode.total_s) / peak
        res.append(dict(name=name, year=year, balance=peak / bw, frac_cal=frac_cal, frac_hw=frac_hw,
                        roofline=min(1.0, ai / (peak / bw)), overhead_share=_f(cal.decode.overhead_s)
                        / _f(cal.decode.total_s)))

    k20x, k20 = g["Tesla K20X"], g["Tesla K20"]
    _common.table(["2012 part -> H100 SXM (2022)", "FP64 FLOP/s", "bandwidth", "balance"],
                  [["paper (Ma & Patterson 2026)", "80x", "17x", "4.7x"]]
                  + [[f"{k} (FP64 tensor)", v["flops"], v["bandwidth"], v["balance"]] for k, v in g.items()]
                  + [[f"{k} (FP64 vector)", v["flops_vector"], v["bandwidth"], v["flops_vector"] / v["bandwidth"]]
                     for k, v in g.items()],
                  "FP64 FLOP/s and memory bandwidth growth, NVIDIA datasheets (data/nvidia_fp64.csv)")
    _common.table(["preset", "year", "bf16 FLOP/B", "roofline", "hardware-only", "calibrated", "overhead share"],
                  [[r["name"], r["year"], r["balance"], r["roofline"], r["frac_hw"], r["frac_cal"],
                    r["overhead_share"]] for r in res],
                  f"Fraction of peak bf16 FLOP/s in Decode: {MODEL}, 1 chip, batch {BATCH}, {INPUT}+{OUTPUT} "
                  f"tokens ({ai:.1f} FLOP/B)")

    plt = _common.pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    yrs = np.array([float(r["year"]) for r in rows])
    base = next(r for r in rows if r["chip"] == "Tesla K20X")
    fl = np.array([float(r["fp64_tensor_tflops"] or r["fp64_tflops"]) for r in rows]) / float(base["fp64_tflops"])
    bwg = np.array([float(r["memory_bw_gb_s"]) for r in rows]) / float(base["memory_bw_gb_s"])
    ax.semilogy(yrs, fl, "o-", label="FP64 FLOP/s (tensor core where present)")
    ax.semilogy(yrs, bwg, "s-", label="memory bandwidth")
    ax.semilogy([2022], [PAPER_FLOPS_GROWTH], "k*", ms=12, label="paper: 80x FLOPS, 17x bandwidth (2022)")
    ax.semilogy([2022], [PAPER_BW_GROWTH], "k*", ms=12)
    for r, y in zip(rows, fl):
        ax.annotate(r["chip"].replace("Tesla ", ""), (float(r["year"]), y), textcoords="offset points",
                    xytext=(3, 4), fontsize=7)
    ax.set_xlabel("launch year")
    ax.set_ylabel("growth over Tesla K20X (2012), x")
    ax.set_title("NVIDIA GPU FP64 FLOP/s vs memory bandwidth")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    x = [r["year"] for r in res]
    ax2.plot(x, [100 * r["roofline"] for r in res], "k:", lw=2.5, zorder=3, label="roofline min(1, AI / balance)")
    ax2.plot(x, [100 * r["frac_hw"] for r in res], "o-", label="diffhw, hardware-only profile")
    ax2.plot(x, [100 * r["frac_cal"] for r in res], "s-", label="diffhw, calibrated profile (3 ms/step overhead)")
    for r in res:
        ax2.annotate(r["name"], (r["year"], 100 * r["frac_hw"]), textcoords="offset points", xytext=(3, 4),
                     fontsize=7)
    ax2.set_xlabel("announcement year")
    ax2.set_ylabel("Decode FLOP/s as % of peak bf16")
    ax2.set_title(f"Decode, {MODEL}, batch {BATCH}, {INPUT}+{OUTPUT} tokens, 1 chip")
    ax2.legend(fontsize=8, loc="lower left")
    ax2.grid(True, alpha=0.3)
    figure = _common.save(fig, out, "claim_02_memory_wall.png")

    hw_frac = [r["frac_hw"] for r in res]
    cal_frac = [r["frac_cal"] for r in res]
    falls_overall = hw_frac[-1] < hw_frac[0]
    monotone_hw = all(b <= a * 1.001 for a, b in itertools.pairwise(hw_frac))
    monotone_cal = all(b <= a * 1.001 for a, b in itertools.pairwise(cal_frac))
    ours = (f"Datasheets give {k20x['flops']:.0f}x FP64 (tensor) FLOP/s and {k20x['bandwidth']:.1f}x bandwidth from "
            f"K20X to H100 SXM ({k20x['balance']:.1f}x balance; from K20: {k20['flops']:.0f}x, "
            f"{k20['bandwidth']:.1f}x, {k20['balance']:.1f}x). Decode on one chip reaches "
            f"{100 * hw_frac[0]:.1f}% of peak bf16 on V100 and {100 * hw_frac[-1]:.1f}% on B300 with the "
            f"hardware-only roofline, but not monotonically (H200's extra bandwidth lifts it to "
            f"{100 * res[3]['frac_hw']:.1f}%). The calibrated stack's fixed ~3 ms step overhead grows from "
            f"{100 * res[0]['overhead_share']:.0f}% of a V100 step to {100 * res[-1]['overhead_share']:.0f}% of a "
            f"B300 step, so the calibrated fraction falls further, {100 * cal_frac[0]:.1f}% to "
            f"{100 * cal_frac[-1]:.1f}% ({cal_frac[0] / cal_frac[-1]:.1f}x vs {hw_frac[0] / hw_frac[-1]:.1f}x).")
    paper = ("NVIDIA GPU FP64 FLOPS grew 80x and memory bandwidth 17x from 2012 to 2022 (balance ~4.7x); "
             "the attainable fraction of peak in Decode falls across generations (Ma & Patterson 2026).")
    status = "partial"  # growth factors below the paper's; the fraction falls overall but not every generation
    return _common.result(
        CLAIM, TITLE, status, paper, ours, figure,
        flops_growth_k20x=k20x["flops"], bandwidth_growth_k20x=k20x["bandwidth"], balance_growth_k20x=k20x["balance"],
        flops_growth_k20=k20["flops"], bandwidth_growth_k20=k20["bandwidth"], balance_growth_k20=k20["balance"],
        presets=[r["name"] for r in res], years=[r["year"] for r in res], balance=[r["balance"] for r in res],
        decode_ai=ai, fraction_hardware_only=hw_frac, fraction_calibrated=cal_frac,
        fraction_roofline=[r["roofline"] for r in res], overhead_share=[r["overhead_share"] for r in res],
        falls_overall=falls_overall, monotone_hardware_only=monotone_hw, monotone_calibrated=monotone_cal,
    )


if __name__ == "__main__":
    sys.exit(_common.main(run))
