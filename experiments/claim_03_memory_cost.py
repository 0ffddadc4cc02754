"""Claim 3: HBM and DDR prices diverge. HBM $/GB and $/(GB/s) rose 1.35x over 2023-2025, DDR4
fell to 0.54x ($/GB) and 0.45x ($/(GB/s)) over 2022-2025, so the HBM/DDR $/GB ratio about
doubled in two years (Ma & Patterson 2026, Challenge 1); and what that does to $/token.

diffhw's memory prices (`Technology.memory_usd_per_byte`, from
``diffhw/data/technology/memory.toml``: HBM3E 12 $/GB, LPDDR5X 3 $/GB, 2024-25 figures) are
taken as the 2025 point and moved back in time with the paper's rates. Two Decode-heavy
designs serve Llama-3.1-70B in FP8 on 8 chips: the B200 preset (8 HBM3E stacks) and the
same B200-class die with 12 LPDDR5X devices (diffhw's LPDDR5X row: 192 GB, 816 GB/s, about
the B200's capacity at a tenth of its bandwidth), each priced by diffhw's cost model for every
year.
"""

import sys

import _common
import numpy as np

import diffhw

CLAIM = 3
TITLE = "HBM vs DDR cost divergence and its effect on $/Mtoken"

# Ma & Patterson 2026, Challenge 1: price changes over the stated windows
HBM_GB, HBM_GBS, HBM_YEARS = 1.35, 1.35, (2023, 2025)
DDR_GB, DDR_GBS, DDR_YEARS = 0.54, 0.45, (2022, 2025)
ANCHOR_YEAR = 2025  # diffhw's memory.toml prices are 2024-25 figures (tech_constants.md "Recommended defaults")

LPDDR_DEVICES = 12  # x 16 GB = 192 GB, about the B200's 180-192 GB (a 768-bit LPDDR5X interface)

MODEL, TP = "llama-3.1-70b", 8
BATCH, INPUT, OUTPUT = 32, 1024, 4096  # Decode-heavy: long outputs (reasoning-like)


def _f(x):
    return float(np.asarray(x))


def price_factor(year, rate, years):
    """Price at `year` relative to `ANCHOR_YEAR` for a change of `rate` over `years`
    (constant yearly rate; held flat outside the paper's window)."""
    y0, y1 = years
    per_year = rate ** (1.0 / (y1 - y0))
    y = min(max(year, y0), y1)
    return per_year ** (y - min(max(ANCHOR_YEAR, y0), y1))


def run(quick, out):
    years = [2022, 2023, 2024, 2025] if quick else [2022, 2022.5, 2023, 2023.5, 2024, 2024.5, 2025]
    model = diffhw.presets.model(MODEL)
    par = diffhw.parallelism(tp=TP)
    wl = diffhw.workload(BATCH, INPUT, OUTPUT, "fp8")
    hbm_hw = diffhw.presets.hardware("b200")
    hbm_tech = diffhw.presets.technology_for("b200")
    lp_dev = diffhw.presets.memory_device("LPDDR5X")
    lp_hw = hbm_hw.replace(memory_capacity_bytes=LPDDR_DEVICES * lp_dev["capacity_gb"] * 1e9,
                           memory_bandwidth_bytes_per_s=LPDDR_DEVICES * lp_dev["bandwidth_gb_s"] * 1e9)
    lp_tech = diffhw.presets.technology(hbm_tech.node, "LPDDR5X", architecture="blackwell")
    designs = {"HBM3E (b200)": (hbm_hw, hbm_tech, (HBM_GB, HBM_YEARS)),
               "LPDDR5X (b200 die)": (lp_hw, lp_tech, (DDR_GB, DDR_YEARS))}
    res = {}
    for label, (hw, tech, (rate, window)) in designs.items():
        base = _f(tech.memory_usd_per_byte)
        pts = []
        for y in years:
            f = price_factor(y, rate, window)
            t = tech.replace(memory_usd_per_byte=base * f)
            m = diffhw.evaluate(hw, model, wl, par, technology=t)
            e = m.economics
            pts.append(dict(year=y, usd_per_gb=base * f * 1e9, usd_per_mtok=_f(e.usd_per_million_tokens),
                            memory_share=_f(e.memory_cost_usd) / _f(e.chip_cost_usd), tpot_ms=_f(m.tpot_s) * 1e3,
                            fits=bool(np.asarray(m.fits))))
        res[label] = pts

    hbm, lp = res["HBM3E (b200)"], res["LPDDR5X (b200 die)"]
    i23, i25 = years.index(2023), years.index(2025)
    ratio_growth = (hbm[i25]["usd_per_gb"] / lp[i25]["usd_per_gb"]) / (hbm[i23]["usd_per_gb"] / lp[i23]["usd_per_gb"])
    paper_ratio = HBM_GB / DDR_GB ** (2.0 / 3.0)  # derived from the paper's rates, 2023 -> 2025
    # $/(GB/s) of one device in 2025 (diffhw rows): HBM3E stack vs DDR5 module
    dev_h, dev_d = diffhw.presets.memory_device("HBM3E"), diffhw.presets.memory_device("DDR5")
    tech_d = diffhw.presets.technology("N4", "DDR5")
    usd_gbs_h = _f(hbm_tech.memory_usd_per_byte) * 1e9 * dev_h["capacity_gb"] / dev_h["bandwidth_gb_s"]
    usd_gbs_d = _f(tech_d.memory_usd_per_byte) * 1e9 * dev_d["capacity_gb"] / dev_d["bandwidth_gb_s"]

    rows = [[str(y), h["usd_per_gb"], l["usd_per_gb"], h["usd_per_gb"] / l["usd_per_gb"], h["usd_per_mtok"],
             l["usd_per_mtok"], h["memory_share"], l["memory_share"]] for y, h, l in zip(years, hbm, lp)]
    _common.table(["year", "HBM $/GB", "LPDDR $/GB", "ratio", "HBM $/Mtok", "LPDDR $/Mtok", "HBM mem share",
                   "LPDDR mem share"], rows,
                  f"Paper's price trends applied to diffhw's 2025 prices; {MODEL} fp8, 8 chips, batch {BATCH}, "
                  f"{INPUT}+{OUTPUT} tokens (TPOT HBM {hbm[-1]['tpot_ms']:.1f} ms, LPDDR {lp[-1]['tpot_ms']:.1f} ms)")
    _common.table(["quantity", "paper", "diffhw"],
                  [["HBM/DDR $/GB ratio growth 2023->2025", f"~2x (derived {paper_ratio:.2f}x)", ratio_growth],
                   ["HBM $/Mtok change 2023->2025", "rises", hbm[i25]["usd_per_mtok"] / hbm[i23]["usd_per_mtok"]],
                   ["LPDDR $/Mtok change 2022->2025", "falls", lp[-1]["usd_per_mtok"] / lp[0]["usd_per_mtok"]],
                   ["$/(GB/s), HBM3E stack vs DDR5 module, 2025", "", f"{usd_gbs_h:.2f} vs {usd_gbs_d:.2f}"]])

    plt = _common.pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    yr = np.array(years, dtype=float)
    ax.semilogy(yr, [p["usd_per_gb"] for p in hbm], "o-", label="HBM3E $/GB (x1.35 over 2023-25; flat before)")
    ax.semilogy(yr, [p["usd_per_gb"] for p in lp], "s-", label="LPDDR5X $/GB (DDR4's x0.54 over 2022-25)")
    ax.semilogy(yr, [h["usd_per_gb"] / l["usd_per_gb"] for h, l in zip(hbm, lp)], "k--", label="HBM / DDR ratio")
    ax.annotate(f"paper: ratio ~2x in 2 years\n(diffhw: {ratio_growth:.2f}x)", (2023.1, hbm[i23]["usd_per_gb"] /
                lp[i23]["usd_per_gb"] * 1.1), fontsize=8)
    ax.set_xticks(range(2022, 2026))
    ax.set_xlabel("year")
    ax.set_ylabel("$ per GB (ratio: dimensionless)")
    ax.set_title("Memory price trends (paper's rates, diffhw's 2025 prices)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax2.plot(yr, [p["usd_per_mtok"] for p in hbm], "o-", label=f"b200, 8 HBM3E stacks (TPOT {hbm[-1]['tpot_ms']:.0f} ms)")
    ax2.plot(yr, [p["usd_per_mtok"] for p in lp], "s-",
             label=f"b200 die + {LPDDR_DEVICES} LPDDR5X (TPOT {lp[-1]['tpot_ms']:.0f} ms)")
    ax2.set_yscale("log")
    ax2.set_xticks(range(2022, 2026))
    ax2.set_xlabel("year")
    ax2.set_ylabel("$ per million output tokens (TCO)")
    ax2.set_title(f"{MODEL} fp8, 8 chips, batch {BATCH}, {INPUT}+{OUTPUT} tokens")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    figure = _common.save(fig, out, "claim_03_memory_cost.png")

    hbm_change = hbm[i25]["usd_per_mtok"] / hbm[i23]["usd_per_mtok"]
    lp_change = lp[-1]["usd_per_mtok"] / lp[0]["usd_per_mtok"]
    gap23 = lp[i23]["usd_per_mtok"] / hbm[i23]["usd_per_mtok"]
    gap25 = lp[i25]["usd_per_mtok"] / hbm[i25]["usd_per_mtok"]
    bw_ratio = _f(hbm_hw.memory_bandwidth_bytes_per_s) / _f(lp_hw.memory_bandwidth_bytes_per_s)
    paper = ("HBM $/GB and $/(GB/s) x1.35 (2023-2025); DDR4 x0.54 $/GB and x0.45 $/(GB/s) (2022-2025); the HBM/DDR "
             "$/GB ratio about doubles in two years (Ma & Patterson 2026).")
    ours = (f"The paper's rates (applied to diffhw's 2025 prices, HBM3E 12 and LPDDR5X 3 $/GB; not independent "
            f"price data) give a {ratio_growth:.2f}x rise of the HBM/DDR $/GB ratio over 2023-2025. On "
            f"diffhw's cost model the Decode-heavy HBM design's $/Mtoken rises {100 * (hbm_change - 1):.0f}% "
            f"(memory is {100 * hbm[i25]['memory_share']:.0f}% of its chip cost in 2025) and the LPDDR5X design's "
            f"falls {100 * (1 - lp_change):.0f}%, but the LPDDR design stays {gap25:.1f}x dearer per token "
            f"(was {gap23:.1f}x in 2023): its {bw_ratio:.0f}x lower bandwidth ({lp[i25]['tpot_ms'] / hbm[i25]['tpot_ms']:.1f}x "
            "the TPOT) costs more than its cheaper memory saves. diffhw "
            "models $/GB only; $/(GB/s) follows from it.")
    return _common.result(
        CLAIM, TITLE, "reproduced" if 1.8 < ratio_growth < 2.2 and hbm_change > 1 > lp_change else "partial",
        paper, ours, figure,
        years=[float(y) for y in years], hbm_usd_per_gb=[p["usd_per_gb"] for p in hbm],
        lpddr_usd_per_gb=[p["usd_per_gb"] for p in lp], ratio_growth_2023_2025=ratio_growth,
        paper_ratio_growth=paper_ratio, hbm_usd_per_mtok=[p["usd_per_mtok"] for p in hbm],
        lpddr_usd_per_mtok=[p["usd_per_mtok"] for p in lp], hbm_mtok_change_2023_2025=hbm_change,
        lpddr_mtok_change_2022_2025=lp_change, lpddr_over_hbm_2023=gap23, lpddr_over_hbm_2025=gap25,
        hbm_memory_share_2025=hbm[i25]["memory_share"], usd_per_gb_s_hbm3e=usd_gbs_h, usd_per_gb_s_ddr5=usd_gbs_d,
    )


if __name__ == "__main__":
    sys.exit(_common.main(run))
