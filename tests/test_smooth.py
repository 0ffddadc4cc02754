import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffhw import safe_div, safe_log, smooth_max, smooth_min, softplus


@pytest.mark.parametrize("a,b", [(1.0, 2.0), (3.0, 3.0), (1e-6, 5.0), (7.0, 1e-9)])
def test_smooth_max_bounds(a, b):
    tau = 0.05
    s = float(smooth_max(a, b, tau=tau))
    assert max(a, b) * (1 - 1e-12) <= s <= max(a, b) * 2**tau * (1 + 1e-12)
    m = float(smooth_min(a, b, tau=tau))
    assert min(a, b) * 2**-tau * (1 - 1e-12) <= m <= min(a, b) * (1 + 1e-12)


def test_smooth_max_tends_to_hard_max():
    errs = [abs(float(smooth_max(2.0, 3.0, 2.9, tau=t)) - 3.0) for t in (0.1, 0.03, 0.01, 0.001)]
    assert all(e2 < e1 for e1, e2 in itertools.pairwise(errs))
    assert errs[-1] < 1e-3


def test_smooth_max_is_unit_free():
    a, b = 0.0123, 0.0456
    assert float(smooth_max(a * 1e3, b * 1e3)) == pytest.approx(1e3 * float(smooth_max(a, b)), rel=1e-12)


def test_gradients_finite_at_ties_and_zero():
    g = jax.grad(lambda x: smooth_max(x, 2.0))(2.0)
    assert np.isfinite(g) and 0.4 < g < 0.6
    g0 = jax.grad(lambda x: smooth_max(x, 1.0))(0.0)
    assert np.isfinite(g0)
    for f in (safe_log, lambda x: safe_div(1.0, x), lambda x: softplus(x)):
        assert np.isfinite(jax.grad(f)(0.0))


def test_safe_functions_values():
    assert float(safe_div(1.0, 0.0)) == 0.0
    assert float(safe_div(6.0, 3.0)) == 2.0
    assert float(safe_log(jnp.e)) == pytest.approx(1.0)
    assert float(softplus(50.0)) == pytest.approx(50.0)
