"""Gradients of TPOT, TTFT and throughput w.r.t. every hardware leaf: finite and equal to
central finite differences (float64)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw

DESIGNS = {
    "llama70b-tp8": ("h100-sxm", "llama-3.1-70b", dict(tp=8), (64, 2048, 256)),
    "mixtral-ep2-pp2": ("mi300x", "mixtral-8x7b", dict(tp=2, pp=2, ep=2), (16, 1024, 128)),
    "deepseek-mla-ep8": ("h200-sxm", "deepseek-v3", dict(tp=8, ep=8, pp=2), (8, 4096, 512)),
}
OUTPUTS = ("tpot_s", "ttft_s", "output_tokens_per_s")
#: Leaves that are whole counts sitting at a kink in these designs, checked finite only: a
#: scale-up domain of 8 chips holds exactly the 8-chip TP/EP group (min(group, domain) at
#: a tie: the gradient is the mean of the two one-sided slopes, which central differences
#: reach only as h -> 0, 1e-4 off at h = 1e-5 x, from the inter-domain terms' curvature).
KINKED = (".scale_out.domain_chips",)


def _leaves(hw):
    params, static = eqx.partition(hw, eqx.is_inexact_array)
    flat, treedef = jax.tree_util.tree_flatten(params)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    return flat, treedef, static, paths


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_gradients_match_finite_differences(design):
    hw_name, model_name, par_kw, (b, i, o) = DESIGNS[design]
    hw = diffhw.presets.hardware(hw_name)
    model = diffhw.presets.model(model_name)
    wl = diffhw.workload(b, i, o, "bf16")
    par = diffhw.parallelism(**par_kw)
    flat, treedef, static, paths = _leaves(hw)
    assert len(flat) >= 20  # every hardware and profile leaf

    def f(xs):
        h = eqx.combine(jax.tree_util.tree_unflatten(treedef, list(xs)), static)
        m = diffhw.evaluate(h, model, wl, par)
        return jnp.stack([getattr(m, k) for k in OUTPUTS])

    x0 = [jnp.asarray(x, dtype=jnp.float64) for x in flat]
    jac = jax.jit(jax.jacrev(f))(x0)
    for j, (x, path) in enumerate(zip(x0, paths)):
        g = np.asarray(jac[j])
        assert np.all(np.isfinite(g)), path
        if path in KINKED:
            continue
        h = 1e-5 * abs(float(x)) if float(x) != 0 else 1e-9
        up = [xx if k != j else xx + h for k, xx in enumerate(x0)]
        y0 = np.asarray(f(x0))
        if float(x) == 0:  # a non-negative leaf at 0 (e.g. a per-step cost left out): one-sided,
            h = 1e-11  # with a step small enough for the curvature of 1/time outputs
            up = [xx if k != j else xx + h for k, xx in enumerate(x0)]
            fd = (np.asarray(f(up)) - y0) / h
        else:
            dn = [xx if k != j else xx - h for k, xx in enumerate(x0)]
            fd = (np.asarray(f(up)) - np.asarray(f(dn))) / (2 * h)
        for k, out in enumerate(OUTPUTS):
            # absolute slack: an elasticity of 1e-7 is zero for every practical purpose
            atol = 1e-7 * abs(y0[k]) / abs(float(x)) if float(x) != 0 else 1e-12
            assert g[k] == pytest.approx(fd[k], rel=1e-4, abs=atol), f"d {out} / d {path}"


def test_gradient_wrt_batch_and_lengths(h100, llama70b):
    par = diffhw.parallelism(tp=8)

    def tpot(b):
        return diffhw.evaluate(h100, llama70b, diffhw.workload(b, 2048, 256), par).tpot_s

    g = jax.jit(jax.grad(tpot))(jnp.asarray(64.0))
    fd = (tpot(64.01) - tpot(63.99)) / 0.02
    assert np.isfinite(g) and g > 0
    assert float(g) == pytest.approx(float(fd), rel=1e-4)
