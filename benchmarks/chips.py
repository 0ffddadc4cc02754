"""Real chips reproduced from technology parameters: modelled logic area, peak power and
manufacturing cost next to the published die area, TDP and cost estimates.

Run: ``python benchmarks/chips.py``. Anchors: the N4 compute density comes from H100 and
the N7 one from A100 (``diffhw/data/technology/logic.toml``), so those two areas are
reproduced by construction; every power figure, B200's area and the costs are not.
"""

import diffhw
from diffhw import presets

# published die area (mm2), TDP (W), manufacturing-cost estimate ($) with sources
PUBLISHED = {
    "h100-sxm": (814, 700, 3320),       # hardware_specs.csv; cost: Raymond James via Epoch (tech_constants §5)
    "a100-sxm-80gb": (826, 400, None),  # hardware_specs.csv
    "b200": (1600, 1000, 6400),         # ~2 x 800 mm2 and ~$6.4k: siliconanalysts (tech_constants §4, §5)
    "h200-sxm": (814, 700, None),       # hardware_specs.csv (same GH100 die)
    "mi300x": (None, 750, None),        # hardware_specs.csv
    "l40s": (609, 350, None),           # AD102 die (NVIDIA Ada whitepaper); TDP hardware_specs.csv
    "tpu-v4": (None, 192, None),        # measured max power (hardware_specs.csv; no TDP published)
}


def main():
    model = presets.model("llama-3.1-8b")
    wl = diffhw.workload(1, 512, 64)
    print(f"{'chip':15s} {'node':5s} {'memory':7s} {'area mm2':>9s} {'published':>9s} {'err':>6s}"
          f" {'power W':>8s} {'TDP':>6s} {'err':>6s} {'cost $':>8s} {'published':>9s}")
    for name, (area, tdp, cost) in PUBLISHED.items():
        tech = presets.technology_for(name)
        e = diffhw.evaluate(presets.hardware(name), model, wl, diffhw.parallelism(), technology=tech).economics
        a, p, c = float(e.chip_area_mm2), float(e.peak_power_w), float(e.chip_cost_usd)

        def err(x, ref):
            return f"{x / ref - 1:+.0%}" if ref else "-"

        print(f"{name:15s} {tech.node:5s} {tech.memory:7s} {a:9.0f} {area or '-':>9} {err(a, area):>6s}"
              f" {p:8.0f} {tdp or '-':>6} {err(p, tdp):>6s} {c:8.0f} {cost or '-':>9}")


if __name__ == "__main__":
    main()
