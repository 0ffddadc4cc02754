"""Output-length spread in serving (`Traffic.output_cv`): unchanged at 0, wider TPOT
percentiles and longer contexts in flight as it grows, Little's law, finite gradients
(float64)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw._serving import _serve


@pytest.fixture(scope="module")
def design():
    hw = diffhw.presets.hardware("h100-sxm")
    model = diffhw.presets.model("llama-3.1-8b")
    return hw, model, diffhw.parallelism(tp=1)


TR = dict(input_tokens=1024, output_tokens=128)
LIMITS = dict(ttft_limit_s=0.3, tpot_limit_s=0.011)


def _cv(tr, cv):
    return eqx.tree_at(lambda t: t.output_cv, tr, jnp.asarray(cv, dtype=float))


@pytest.fixture(scope="module")
def spread(design):
    """`serve` at one rate (half the sustainable one) for output_cv 0, 0.5, 1, 2."""
    hw, model, par = design
    tr = diffhw.traffic(1.0, **TR)
    cap = float(diffhw.serve(hw, model, tr, par).max_sustainable_rate_per_s)
    tr = eqx.tree_at(lambda t: t.request_rate_per_s, tr, jnp.asarray(0.5 * cap))
    return tr, [diffhw.serve(hw, model, _cv(tr, cv), par, **LIMITS) for cv in (0.0, 0.5, 1.0, 2.0)]


def test_zero_spread_is_exactly_the_old_model(design, spread):
    """output_cv = 0 changes nothing, bit for bit: the factors are exactly 1 and the
    in-flight context exactly O / 2 (checked against the model before output_cv too)."""
    m = jnp.asarray(127.0)
    per_step, persistent = _serve._length_spread(jnp.asarray(0.0), m)
    assert float(per_step) == 1.0 and float(persistent) == 1.0
    tr, rs = spread
    assert float(_serve._in_flight_output(tr)) == 64.0
    hw, model, par = design
    default = diffhw.serve(hw, model, diffhw.traffic(float(tr.request_rate_per_s), **TR), par, **LIMITS)
    for a, b in zip(jax.tree_util.tree_leaves(rs[0]), jax.tree_util.tree_leaves(default)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_spread_widens_tpot_and_lengthens_contexts(spread):
    _, rs = spread
    ratio = [float(r.tpot_p99_s) / float(r.tpot_mean_s) for r in rs]
    assert all(b > a for a, b in zip(ratio, ratio[1:])), ratio
    for k in ("kv_cache_occupancy", "tpot_mean_s", "tpot_p99_s"):
        v = [float(getattr(r, k)) for r in rs]
        assert all(b > a for a, b in zip(v, v[1:])), (k, v)
    # the KV cache holds sequences at their in-flight mean context P + O (1 + c^2) / 2
    cap = [float(r.kv_capacity_sequences) for r in rs]
    assert cap[2] < cap[0]
    for r in rs:
        qs = [float(r.tpot_p50_s), float(r.tpot_p90_s), float(r.tpot_p99_s)]
        assert qs[0] <= qs[1] <= qs[2]
        assert bool(r.stable)


def test_littles_law_holds_with_spread(design, spread):
    _, rs = spread
    hw, model, par = design
    for r in rs:
        rate = float(r.request_rate_per_s)
        assert float(r.requests_in_flight) == pytest.approx(rate * float(r.e2e_mean_s), rel=1e-9)
        assert float(r.decode_sequences) * float(par.dp) == pytest.approx(
            rate * (TR["output_tokens"] - 1) * float(r.tpot_mean_s), rel=1e-6)


def test_time_average_variance_is_smooth_at_its_switch():
    h = _serve._time_average_var
    x = jnp.asarray([1e-12, 0.1 * (1 - 1e-12), 0.1, 2.0, 1e3])
    v = np.asarray(h(x))
    assert np.all(np.isfinite(v))
    assert v[0] == pytest.approx(1.0) and v[1] == pytest.approx(v[2], rel=1e-9)
    assert v[3] == pytest.approx(2 * (2 - 1 + np.exp(-2)) / 4) and v[4] == pytest.approx(2e-3, rel=1e-2)
    g = jax.vmap(jax.grad(lambda t: h(t)))(x)
    assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.isfinite(np.asarray(h(x.astype(jnp.float32)))))


def test_gradients_finite_and_match_finite_differences(design, spread):
    hw, model, par = design
    tr, _ = spread

    def f(cv, bw):
        r = diffhw.serve(hw.replace(memory_bandwidth_bytes_per_s=bw), model, _cv(tr, cv), par, **LIMITS)
        return jnp.stack([r.tpot_p99_s, r.max_request_rate_per_s, r.kv_cache_occupancy])

    bw = jnp.asarray(3.35e12)
    # one compiled program for the values (finite differences) and the Jacobians
    both = jax.jit(lambda cv, bw: (f(cv, bw), jax.jacfwd(f, argnums=(0, 1))(cv, bw)))
    for cv in (0.0, 1.0):
        _, jac = both(jnp.asarray(cv), bw)
        assert all(np.all(np.isfinite(np.asarray(j))) for j in jac)
    step = 1e-5
    fd = (both(jnp.asarray(1.0 + step), bw)[0] - both(jnp.asarray(1.0 - step), bw)[0]) / (2 * step)
    np.testing.assert_allclose(np.asarray(jac[0]), np.asarray(fd), rtol=1e-4)
    assert float(jac[0][0]) > 0 and float(jac[0][1]) < 0  # a wider spread: slower tail, fewer requests


def test_output_cv_checks_and_cli(_cli):
    with pytest.raises(diffhw.InputError, match="output_cv"):
        diffhw.traffic(1.0, output_cv=-0.5)
    p = _cli("serve", "--request-rate", "1", "--output-cv", "-1")
    assert p.returncode == 2 and "--output-cv" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = _cli("serve", "--model", "llama-3.1-8b", "--chips", "1", "--input-tokens", "1024", "--output-tokens", "128",
             "--request-rate", "1", "--output-cv", "1", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["output_cv"] == 1.0 and d["tpot_p99_s"] > d["tpot_mean_s"]
