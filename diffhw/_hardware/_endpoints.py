"""What a collective step pays at its endpoints: landing a message in on-chip SRAM or
in DRAM, and waiting for the slowest of its participants (stragglers, timeouts), in
seconds. Pure functions of float arrays, smooth in every input.

**Sources.** H. A. David and H. N. Nagaraja, "Order Statistics", 3rd ed., 2003 (maximum
of exponentials); J. Dean and L. A. Barroso, "The tail at scale", CACM 56(2), 2013
(stragglers). Motivation: X. Ma and D. Patterson, arXiv 2601.05047, section 4 and claim 9
(landing small packets in SRAM).
"""

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma

from .._smooth import safe_log, smooth_min
from ._topology import check_choice


def _f(x):
    return jnp.asarray(x, dtype=float)


#: Straggler tail distributions.
DISTRIBUTIONS = ("exponential",)


# Gauss-Legendre nodes and weights on [0, 1] for the straggler-timeout integral. 16 nodes
# keep it within 5e-7 (relative) of the closed form for n up to 1e5 participants and any
# timeout (12 nodes: 2e-5).
_GL_NODES = 16
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_NODES)
_GL_X = (_GL_X + 1.0) / 2.0
_GL_W = _GL_W / 2.0

_EULER_GAMMA = float(np.euler_gamma)


def landing_latency_s(
    message_bytes,
    in_sram,
    sram_latency_s,
    dram_latency_s,
    sram_bw_bytes_per_s=None,
    dram_bw_bytes_per_s=None,
):
    """Latency of landing one received message in on-chip SRAM or in DRAM, in seconds.

    ``t = s (l_sram + M/B_sram) + (1 - s) (l_dram + M/B_dram)`` with ``s`` = `in_sram`, the
    continuous fraction of messages (or probability a message) that lands in SRAM; the
    bandwidth terms are left out when the bandwidths are not given. Ma & Patterson
    (section 4) propose landing small packets in SRAM, next to the network port, to cut
    this per-message cost.

    A collective pays one landing per message step: pass
    ``message_latency_s = base + landing_latency_s(...)`` to the collectives here, which
    multiply it by their number of steps.

    **Arguments:**

    - `message_bytes`: bytes of one message (bytes).
    - `in_sram`: fraction in ``[0, 1]`` (dimensionless).
    - `sram_latency_s`, `dram_latency_s`: write latency of each tier (s).
    - `sram_bw_bytes_per_s`, `dram_bw_bytes_per_s`: optional write bandwidths (bytes/s).

    **Returns:** time (s), shaped like the broadcast inputs.
    """
    m, s = _f(message_bytes), _f(in_sram)
    sram = _f(sram_latency_s) + jnp.zeros_like(m)
    dram = _f(dram_latency_s) + jnp.zeros_like(m)
    if sram_bw_bytes_per_s is not None:
        sram = sram + m / _f(sram_bw_bytes_per_s)
    if dram_bw_bytes_per_s is not None:
        dram = dram + m / _f(dram_bw_bytes_per_s)
    return s * sram + (1.0 - s) * dram


def harmonic_number(n):
    """Continuous harmonic number ``H_n = digamma(n + 1) + gamma`` (Euler's constant).

    Exact at every integer (``H_1 = 1``, ``H_2 = 1.5``) and smooth in between; for large
    ``n``, ``H_n ~ ln n + 0.5772 + 1/(2n)``.

    **Arguments:** `n` (dimensionless, ``> -1``).

    **Returns:** ``H_n`` (dimensionless).
    """
    return digamma(_f(n) + 1.0) + _EULER_GAMMA


def expected_max_of_n(n, mean_s, tail_scale_s, distribution="exponential"):
    """Expected time of the slowest of `n` participants (a collective waits for it).

    Each participant takes ``mean_s + X`` with ``X ~ Exponential(tail_scale_s)``
    independent, so ``E[max] = mean_s + tail_scale_s * H_n`` (Rényi's representation of
    exponential order statistics; David & Nagaraja 2003), with the continuous harmonic
    number :func:`harmonic_number`. It grows like ``ln n`` (Dean & Barroso 2013).

    **Arguments:**

    - `n`: participants (dimensionless, continuous, ``>= 1``).
    - `mean_s`: the deterministic part of each participant's time (s); a participant's
      own mean is ``mean_s + tail_scale_s``.
    - `tail_scale_s`: mean of the exponential tail (s).
    - `distribution`: one of `DISTRIBUTIONS` (static; only ``"exponential"`` so far).

    **Returns:** expected time (s).
    """
    check_choice("distribution", distribution, DISTRIBUTIONS)
    return _f(mean_s) + _f(tail_scale_s) * harmonic_number(n)


def _survival_of_max(t, n, scale):
    """``1 - F(t)`` for the max of ``n`` exponentials: ``1 - (1 - exp(-t/scale))**n``."""
    log_cdf_one = safe_log(-jnp.expm1(-t / scale))
    return -jnp.expm1(n * log_cdf_one)


def _gl_integral(f, lo, hi):
    """``integral_lo^hi f(x) dx`` with the fixed Gauss-Legendre rule (batched)."""
    x = jnp.asarray(_GL_X, dtype=lo.dtype)
    w = jnp.asarray(_GL_W, dtype=lo.dtype)
    width = (hi - lo)[..., None]
    return jnp.sum(w * f(lo[..., None] + width * x), axis=-1) * width[..., 0]


def timeout_time(n, mean_s, tail_scale_s, timeout_s):
    """Expected time of a collective that waits for stragglers at most until `timeout_s`
    (then goes on with stale or stand-in data), and how often it times out.

    With ``M`` the slowest of `n` participants as in :func:`expected_max_of_n`,
    ``F(t) = (1 - exp(-(t - mean_s)/scale))**n`` its CDF for ``t >= mean_s`` and
    ``U = timeout_s - mean_s``:

    ``E[min(M, T)] = mean_s + integral_0^U (1 - F(mean_s + u)) du`` and
    ``P(M > T) = 1 - F(T)``.

    For ``U <= 0`` every step times out: ``E = timeout_s``, fraction 1. The integral is
    split at ``c = smooth_min(U, scale ln n)``, near the typical maximum: ``[0, c]`` is
    integrated in ``u`` and ``[c, U]`` in ``v = exp(-(u - c)/scale)``, where the
    integrand is a smooth bounded function on ``(0, 1]``, so a fixed 16-node
    Gauss-Legendre rule on each part stays within ``5e-7`` (relative) for any timeout and
    ``n`` up to ``1e5``, and smooth in every input. As ``timeout_s -> inf`` it
    tends to :func:`expected_max_of_n`; its derivative in ``timeout_s`` is the timeout
    fraction. (For integer ``n`` the integral is ``scale * sum_k Y**k/k`` with
    ``Y = 1 - exp(-U/scale)``.)

    **Arguments:**

    - `n`: participants (dimensionless, continuous, ``>= 1``).
    - `mean_s`: deterministic part of each participant's time (s).
    - `tail_scale_s`: mean of the exponential tail (s, ``>= 0``; at 0 every participant
      arrives at `mean_s`: ``min(mean_s, timeout_s)``, fraction 0 or 1).
    - `timeout_s`: the deadline, measured like `mean_s` from the step's start (s).

    **Returns:** ``(expected_s, timeout_fraction)``: expected time (s) and the fraction of
    steps that hit the timeout, in ``[0, 1]``.
    """
    n, mean, scale, timeout = jnp.broadcast_arrays(_f(n), _f(mean_s), _f(tail_scale_s), _f(timeout_s))
    u = timeout - mean
    late = u > 0.0
    # No tail (scale 0, e.g. a hardware file's ``straggler_scale_us = 0``): everyone
    # arrives at `mean_s`. The double where keeps the quadrature's gradients finite there.
    raw_scale = scale
    tail_on = scale > 0.0
    scale = jnp.where(tail_on, scale, 1.0)
    u_pos = jnp.where(late, u, 1.0)
    split = smooth_min(u_pos, scale * safe_log(n))
    head = _gl_integral(lambda t: _survival_of_max(t, n[..., None], scale[..., None]), 0.0 * split, split)
    # In v = exp(-(t - c)/scale): dt = -scale dv / v.
    v_lo = jnp.exp(-(u_pos - split) / scale)

    def tail_integrand(v):
        t = split[..., None] - scale[..., None] * jnp.log(v)
        return _survival_of_max(t, n[..., None], scale[..., None]) / v

    tail = scale * _gl_integral(tail_integrand, v_lo, jnp.ones_like(v_lo))
    # At scale 0 the wait is 0 with the right derivative in the scale, H_n (the limit of
    # scale * H_n while the timeout is many scales away).
    wait = jnp.where(tail_on, head + tail, raw_scale * harmonic_number(n))
    expected = jnp.where(late, mean + wait, timeout)
    fraction = jnp.where(late, jnp.where(tail_on, _survival_of_max(u_pos, n, scale), 0.0), 1.0)
    return expected, fraction
