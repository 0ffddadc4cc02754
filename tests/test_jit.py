"""diffhw's entry points compile with their own XLA options at the top level only (JAX
refuses compile options on a nested jit), so they must still work inside a user's
jit, grad and vmap."""

import jax
import jax.numpy as jnp
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
