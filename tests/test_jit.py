"""diffhw's entry points compile with their own XLA options at the top level only (JAX
refuses compile options on a nested jit), so they must still work inside a user's
jit, grad and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import _jit


def test_options_only_at_the_top_level_on_cpu():
    inside = []

    def probe(x):
        inside.append(_jit._at_top_level())
        return x

    assert _jit._at_top_level()  # JAX's private trace-state check still answers
    jax.jit(probe)(1.0)
    jax.grad(probe)(1.0)
    assert inside == [False, False]
    assert _jit._on_cpu() == (jax.default_backend() == "cpu")


def test_entry_points_run_inside_user_transformations():
    f = _jit.filter_jit(lambda x: x * 2.0)
    assert float(f(1.5)) == 3.0
    assert float(jax.jit(f)(1.5)) == 3.0
    assert float(jax.grad(f)(1.5)) == 2.0
    assert jnp.allclose(jax.vmap(f)(jnp.ones(3)), 2.0)
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=8)
    top = float(diffhw.design_values(d)["tpot_s"])
    assert float(jax.jit(lambda d: diffhw.design_values(d)["tpot_s"])(d)) == pytest.approx(top, rel=1e-9)


_traces = []


@_jit.filter_jit
def _affine(x, scale, label="a"):
    _traces.append(label)
    return {"y": x * scale, "label_length": jnp.asarray(len(label))}


def test_top_level_calls_take_the_flat_dispatch_with_filter_jit_semantics():
    """Array leaves are traced (new values never retrace), other leaves static (a new
    Python number or string traces once more), shapes and dtypes are JAX's."""
    _traces.clear()
    assert float(_affine(jnp.ones(()), 2.0)["y"]) == 2.0
    assert float(_affine(jnp.ones(()) + 2.0, 2.0)["y"]) == 6.0
    assert _traces == ["a"]
    assert float(_affine(jnp.ones(()), 5.0)["y"]) == 5.0 and len(_traces) == 2
    assert int(_affine(jnp.ones(()), 5.0, label="abc")["label_length"]) == 3 and len(_traces) == 3
    assert _affine(jnp.ones(4), 5.0, label="abc")["y"].shape == (4,) and len(_traces) == 4
    assert len(_dispatch_entries(_affine)) == 3  # a new shape: the same entry, traced again by JAX


def _dispatch_entries(f):
    cell = dict(zip(f.__code__.co_freevars, f.__closure__, strict=True))["fast"]
    return cell.cell_contents.entries


@_jit.filter_jit
def _with_number_output(x):
    return x + 1.0, 3


@_jit.filter_jit
def _refuses(x, flag):
    if flag:
        raise ValueError("flag set")
    return x


def test_what_the_flat_dispatch_cannot_do_takes_equinox_path():
    y, n = _with_number_output(jnp.ones(()))
    assert float(y) == 2.0 and n == 3 and isinstance(n, int)  # a non-array output, as Equinox returns it
    assert not _dispatch_entries(_with_number_output)
    with pytest.raises(ValueError, match="flag set"):  # an error, raised as Equinox raises it
        _refuses(jnp.ones(()), True)
    assert float(_refuses(jnp.ones(()), False)) == 1.0


def test_flat_dispatch_matches_equinox_jit():
    d = diffhw.from_presets("h100-sxm", "llama-3.1-70b", chips=8, batch=64)
    m = diffhw.evaluate(d.hardware, d.model, d.workload, d.parallelism)
    from diffhw._evaluation import _evaluate as ev

    hw, model, _ = ev._anonymous(d.hardware, d.model)
    ref, _ = jax.jit(lambda *a: ev._evaluate_jit(*a))(hw, model, d.workload, d.parallelism)
    for a, b in zip(jax.tree_util.tree_leaves(m), jax.tree_util.tree_leaves(ref), strict=True):
        assert jnp.allclose(a, b, rtol=1e-6, equal_nan=True)


def test_packed_results_are_numpy_views_of_the_same_values():
    """`filter_jit(packed=True)` returns a top-level call's outputs as read-only NumPy
    arrays unpacked from one vector per dtype: the same values, shapes and dtypes as the
    plain program's, whatever the output tree (scalars, vectors, bools, None)."""

    def f(x, v):
        return {"s": x * 2.0, "v": v + x, "m": jnp.outer(v, v), "b": v > 1.0, "n": None, "i": jnp.arange(3)}

    packed, plain = _jit.filter_jit(packed=True)(f), _jit.filter_jit(f)
    x, v = jnp.asarray(1.5), jnp.arange(4.0)
    for _ in range(2):  # the second call reuses the compiled program
        a, b = packed(x, v), plain(x, v)
        assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
        for p, q in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
            assert isinstance(p, np.ndarray) and not p.flags.writeable
            assert p.shape == q.shape and p.dtype == q.dtype
            np.testing.assert_array_equal(p, np.asarray(q))
    # inside a user's transformation: traced as usual
    assert float(jax.grad(lambda y: packed(y, v)["s"])(x)) == 2.0


def test_top_level_evaluate_returns_numpy_equal_to_its_jitted_values():
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", batch=8, input_tokens=512, output_tokens=64)
    top = diffhw.evaluate(d.hardware, d.model, d.workload, d.parallelism, technology=d.technology)
    inside = jax.jit(lambda h: diffhw.evaluate(h, d.model, d.workload, d.parallelism,
                                               technology=d.technology))(d.hardware)
    assert isinstance(top.tpot_s, np.ndarray) and isinstance(top.economics.tco_usd_per_year, np.ndarray)
    for p, q in zip(jax.tree_util.tree_leaves(top), jax.tree_util.tree_leaves(inside), strict=True):
        np.testing.assert_allclose(p, np.asarray(q), rtol=1e-6)


def test_top_level_max_throughput_and_serve_return_numpy():
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", batch=8, input_tokens=512, output_tokens=64)
    top = diffhw.max_throughput(d.hardware, d.model, d.workload, d.parallelism, tpot_limit_s=0.05)
    inside = jax.jit(lambda h: diffhw.max_throughput(h, d.model, d.workload, d.parallelism,
                                                     tpot_limit_s=0.05))(d.hardware)
    leaves = jax.tree_util.tree_leaves(top)
    assert leaves and all(isinstance(x, np.ndarray) for x in leaves)
    for p, q in zip(leaves, jax.tree_util.tree_leaves(inside), strict=True):
        np.testing.assert_allclose(p, np.asarray(q), rtol=1e-6)
    s = diffhw.serve(d.hardware, d.model, diffhw.traffic(2.0, 512, 64), d.parallelism)
    assert all(isinstance(x, np.ndarray) for x in jax.tree_util.tree_leaves(s))
    assert np.isfinite(s.tpot_mean_s) and bool(s.stable)


def test_packed_results_follow_each_input_shape():
    """A packed program traced again for new input shapes unpacks each call with the
    layout of its own shapes (`jax.jit` keeps both executables)."""
    f = _jit.filter_jit(packed=True)(lambda v: {"v": v * 2.0, "s": jnp.sum(v), "o": jnp.outer(v, v)})
    for n in (3, 5, 3, 5):
        v = jnp.arange(float(n))
        out = f(v)
        assert out["v"].shape == (n,) and out["o"].shape == (n, n)
        np.testing.assert_array_equal(out["v"], 2.0 * np.arange(n))
        np.testing.assert_array_equal(out["o"], np.outer(np.arange(n), np.arange(n)))
        assert float(out["s"]) == sum(range(n))
