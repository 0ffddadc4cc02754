"""Sensitivity: elasticities vs finite differences, identities that physics fixes,
binding resource and crossovers, tornado, second order, and the CLI."""

import json
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw._cli import main
from diffhw._evaluation._design import check_design
from diffhw._evaluation._evaluate import _RULES, _path_name
from diffhw._tools._sensitivity import (
    crossovers,
    curvature,
    hessian_vector_product,
    leaf_paths,
    sensitivity,
    tornado,
)


@pytest.fixture(scope="module")
def design():
    return diffhw.from_presets("h100-sxm", "llama-3.1-70b", chips=8, batch=16, input_tokens=1024, output_tokens=128)


@pytest.fixture(scope="module")
def sens(design):
    return sensitivity(design)


def test_covers_every_hardware_and_technology_leaf(design, sens):
    params = leaf_paths(design)
    assert sens.params == params
    assert "hardware.memory_bandwidth_bytes_per_s" in params and "technology.wafer_usd" in params
    assert "hardware.profile.layer_overhead_s" in params and "hardware.network.switch_radix" in params
    assert sens.elasticity.shape == (len(sens.metrics), len(params))
    assert np.all(np.isfinite(sens.elasticity))


@pytest.mark.parametrize("metric, param", [
    ("tpot_s", "hardware.memory_bandwidth_bytes_per_s"),
    ("tpot_s", "hardware.profile.layer_overhead_s"),
    ("ttft_s", "hardware.flop_per_s_bf16"),
    ("usd_per_million_tokens", "technology.wafer_usd"),
    ("energy_per_token_j", "technology.memory_j_per_byte"),
    ("chip_area_mm2", "hardware.sram_bytes"),
    ("kgco2e_per_million_tokens", "technology.grid_kgco2e_per_j"),
])
def test_elasticities_match_finite_differences(design, sens, metric, param):
    h = 1e-5
    p = diffhw.get_value(design, param)

    def at(f):
        return float(diffhw.design_values(diffhw.set_values(design, {param: p * f}))[metric])

    fd = (np.log(at(np.exp(h))) - np.log(at(np.exp(-h)))) / (2 * h)
    assert sens.of(metric)[param] == pytest.approx(fd, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("preset, model, chips", [("h100-sxm", "llama-3.1-70b", 8), ("b200-hbf", "llama-3.1-405b", 1)])
def test_time_scaling_identity(preset, model, chips):
    """Multiplying every time-like hardware parameter by k and dividing every rate by k
    multiplies TPOT and TTFT by k: sum(E_time) - sum(E_rate) = 1 exactly (the smooth max
    works in log space, so it keeps this homogeneity)."""
    d = diffhw.from_presets(preset, model, chips=chips, batch=4, input_tokens=1024, output_tokens=128,
                            precision="fp8")
    s = sensitivity(d, metrics=("tpot_s", "ttft_s", "e2e_latency_s"), params=leaf_paths(d, ("hardware",)))
    for metric in ("tpot_s", "ttft_s", "e2e_latency_s"):
        e = s.of(metric)
        time_like = sum(v for p, v in e.items() if p.endswith("_s") and "per_s" not in p)
        rate_like = sum(v for p, v in e.items() if "per_s" in p or p.endswith("_w") or "_w_per_" in p)
        assert time_like - rate_like == pytest.approx(1.0, abs=1e-9)


def test_money_scaling_identity(design, sens):
    """Every dollar figure times k (prices, wafer, electricity, facility) scales $/Mtoken
    by k: the elasticities of all ``usd`` parameters sum to 1."""
    e = sens.of("usd_per_million_tokens")
    assert sum(v for p, v in e.items() if "usd" in p) == pytest.approx(1.0, abs=1e-9)


def test_binding_resource_and_crossovers(design, sens):
    assert sens.bound in ("memory", "overhead")
    assert sum(sens.bound_shares.values()) == pytest.approx(1.0)
    c = crossovers(design)
    mb = c["memory_bandwidth"]
    assert mb["bound"] == sens.bound
    # Less bandwidth makes the step memory-bound at some factor below 1 (or it is already).
    if sens.bound != "memory":
        f, new = mb["below"]
        assert 0 < f < 1 and new == "memory"
        # Check the crossover by evaluation on either side.
        bw = diffhw.get_value(design, "hardware.memory_bandwidth_bytes_per_s")
        for factor, expect in ((f * 0.97, "memory"), (f * 1.03, sens.bound)):
            m = diffhw.evaluate_design(diffhw.set_values(design, {"hardware.memory_bandwidth_bytes_per_s": bw * factor}))
            assert diffhw.bound_name(m) == expect


def test_tornado_rows_and_plot(design, tmp_path):
    from diffhw._tools._sensitivity import plot_tornado

    rows = tornado(design, "tpot_s", step=0.2, top=5)
    assert len(rows) == 5
    swings = [max(abs(lo), abs(hi)) for _, _, lo, hi in rows]
    assert swings == sorted(swings, reverse=True)
    p = rows[0][0]
    assert p in ("hardware.memory_bandwidth_bytes_per_s", "hardware.profile.bandwidth_efficiency",
                 "hardware.profile.layer_overhead_s")
    path = plot_tornado(rows, "tpot_s", tmp_path / "t.png")
    assert path.exists() and path.stat().st_size > 1000


def test_second_order_by_hvp(design):
    params = ["hardware.memory_bandwidth_bytes_per_s", "hardware.profile.layer_overhead_s"]
    diag = curvature(design, "tpot_s", params)
    h = 1e-3
    bw = diffhw.get_value(design, params[0])

    def g(f):
        return np.log(float(diffhw.design_values(diffhw.set_values(design, {params[0]: bw * f}))["tpot_s"]))

    fd = (g(np.exp(h)) - 2 * g(1.0) + g(np.exp(-h))) / h**2
    assert diag[params[0]] == pytest.approx(fd, rel=1e-3, abs=1e-6)
    hv = hessian_vector_product(design, "tpot_s", params, jnp.asarray([1.0, 0.0]))
    assert float(hv[0]) == pytest.approx(diag[params[0]], rel=1e-9)


def test_cli_sensitivity_json_and_plot(tmp_path, capsys):
    png = tmp_path / "tornado.png"
    rc = main(["sensitivity", "--model", "llama-3.1-8b", "--chips", "1", "--batch", "8", "--metric",
               "usd_per_million_tokens", "--top", "6", "--json", "--plot", str(png), "--second-order"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["metric"] == "usd_per_million_tokens" and len(d["top"]) == 6 and len(d["tornado"]) == 6
    assert d["bound"] in d["bound_shares"] and set(d["crossovers"]) == {"compute", "memory_bandwidth",
                                                                        "link_bandwidth", "batch"}
    assert "tpot_s" in d["elasticities"] and "hardware.memory_bandwidth_bytes_per_s" in d["params"]
    assert set(d["second_order"]) == set(d["top"])
    for row in d["tornado"]:  # swings relative to this metric, in the elasticity's direction
        e = d["top"][row["param"]]
        assert abs(row["change_low"]) < 0.5 and abs(row["change_high"]) < 0.5
        assert np.sign(row["change_high"]) == np.sign(e) and np.sign(row["change_low"]) == -np.sign(e)
        assert row["change_high"] - row["change_low"] == pytest.approx(e * np.log(1.2 / 0.8), rel=0.25)
    assert png.exists()


def test_cli_sensitivity_table_and_bad_metric(capsys):
    assert main(["sensitivity", "--model", "llama-3.1-8b", "--chips", "1", "--batch", "8", "--top", "6",
                 "--metric", "usd_per_million_tokens"]) == 0
    out = capsys.readouterr().out
    assert "elasticity" in out and "binding resource changes" in out
    assert main(["sensitivity", "--metric", "tpot"]) == 2
    err = capsys.readouterr().err
    assert "--metric" in err and err.count("\n") == 1


# ------------------------------------------------------------------------ gradient health
def _kitchen_sink():
    """MoE + MLA (DeepSeek-V3) on HBF tiers with near-memory units: every branch at once."""
    hw = diffhw.presets.hardware("b200-hbf").replace(near_memory=diffhw.presets.hardware("b200-hbm4-pnm").near_memory)
    d = diffhw.from_presets("b200-hbf", "deepseek-v3", tp=8, ep=8, batch=16, input_tokens=4096, output_tokens=512,
                            precision="fp8")
    return eqx.tree_at(lambda x: x.hardware, d, hw)


def _random_designs(base, n, seed):
    """`n` designs around `base`: every hardware and technology leaf times a log-uniform
    factor in [1/2, 2] (fractions times [1/2, 1], so they stay fractions; PUE times [1,
    2]), and a random batch and lengths."""
    rng = np.random.default_rng(seed)
    tree = {"hardware": base.hardware, "technology": base.technology}
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)

    def factor(path, shape):
        rule = _RULES.get(re.sub(r"\[\d+\]", "[]", _path_name(path)), "")  # tiers[0] -> tiers[]
        if "1]" in rule:
            return rng.uniform(0.5, 1.0, shape)
        if rule.startswith(">= 1"):
            return rng.uniform(1.0, 2.0, shape)
        return np.exp(rng.uniform(-np.log(2), np.log(2), shape))

    for _ in range(n):
        new = [leaf * factor(path, np.shape(leaf)) if eqx.is_inexact_array(leaf) and np.ndim(leaf) == 0 else leaf
               for path, leaf in leaves]
        t = jax.tree_util.tree_unflatten(treedef, new)
        wl = diffhw.workload(float(rng.integers(1, 65)), float(rng.integers(128, 8193)),
                             float(rng.integers(16, 1025)), weight_precision=base.workload.weight_precision,
                             activation_precision=base.workload.activation_precision,
                             kv_precision=base.workload.kv_precision)
        yield diffhw.Design(t["hardware"], base.model, wl, base.parallelism, t["technology"])


#: Metrics that may be infinite by design (an unlimited tier lifetime).
_MAY_BE_INF = {"min_tier_lifetime_s", "tier_lifetime_margin"}


def _healthy(d):
    check_design(d)
    s = sensitivity(d)
    finite = [m for m in s.metrics if m not in _MAY_BE_INF]
    values = dict(zip(s.metrics, s.values, strict=True))
    assert all(np.isfinite(values[m]) for m in finite), {m: values[m] for m in finite if not np.isfinite(values[m])}
    assert np.all(np.isfinite(s.elasticity)), [
        (s.metrics[i], s.params[j]) for i, j in zip(*np.nonzero(~np.isfinite(s.elasticity)), strict=True)][:5]


@pytest.mark.parametrize("which, x64", [("dense", True), ("moe-mla-tiers-near-memory", True),
                                         ("moe-mla-tiers-near-memory", False)],
                         ids=["dense-float64", "moe-mla-tiers-near-memory-float64", "moe-mla-tiers-near-memory-float32"])
def test_no_nan_or_inf_in_any_metric_or_gradient_around_presets(design, which, x64):
    """Gradient health: over seeded random designs (every hardware and technology leaf
    moved up to 2x either way, random batch and lengths), every metric and every
    elasticity of `sensitivity` (a jacobian through the whole model) is finite, in
    float64 (the suite's default) and float32 (the command line's). One compile per
    structure and precision; the designs reuse it (the dense one this module's)."""
    with jax.enable_x64(x64):
        base = design if which == "dense" else _kitchen_sink()
        for d in _random_designs(base, 10, seed=0):
            _healthy(d)


def test_kernels_leave_the_value_checks_to_the_host(design):
    """The tool's compiled kernels carry no host callback (the value checks' `error_if`),
    so the command line keeps them in its program cache: with one, `diffhw sensitivity`
    compiled three programs afresh on every run (warm 4.7 s -> 2.5 s). Their callers
    check on the host instead, naming the field (here crossovers pushing an efficiency
    past 1 at the grid's end)."""
    from diffhw._evaluation._design import anonymous
    from diffhw._tools._sensitivity import _bounds_at, _hvp, _swing

    d = anonymous(design)
    params = ("hardware.memory_bandwidth_bytes_per_s", "hardware.flop_per_s_bf16")
    kernels = [
        (_swing, lambda d, f: _swing.__wrapped__(d, params, "tpot_s", None, f), jnp.zeros(2)),
        (_bounds_at, lambda d, f: _bounds_at.__wrapped__(d, params, None, jnp.ones(2), f), jnp.zeros(3)),
        (_hvp, lambda d, v: _hvp.__wrapped__(d, params, "tpot_s", None, v), jnp.ones(2)),
    ]
    for kernel, fn, x in kernels:
        text = jax.jit(fn).lower(d, x).as_text()
        assert "callback" not in text, kernel.__name__
    with pytest.raises(diffhw.InputError, match="bandwidth_efficiency"):
        crossovers(design, params={"eff": "hardware.profile.bandwidth_efficiency"})
    # inside a user's transformation the product keeps its in-program checks
    g = jax.jit(lambda d: hessian_vector_product(d, "tpot_s", params, jnp.ones(2)))
    assert np.isfinite(np.asarray(g(design))).all()
