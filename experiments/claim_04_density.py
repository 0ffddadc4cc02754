"""Claim 4: DRAM density growth slowed: 4x used to take 3-6 years and, from 8 Gb dies in
2014, takes more than 10; flash capacity still doubles about every 3 years (Ma & Patterson
2026, Challenge 1). Capacity per $ of DRAM vs flash over time.

Die capacities by year are in ``data/die_density.csv`` (vendors' press releases). Capacity
per $ is a proxy: the cost of a die held constant over time (so GB per $ scales with the
die's capacity), anchored at diffhw's own 2025 prices (`Technology.memory_usd_per_byte` of
the DDR5 and SSD rows). Real prices also move with yield, wafer cost and the market cycle.
"""

import csv
import pathlib
import sys

import _common
import numpy as np

import diffhw

CLAIM = 4
TITLE = "DRAM density slowdown vs flash: die capacity and GB per $ over time"

DATA = pathlib.Path(__file__).resolve().parent / "data" / "die_density.csv"


def _rows(kind):
    with open(DATA) as f:
        rows = [r for r in csv.DictReader(line for line in f if not line.startswith("#")) if r["kind"] == kind]
    return np.array([float(r["year"]) for r in rows]), np.array([float(r["gbit_per_die"]) for r in rows])


def years_to(years, gbit, factor):
    """For each die, the years until a die `factor`x denser shipped (None if none yet)."""
    out = []
    for y, g in zip(years, gbit):
        later = [y2 for y2, g2 in zip(years, gbit) if g2 >= factor * g - 1e-9]
        out.append((int(y), int(g), int(later[0] - y)) if later else (int(y), int(g), None))
    return out


def doubling_years(years, gbit):
    """Years per doubling of a log2-linear least-squares fit."""
    slope = np.polyfit(years, np.log2(gbit), 1)[0]
    return 1.0 / slope


def run(quick, out):
    dy, dg = _rows("DRAM")
    ny, ng = _rows("NAND")
    four = years_to(dy, dg, 4.0)
    before = [t for y, g, t in four if t is not None and y + t <= 2014]  # 4x steps completed by 2014
    from2014 = next(t for y, g, t in four if y == 2014)
    nand_all = doubling_years(ny, ng)
    recent = ny >= 2015
    nand_recent = doubling_years(ny[recent], ng[recent])
    dram_before = doubling_years(dy[dy <= 2014], dg[dy <= 2014])
    dram_after = doubling_years(dy[dy >= 2014], dg[dy >= 2014])

    usd_dram = float(diffhw.presets.technology("N4", "DDR5").memory_usd_per_byte) * 1e9
    usd_flash = float(diffhw.presets.technology("N4", "SSD").memory_usd_per_byte) * 1e9
    # GB per $ proxy: constant die cost, scaled to diffhw's 2025 price of the latest die
    gbpd_dram = dg / dg[-1] / usd_dram
    gbpd_flash = ng / ng[-1] / usd_flash

    _common.table(["DRAM die", "year", "years to 4x"],
                  [[f"{g} Gb", y, "not yet" if t is None else t] for y, g, t in four],
                  "DRAM: time to a 4x denser die (paper: 3-6 years before, >10 years from 8 Gb in 2014)")
    _common.table(["quantity", "paper", "data/die_density.csv"],
                  [["DRAM 4x, steps done by 2014 (years)", "3-6", f"{min(before)}-{max(before)}"],
                   ["DRAM 4x from 8 Gb (2014), years", "> 10", from2014],
                   ["DRAM years per doubling, to 2014 / from 2014", "", f"{dram_before:.1f} / {dram_after:.1f}"],
                   ["NAND years per doubling, 2007-2024 / since 2015", "~3", f"{nand_all:.1f} / {nand_recent:.1f}"],
                   ["2025 $/GB in diffhw (DDR5 / SSD)", "", f"{usd_dram:.2f} / {usd_flash:.2f}"]])

    plt = _common.pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    ax.semilogy(dy, dg, "o-", label="DRAM die (Gb)")
    ax.semilogy(ny, ng, "s-", label="NAND flash die (Gb)")
    xs = np.linspace(2014, 2026, 20)
    ax.semilogy(xs, 8 * 4 ** ((xs - 2014) / 10), "k--", lw=1, label="paper: DRAM 4x in >10 years from 8 Gb (2014)")
    xs2 = np.linspace(2007, 2026, 20)
    ax.semilogy(xs2, ng[0] * 2 ** ((xs2 - ny[0]) / 3), "k:", lw=1, label="paper: flash 2x every ~3 years")
    ax.axvline(2014, color="grey", lw=0.8)
    ax.set_xlabel("year of volume production")
    ax.set_ylabel("capacity per die (Gbit)")
    ax.set_title("Die capacity: DRAM slows after 2014, flash keeps doubling")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax2.semilogy(dy, gbpd_dram, "o-", label=f"DRAM (DDR5 {usd_dram:.2f} $/GB in 2025)")
    ax2.semilogy(ny, gbpd_flash, "s-", label=f"flash (SSD {usd_flash:.2f} $/GB in 2025)")
    ax2.set_xlabel("year")
    ax2.set_ylabel("GB per $ (proxy: constant cost per die)")
    ax2.set_title("Capacity per $, anchored at diffhw's 2025 prices")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    figure = _common.save(fig, out, "claim_04_density.png")

    ok = min(before) >= 3 and max(before) <= 6 and from2014 >= 10 and 2.0 <= nand_recent <= 4.0
    paper = ("DRAM: 4x density took 3-6 years, but from 8 Gb dies (2014) it takes more than 10; flash capacity "
             "doubles about every 3 years (Ma & Patterson 2026).")
    ours = (f"Vendor announcements give DRAM 4x steps of {min(before)}-{max(before)} years before 2014 and "
            f"{from2014} years from 8 Gb (2014) to 32 Gb (2024), i.e. {dram_before:.1f} vs {dram_after:.1f} years "
            f"per doubling; NAND dies double every {nand_recent:.1f} years since 2015 ({nand_all:.1f} over "
            f"2007-2024). At constant cost per die, flash's GB per $ lead over DRAM grows "
            f"{(ng[-1] / ng[0]) / (dg[-1] / dg[0]):.0f}x over the two series; diffhw's 2025 prices put it at "
            f"{usd_dram / usd_flash:.0f}x (DDR5 {usd_dram:.2f} vs SSD {usd_flash:.2f} $/GB).")
    return _common.result(
        CLAIM, TITLE, "reproduced" if ok else "partial", paper, ours, figure,
        dram_years_to_4x_before_2014=before, dram_years_to_4x_from_2014=from2014,
        dram_years_per_doubling_to_2014=dram_before, dram_years_per_doubling_from_2014=dram_after,
        nand_years_per_doubling=nand_all, nand_years_per_doubling_since_2015=nand_recent,
        usd_per_gb_dram_2025=usd_dram, usd_per_gb_flash_2025=usd_flash,
        dram_years=dy.tolist(), dram_gbit=dg.tolist(), nand_years=ny.tolist(), nand_gbit=ng.tolist(),
    )


if __name__ == "__main__":
    sys.exit(_common.main(run))
