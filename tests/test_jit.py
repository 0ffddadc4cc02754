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
