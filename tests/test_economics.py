"""Energy, power, area, cost, TCO and carbon (issue: the paper's metrics)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import presets
from diffhw._cli import main
from diffhw._hardware._technology import YEAR_S

# Real chips: (preset, published die area mm2 or None, TDP W or None). Which numbers are
# anchors (used to set a constant, so reproduced by construction) and which are checks:
#   h100-sxm   area anchor (N4 density), power anchor (N4 pJ/FLOP = 40% of H100's TDP/peak)
#   a100       area anchor (N7 density); power independent (N7 energy = N4 / 0.70, TSMC)
#   v100-sxm2  area and power independent (12 nm = N16 row: N7 scaled by TSMC's ratios)
#   tpu-v4     area independent (TPU density anchored on TPU v4i, a different chip); no TDP
#   b200       area independent; power anchor (Blackwell energy scale, architecture.toml)
#   gb200, b300, h200, mi300x: power independent
CHIPS = [
    ("h100-sxm", 814.0, 700.0),          # hardware_specs.csv
    ("a100-sxm-80gb", 826.0, 400.0),     # hardware_specs.csv
    ("v100-sxm2", 815.0, 300.0),         # NVIDIA Tesla V100 whitepaper (2017) and datasheet
    ("tpu-v4", 600.0, None),             # Jouppi et al. ISCA 2023 Table 4: die < 600 mm2
    ("b200", 1600.0, 1000.0),            # ~2 x 800 mm2 (siliconanalysts, tech_constants §4)
    ("gb200", None, 1200.0),             # hardware_specs.csv
    ("b300", None, 1100.0),              # hardware_specs.csv
    ("h200-sxm", None, 700.0),           # hardware_specs.csv
    ("mi300x", None, 750.0),             # hardware_specs.csv
]


def _econ(name, model="llama-3.1-70b", tp=8, batch=64, tech=None):
    hw = presets.hardware(name)
    tech = tech if tech is not None else presets.technology_for(name)
    m = diffhw.evaluate(hw, presets.model(model), diffhw.workload(batch, 2048, 256),
                        diffhw.parallelism(tp=tp), technology=tech)
    return hw, tech, m


@pytest.mark.parametrize("name, area, tdp", CHIPS)
def test_real_chips_reproduced_within_25_percent(name, area, tdp):
    hw = presets.hardware(name)
    e = diffhw.evaluate(hw, presets.model("llama-3.1-8b"), diffhw.workload(1, 512, 64), diffhw.parallelism(),
                        technology=presets.technology_for(name)).economics
    if area is not None:
        assert float(e.chip_area_mm2) == pytest.approx(area, rel=0.25)
    if tdp is not None:
        assert float(e.peak_power_w) == pytest.approx(tdp, rel=0.25)


def test_b200_splits_into_two_dies():
    _, _, m = _econ("b200")
    assert 1.8 < float(m.economics.chiplets) < 2.4
    assert float(m.economics.die_area_mm2) < 1.05 * 858


@pytest.mark.parametrize(
    "memory, gb_s_per_w, gb_per_w, pj",
    # Ma & Patterson Table 3, derived figures (PAPER.md)
    [("HBF", 20.5, 6.4, 6.1), ("HBM4", 41.0, 1.0, 3.05), ("DDR5", 4.0, 5.0, 29.0),
     ("LPDDR5", 17.0, 5.0, 7.4), ("SSD", 0.1, 82.0, 1560.0)],
)
def test_paper_table3_from_the_tier_table(memory, gb_s_per_w, gb_per_w, pj):
    d = presets.memory_device(memory)
    assert d["pj_per_bit"] == pytest.approx(pj, rel=0.02)
    # The paper rounds to one significant figure where the ratio is small.
    assert d["gb_s_per_w"] == pytest.approx(gb_s_per_w, rel=0.25, abs=0.05)
    assert d["gb_per_w"] == pytest.approx(gb_per_w, rel=0.25)


def test_dies_per_wafer_and_yield_by_hand():
    tech = presets.technology("N5", "HBM3")
    # 100 mm2 on a 300 mm wafer with 5 mm edge: pi 145^2 / 100 - pi 290 / sqrt(200)
    expect = np.pi * 145**2 / 100 - np.pi * 290 / np.sqrt(200)
    assert float(diffhw.dies_per_wafer(100.0, tech)) == pytest.approx(expect, rel=1e-6)
    # negative binomial: (1 + A D0 / alpha)^-alpha, D0 = 0.10 / cm2, alpha = 10
    assert float(diffhw.die_yield(800.0, tech)) == pytest.approx((1 + 8.0 * 0.1 / 10) ** -10, rel=1e-9)
    areas = jnp.linspace(50.0, 850.0, 20)
    ys = diffhw.die_yield(areas, tech)
    assert bool(jnp.all(jnp.diff(ys) < 0)) and float(ys[0]) < 1.0
    g = jax.grad(lambda a: diffhw.die_yield(a, tech))(jnp.asarray(0.0))
    assert np.isfinite(g)


def test_architecture_rows_scale_the_node():
    from diffhw._io._technology import architecture_of

    n4 = presets.technology("N4", "HBM3E")
    bw = presets.technology_for("b200")
    assert architecture_of(["b200-hbm4-pnm", "b200"]) == "blackwell" and architecture_of(["h100-sxm"]) == ""
    assert float(bw.compute_j_per_flop) == pytest.approx(0.59 * float(n4.compute_j_per_flop))
    assert float(bw.compute_mm2_per_flop_per_s) == float(n4.compute_mm2_per_flop_per_s)
    tpu = presets.technology_for("tpu-v4")
    assert float(tpu.compute_mm2_per_flop_per_s) == pytest.approx(0.87 * float(presets.technology("N7").compute_mm2_per_flop_per_s))
    assert presets.technology_for("v100-sxm2").node == "N16"  # TSMC 12 nm FFN is a 16FF+ derivative


def test_die_yield_and_dies_per_wafer_at_their_kinks():
    """Yield has no kink (its gradient at A = 0 is -D0); dies per wafer is kept >= 1 by a
    smooth max where ``pi r^2 / A - pi d / sqrt(2 A)`` crosses 1 (a die near wafer size):
    values and gradients there are finite and continuous, and the hard limit is reached
    on both sides."""
    tech = presets.technology("N5", "HBM3")
    g0 = jax.grad(lambda a: diffhw.die_yield(a, tech))(jnp.asarray(0.0))
    assert float(diffhw.die_yield(0.0, tech)) == 1.0 and float(g0) == pytest.approx(-0.10 / 100, rel=1e-9)
    r = 145.0

    def raw(a):
        return np.pi * r**2 / a - np.pi * 2 * r / np.sqrt(2 * a)

    lo, hi = 1e3, 1e4  # raw(lo) > 1 > raw(hi): bisect the crossing
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if raw(mid) > 1 else (lo, mid)
    kink = 0.5 * (lo + hi)
    dpw = jax.vmap(lambda a: diffhw.dies_per_wafer(a, tech))
    areas = jnp.asarray([0.5 * kink, 0.99 * kink, kink, 1.01 * kink, 2.0 * kink])
    v = np.asarray(dpw(areas))
    assert v[0] == pytest.approx(raw(0.5 * kink), rel=1e-3) and v[-1] == pytest.approx(1.0, rel=1e-3)
    assert np.all(v >= 1.0) and np.all(np.diff(v) <= 0)
    grads = np.asarray(jax.vmap(jax.grad(lambda a: diffhw.dies_per_wafer(a, tech)))(areas))
    assert np.all(np.isfinite(grads)) and np.all(grads <= 0)
    assert abs(grads[2] - grads[1]) < 0.5 * abs(grads[1]) and abs(grads[3] - grads[2]) < 0.5 * abs(grads[1])


def test_chiplet_split_tends_to_the_hard_split():
    hw = presets.hardware("b200")
    tech = presets.technology_for("b200")
    for tau, tol in ((0.02, 0.02), (1e-3, 1e-3)):
        a = diffhw.chip_area(hw, tech, tau=tau)
        base = float(a.compute_mm2 + a.sram_mm2 + a.memory_phy_mm2 + a.serdes_mm2)
        d = 0.1 * 858.0
        assert float(a.chiplets) == pytest.approx(max((base - d) / (858.0 - d), 1.0), rel=tol)
    small = diffhw.chip_area(presets.hardware("l4"), presets.technology_for("l4"), tau=1e-3)
    assert float(small.chiplets) == pytest.approx(1.0, abs=1e-6)


def test_chiplet_split_is_smooth_at_the_reticle():
    hw = presets.hardware("h100-sxm")
    tech = presets.technology("N4", "HBM3")

    def base_at(flops):
        return diffhw.chip_area(hw.replace(flop_per_s_bf16=flops), tech)

    # find the FLOP/s that puts the base area exactly at the reticle
    a = base_at(989.4e12)
    other = float(a.sram_mm2 + a.memory_phy_mm2 + a.serdes_mm2)
    at_reticle = (858.0 - other) / float(tech.compute_mm2_per_flop_per_s)
    n = [float(base_at(f).chiplets) for f in (0.5 * at_reticle, at_reticle, 2.2 * at_reticle)]
    assert n[0] == pytest.approx(1.0, abs=1e-6) and 1.0 < n[1] < 1.02 and n[2] > 1.9
    grads = [jax.grad(lambda f: base_at(f).total_mm2)(jnp.asarray(f)) for f in
             (0.999 * at_reticle, at_reticle, 1.001 * at_reticle)]
    assert all(np.isfinite(g) and g > 0 for g in grads)
    assert float(grads[0]) == pytest.approx(float(grads[2]), rel=0.2)  # no jump at the kink


def test_energy_per_token_by_hand():
    """With no static power, no SRAM staging and no links, Decode energy per token is
    FLOPs x pJ/FLOP + bytes x pJ/byte of the chain, times the chips, over the batch."""
    hw = presets.hardware("h100-sxm")
    tech = presets.technology("N4", "HBM3").replace(static_fraction=0.0, sram_bytes_per_memory_byte=0.0,
                                                     link_j_per_byte=0.0)
    model = presets.model("llama-3.1-8b")
    wl = diffhw.workload(8, 1024, 2)
    par = diffhw.parallelism(tp=1)
    m = diffhw.evaluate(hw, model, wl, par, technology=tech)
    c = diffhw.workload_costs(model, diffhw.workload(8, 1024, 2))["decode_step"]["model"]["total"]
    # decode_step costs are at context input + output/2 = 1025, the same as TPOT's average
    expect = (c["flops"] * 0.30e-12 + c["bytes"] * 3.9e-12 * 8) / 8
    assert float(m.economics.decode_energy_per_token_j) == pytest.approx(expect, rel=2e-3)


def test_tco_and_carbon_identities():
    _, _, m = _econ("h100-sxm")
    e = m.economics
    chips = 8
    capex = chips * float(e.chip_cost_usd) * 1.64 / (1 - 0.19)
    assert float(e.system_capex_usd) == pytest.approx(capex, rel=1e-6)
    energy_year = float(e.facility_power_w) * YEAR_S * 0.08 / 3.6e6
    tco = capex / 5 + float(e.facility_capex_usd) / 15 + energy_year
    assert float(e.tco_usd_per_year) == pytest.approx(tco, rel=1e-6)
    tokens_year = float(m.output_tokens_per_s) * YEAR_S
    assert float(e.usd_per_million_tokens) == pytest.approx(tco / tokens_year * 1e6, rel=1e-6)
    assert float(e.facility_power_w) == pytest.approx(float(e.system_average_power_w) * 1.10, rel=1e-9)
    op = float(e.facility_power_w) * YEAR_S * 369e-3 / 3.6e6
    assert float(e.operational_kgco2e_per_year) == pytest.approx(op, rel=1e-6)
    assert float(e.average_power_w) < float(e.peak_power_w)


def test_operational_carbon_scales_with_grid_and_pue():
    _, tech, m = _econ("h100-sxm")
    _, _, m2 = _econ("h100-sxm", tech=tech.replace(pue=tech.pue * 1.5, grid_kgco2e_per_j=tech.grid_kgco2e_per_j * 2))
    r = float(m2.economics.operational_kgco2e_per_year) / float(m.economics.operational_kgco2e_per_year)
    assert r == pytest.approx(3.0, rel=1e-9)


METRICS = ("energy_per_token_j", "average_power_w", "peak_power_w", "chip_area_mm2", "chip_cost_usd",
           "system_capex_usd", "tco_usd_per_year", "usd_per_million_tokens", "embodied_kgco2e",
           "kgco2e_per_million_tokens", "tokens_per_s_per_watt", "tokens_per_s_per_usd")


@pytest.mark.parametrize("hw_name, model_name, tp", [("h100-sxm", "llama-3.1-70b", 8), ("b200", "mixtral-8x7b", 2)])
def test_gradients_of_every_metric_match_finite_differences(hw_name, model_name, tp):
    hw = presets.hardware(hw_name)
    tech = presets.technology_for(hw_name)
    model = presets.model(model_name)
    wl = diffhw.workload(32, 1024, 128)
    par = diffhw.parallelism(tp=tp)
    params, static = eqx.partition((hw, tech), eqx.is_inexact_array)
    flat, treedef = jax.tree_util.tree_flatten(params)
    names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    assert len(flat) > 55  # every hardware, profile and technology leaf

    def f(xs):
        h, t = eqx.combine(jax.tree_util.tree_unflatten(treedef, list(xs)), static)
        e = diffhw.evaluate(h, model, wl, par, technology=t).economics
        return jnp.stack([getattr(e, k) for k in METRICS])

    x0 = [jnp.asarray(x, dtype=jnp.float64) for x in flat]
    y0 = np.asarray(f(x0))
    jac = jax.jit(jax.jacrev(f))(x0)
    for j, (x, name) in enumerate(zip(x0, names)):
        g = np.asarray(jac[j])
        assert np.all(np.isfinite(g)), name
        v = float(x)
        h = 1e-5 * abs(v) if v != 0 else 1e-7
        up = [xx if k != j else xx + h for k, xx in enumerate(x0)]
        if v == 0:  # a non-negative leaf at 0 (e.g. a per-step cost left out): one-sided,
            h = 1e-9  # small enough that the curvature of a time-like leaf stays < 1e-4
            up = [xx if k != j else xx + h for k, xx in enumerate(x0)]
            fd = (np.asarray(f(up)) - y0) / h
        else:
            dn = [xx if k != j else xx - h for k, xx in enumerate(x0)]
            fd = (np.asarray(f(up)) - np.asarray(f(dn))) / (2 * h)
        for k, metric in enumerate(METRICS):
            atol = 1e-7 * abs(y0[k]) / (abs(v) if v != 0 else 1.0)
            assert g[k] == pytest.approx(fd[k], rel=2e-4, abs=atol), f"d {metric} / d {name}"


def test_cli_economics_keys_and_flags(capsys):
    assert main(["evaluate", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for k in ("energy_per_token_j", "average_power_w", "peak_power_w", "chip_area_mm2", "chip_cost_usd",
              "system_capex_usd", "tco_usd_per_year", "usd_per_million_tokens", "embodied_kgco2e",
              "operational_kgco2e_per_year", "kgco2e_per_million_tokens", "tokens_per_s_per_watt",
              "tokens_per_s_per_usd"):
        assert k in d and np.isfinite(d[k]) and d[k] > 0, k
    assert main(["evaluate", "--json", "--pue", "1.5", "--grid-gco2e-per-kwh", "738",
                 "--electricity-usd-per-kwh", "0.16", "--lifetime-years", "3"]) == 0
    d2 = json.loads(capsys.readouterr().out)
    assert d2["operational_kgco2e_per_year"] == pytest.approx(d["operational_kgco2e_per_year"] * 1.5 / 1.1 * 2)
    assert d2["tco_usd_per_year"] > d["tco_usd_per_year"]
    assert d2["embodied_kgco2e"] == pytest.approx(d["embodied_kgco2e"])
    for bad in (["--pue", "0.9"], ["--lifetime-years", "0"], ["--electricity-usd-per-kwh", "-1"],
                ["--grid-gco2e-per-kwh", "nan"]):
        assert main(["evaluate", *bad]) == 2
        assert "error" in capsys.readouterr().err


def test_every_technology_number_has_a_source():
    import re

    from diffhw._io._technology import TECH

    for f in TECH.iterdir():
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if re.match(r"^\s*[a-z0-9_]+\s*=\s*[-0-9.e]+\s*(#.*)?$", line) and "= 0.0" not in line:
                assert "#" in line, f"{f.name}:{i} has no source: {line}"
