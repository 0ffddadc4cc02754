"""Real chips reproduced from technology parameters: modelled logic area, peak power and
manufacturing cost next to the published die area, TDP and cost estimates.

Run: ``python benchmarks/chips.py``. Each published number is either an ANCHOR (it was
used to set a constant of the technology tables, so the model reproduces it by
construction) or a CHECK (the model never saw it):

- N4 compute density and N4 energy per FLOP come from H100 (``logic.toml``);
- N7 compute density comes from A100; N7 energy is N4's scaled by TSMC's N7 -> N5 claim;
- N16 (12 nm) density and energy are N7's scaled by TSMC's 16FF+ -> N7 claims;
- the ``tpu`` area scale comes from TPU v4i (``architecture.toml``), not from TPU v4;
- the ``blackwell`` energy scale comes from B200's TDP (``architecture.toml``).
"""

import diffhw
from diffhw import presets
from diffhw._io._files import resolve
from diffhw._io._technology import architecture_of, preset_chain

A, C = "anchor", "check"
# preset: (published die area mm2, role, TDP W, role, manufacturing-cost estimate $), sourced
PUBLISHED = {
    "h100-sxm": (814, A, 700, A, 3320),      # hardware_specs.csv; cost: Raymond James via Epoch (tech_constants §5)
    "a100-sxm-80gb": (826, A, 400, C, None),  # hardware_specs.csv
    "v100-sxm2": (815, C, 300, C, None),      # NVIDIA Tesla V100 whitepaper (2017): 815 mm2; datasheet 300 W
    "tpu-v4": (600, C, None, None, None),     # Jouppi et al. ISCA 2023 (arXiv 2304.01433) Table 4: die < 600 mm2; no TDP published
    "b200": (1600, C, 1000, A, 6400),         # ~2 x 800 mm2 and ~$6.4k: siliconanalysts (tech_constants §4, §5)
    "gb200": (None, None, 1200, C, None),     # hardware_specs.csv (GB200 NVL72 per GPU, 1200 W)
    "b300": (None, None, 1100, C, None),      # hardware_specs.csv
    "h200-sxm": (814, A, 700, C, None),       # hardware_specs.csv (same GH100 die as H100)
    "mi300x": (None, None, 750, C, None),     # hardware_specs.csv; AMD publishes no die areas
    "l40s": (609, C, 350, C, None),           # AD102 die (NVIDIA Ada whitepaper); TDP hardware_specs.csv
}
# Not a TDP: TPU v4's measured power under load is 90/170/192 W min/mean/max (hardware_specs.csv).
TPU_V4_MEASURED_MAX_W = 192


def rows():
    model = presets.model("llama-3.1-8b")
    wl = diffhw.workload(1, 512, 64)
    out = []
    for name, (area, area_role, tdp, tdp_role, cost) in PUBLISHED.items():
        tech = presets.technology_for(name)
        e = diffhw.evaluate(presets.hardware(name), model, wl, diffhw.parallelism(), technology=tech).economics
        arch = architecture_of(preset_chain(resolve("hardware", ".toml", name))) or "-"
        out.append(dict(name=name, node=tech.node, memory=tech.memory, arch=arch, area=float(e.chip_area_mm2),
                        area_ref=area, area_role=area_role, power=float(e.peak_power_w), tdp=tdp, tdp_role=tdp_role,
                        cost=float(e.chip_cost_usd), cost_ref=cost))
    return out


def main():
    print(f"{'chip':14s} {'node':5s} {'memory':6s} {'arch':9s} {'area mm2':>8s} {'real':>5s} {'err':>5s} {'role':6s}"
          f" {'power W':>7s} {'TDP':>5s} {'err':>5s} {'role':6s} {'cost $':>7s} {'est.':>6s}")
    table = rows()
    for r in table:
        def err(x, ref):
            return f"{x / ref - 1:+.0%}" if ref else "-"

        print(f"{r['name']:14s} {r['node']:5s} {r['memory']:6s} {r['arch']:9s} {r['area']:8.0f} {r['area_ref'] or '-':>5}"
              f" {err(r['area'], r['area_ref']):>5s} {r['area_role'] or '-':6s} {r['power']:7.0f} {r['tdp'] or '-':>5}"
              f" {err(r['power'], r['tdp']):>5s} {r['tdp_role'] or '-':6s} {r['cost']:7.0f} {r['cost_ref'] or '-':>6}")
    tpu = next(r for r in table if r["name"] == "tpu-v4")
    print(f"tpu-v4 power vs its measured max ({TPU_V4_MEASURED_MAX_W} W, not a TDP): "
          f"{tpu['power'] / TPU_V4_MEASURED_MAX_W - 1:+.0%}")


if __name__ == "__main__":
    main()
