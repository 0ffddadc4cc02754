"""All non-smooth maths of diffhw lives here.

Every other module composes times, bytes and margins through these helpers so that the
whole model stays differentiable. Smoothing is done in log space so that results do not
depend on units: ``smooth_max(a, b)`` of two times in seconds and of the same times in
milliseconds differ by exactly the factor 1000.

The ``exact_*`` helpers are hard (non-smooth) operations, used only for discrete choices
(shard counts, rounding of a relaxed batch) and for exact re-checks, never on times.
"""

import math

import jax
import jax.numpy as jnp
from jax.nn import softplus as _softplus

#: Default sharpness of :func:`smooth_max`/:func:`smooth_min`, as a temperature in log
#: space. With ``tau = 0.02`` two equal times are overestimated by ``2**0.02 - 1 = 1.4%``
#: and a time 10% below the other adds ``0.7%``; lower values approach the hard max.
DEFAULT_TAU = 0.02

_TINY = 1e-30
_LOG_TINY = math.log(_TINY)


def where(condition, x, y):
    """`jnp.where(condition, x, y)` for the model's float arrays, without the `jit`
    that wraps every `jnp.where` call: the model makes hundreds of them, and each nested
    `jit` costs tracing time under `grad`, `vmap` and `scan`. `x` and `y` promote as in
    `jnp.where` and broadcast with `condition`."""
    dtype = jnp.result_type(x, y)
    shape = jnp.broadcast_shapes(jnp.shape(condition), jnp.shape(x), jnp.shape(y))
    x, y = (jnp.broadcast_to(jnp.asarray(v, dtype), shape) for v in (x, y))
    return jax.lax.select(jnp.broadcast_to(condition, shape), x, y)


def _float(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


def safe_log(x):
    """``log(x)`` that is finite for ``x <= 0`` (in value and in gradient).

    Uses the double-``where`` trick so the gradient of the unused branch is never NaN.
    """
    x = _float(x)
    positive = x > _TINY
    return where(positive, jnp.log(where(positive, x, 1.0)), _LOG_TINY)


def safe_div(num, den):
    """``num / den`` with ``0`` where ``den == 0`` (value and gradient finite)."""
    den = _float(den)
    nonzero = den != 0
    return where(nonzero, num / where(nonzero, den, 1.0), 0.0)


def safe_sqrt(x):
    """``sqrt(x)`` with a finite gradient at ``x = 0`` and ``0`` for ``x < 0``."""
    x = _float(x)
    positive = x > 0
    return where(positive, jnp.sqrt(where(positive, x, 1.0)), 0.0)


def softplus(x, sharpness=1.0):
    """Smooth ReLU, ``log(1 + exp(sharpness * x)) / sharpness``.

    Tends to ``max(x, 0)`` as ``sharpness`` grows; ``x`` should be dimensionless.
    """
    return _softplus(sharpness * jnp.asarray(x)) / sharpness


def smooth_max(*xs, tau=DEFAULT_TAU):
    """Smooth maximum of positive quantities, in log space.

    ``smooth_max(t_1..t_n) = exp(tau * logsumexp(log(t_i) / tau))``.

    It is never below the hard maximum and at most ``n**tau`` times it; it tends to the
    hard maximum as ``tau -> 0``; ``tau = 0`` is the hard maximum itself (for exact
    re-checks of a relaxed design, never under `grad`). Inputs broadcast against each other. Zero inputs are
    treated as negligible (their log is clamped), so gradients stay finite at zero and at
    ties (where they split evenly).

    **Arguments:**

    - `*xs`: positive arrays of one unit (seconds, bytes, ...).
    - `tau`: temperature in log space (dimensionless); see `DEFAULT_TAU`.

    **Returns:** an array of the broadcast shape, in the unit of the inputs.
    """
    logs = jnp.stack(jnp.broadcast_arrays(*[safe_log(x) for x in xs]))
    if _is_exact(tau):
        return jnp.exp(jnp.max(logs, axis=0))
    return jnp.exp(tau * _logsumexp(logs / tau))


def smooth_min(*xs, tau=DEFAULT_TAU):
    """Smooth minimum of positive quantities: ``1 / smooth_max(1 / x_i)``.

    Never above the hard minimum and at least ``n**-tau`` times it.
    """
    logs = jnp.stack(jnp.broadcast_arrays(*[safe_log(x) for x in xs]))
    if _is_exact(tau):
        return jnp.exp(jnp.min(logs, axis=0))
    return jnp.exp(-tau * _logsumexp(-logs / tau))


def smooth_share(a, b, tau=DEFAULT_TAU):
    """The share of ``smooth_max(a, b)`` attributed to `a`: ``sigmoid((log a - log b) /
    tau)``; 1, 0.5 or 0 when ``tau == 0``."""
    la, lb = safe_log(a), safe_log(b)
    if _is_exact(tau):
        return jnp.where(la > lb, 1.0, jnp.where(la == lb, 0.5, 0.0))
    return jax.nn.sigmoid((la - lb) / tau)


def _is_exact(tau):
    """``tau == 0`` (a Python number): the exact, non-smooth re-check mode."""
    return isinstance(tau, (int, float)) and tau == 0


def _logsumexp(a):
    """``log(sum(exp(a), axis=0))``, shifted by the (constant) maximum for range. The
    inputs are finite (`safe_log` clamps), so this skips the infinity handling of
    `jax.scipy.special.logsumexp` (about a tenth of the traced program's operations)."""
    m = jax.lax.stop_gradient(jnp.max(a, axis=0))
    return m + jnp.log(jnp.sum(jnp.exp(a - m), axis=0))


def exact_max(a, b):
    """Hard maximum, for discrete structure (shard counts) and exact re-checks only."""
    return jnp.maximum(a, b)


def exact_min(a, b):
    """Hard minimum, for discrete structure and exact re-checks only."""
    return jnp.minimum(a, b)


def exact_clip(x, lo, hi):
    """Hard clip, for discrete structure and exact re-checks only."""
    return jnp.clip(x, lo, hi)
