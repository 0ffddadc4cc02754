"""Serving under load: a continuous-batching engine in steady state.

The model (per data-parallel replica; the system's rate splits evenly over replicas):

- The engine runs steps back to back. A step is one pass over every token it holds
  (`diffhw._timing._latency.mixed_chain`): one Decode token for each of the running
  sequences (``k + 1`` to verify with speculative decoding) and Prefill chunks of
  newly arrived prompts, within the profile's token budget ``B = max_batched_tokens``.
- Everything is a function of ``n``, the mean number of sequences decoding. A
  request decodes for ``m = (output - 1) / E`` steps (``E`` tokens per step), so by
  Little's law the rate per replica is ``lambda = n / (m tau)``, with ``tau`` the step
  time a request sees: the step of ``1 + n`` decoding sequences (itself and the others
  it finds, Poisson by PASTA) carrying ``n P / m`` Prefill tokens (the prompts of the
  other requests arriving meanwhile, ``P`` new prompt tokens each). `serve` finds the
  ``n`` of a given rate by bisection on ``log n`` (``lambda(n)`` increases in ``n``);
  `jax.lax.custom_root` differentiates through the root (implicit function theorem).
- TPOT: mean ``tau / E``. Its spread across requests comes from the number of other
  sequences (Poisson, one standard deviation ``sqrt(n)``, persistent over a request's
  life), from the Prefill tokens each step carries (compound Poisson per step, averaged
  over the ``m`` steps) and from the accepted tokens per step; percentiles from a
  lognormal of that mean and variance.
- Output-length spread (`Traffic.output_cv`, ``c``): the number of sequences decoding
  is Poisson whatever the length distribution (M/G/infinity insensitivity; Takacs 1962,
  Kleinrock, *Queueing Systems* I, 1975, §5.2), so ``n`` and Little's law stand; but a
  sequence in flight is sampled by length (the inspection paradox): it has decoded
  ``E[L^2] / (2 E[L]) = O (1 + c^2) / 2`` tokens on average, the context of the other
  decoders in every step and of the KV cache. A request decoding ``m_i`` steps averages
  its per-step noise (Prefill riding, accepted drafts) over ``m_i`` steps: across
  requests ``E[1 / m_i] = (1 + c_m^2) / m`` for lognormal lengths (``c_m`` the
  coefficient of variation of the Decode steps), capped at one step. The other
  decoders' count is a sum of sequences with random residual lives: its covariance at
  lag ``t`` is ``n P(residual > t)`` (M/G/infinity), approximated by
  ``n exp(-t / theta)`` with ``theta = m (1 + c_m^2) / 2`` the mean residual life, so
  its average over a request's ``m_i`` steps has variance ``n h(m_i / theta)``, ``h(x)
  = 2 (x - 1 + e^-x) / x^2`` (the variance of a time average; e.g. Papoulis,
  *Probability, Random Variables and Stochastic Processes*, the variance of an
  integral of a stationary process); the persistent term above is scaled by
  ``E[h(m_i / theta)] / h(2)`` (3-point Gauss-Hermite over lognormal ``m_i``), 1 at
  ``c = 0``: long residual lives make the batch a request sees more persistent.
- TTFT: the wait for the step in progress (``busy * tau / 2``), the queue of the Prefill
  lane and the request's own Prefill. The lane serves prompt tokens at ``(B - decode
  tokens) / tau_full`` (a step filled to the budget), so a prompt occupies it for
  ``S = P tau_full / (B - decode tokens)``; the wait is M/G/1 (Pollaczek-Khinchine,
  ``W = rho S (1 + cv^2) / (2 (1 - rho)))``, ``rho = lambda S``): Poisson arrivals and
  a FIFO lane are what vLLM's scheduler does with waiting prompts, and M/G/1 is the
  simplest model whose wait grows without bound as the lane saturates, smooth in every
  input. Its percentiles use the M/G/1 tail (waits with probability ``rho``, then about
  exponentially, mean ``W / rho``; Kingman's heavy-traffic limit), smoothed by a softplus;
  the own Prefill's percentiles follow the prompt-length spread (lognormal).
- Capacity: sequences in flight are capped by the KV cache (each at its mean length
  ``P + output / 2``, the shared context and cached prefix stored once; a draft model's
  weights and KV beside them), by the engine's cap on sequences per step (the traffic's
  `max_sequences` and the profile's `max_batch_size`, vLLM's ``max_num_seqs``, which
  `max_throughput` obeys too), and by the Prefill lane
  (``rho < 1``); past the cap the admission queue grows without bound: `Serving.stable`
  is False, TTFT is infinite and TPOT is that of the engine running at its cap
  (infinite too when the Prefill lane itself is saturated).
- Disaggregated: Decode steps carry no Prefill; a separate pool prefills (the same
  M/G/1 lane on its own hardware, budget and replicas) and ships each request's KV
  (``bytes / bandwidth + latency``) before the Decode pool emits its second token.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from .._economics import _energy
from .._economics._cost import Economics, chip_capex, operating_economics
from .._errors import InputError
from .._evaluation._evaluate import _anonymous, _checked, _is_traced, check_values
from .._hardware import _memory
from .._hardware._hardware import Hardware
from .._hardware._technology import Technology, YEAR_S
from .._jit import filter_jit
from .._timing._latency import _GL_W, _GL_X, StepTime, activation_bytes_per_chip, chain, mixed_chain
from .._workload._operators import kv_bytes_per_chip, shards_for, weight_bytes_per_chip
from .._workload._transformer import Transformer
from .._workload._workload import Parallelism, parallelism as _parallelism
from ._traffic import Disaggregation, Speculation, Traffic, check_traffic

Scalar = Float[Array, ""]

#: Standard normal quantiles of the reported percentiles (p50, p90, p99).
QUANTILES = (0.5, 0.9, 0.99)
_Z = (0.0, 1.2815515655446004, 2.3263478740408408)
#: Bisection steps on log n, from 1e-9 to the cap (a span of ~30 in log n): 60 in float64
#: (~3e-17 at the end), 32 in float32 (~7e-9, below float32's resolution of log n).
_ITERATIONS = {8: 60, 4: 32}
_N_LO = 1e-9


class Serving(eqx.Module):
    """`serve`'s answer (SI units; rates and counts for the whole system unless said).

    - `request_rate_per_s`: the rate served at (the given one, or the maximum under the
      limits when none was given).
    - `ttft_mean_s`, `ttft_p50_s`, `ttft_p90_s`, `ttft_p99_s`; `tpot_mean_s`, `tpot_p50_s`,
      `tpot_p90_s`, `tpot_p99_s`; `e2e_mean_s` (``ttft + (output - 1) tpot``).
    - `output_tokens_per_s`, `requests_per_s`: served (the rate, or the most the system
      sustains when overloaded).
    - `requests_in_flight`: requests in the system (Little's law: rate x e2e).
    - `decode_sequences`: mean sequences decoding per replica (``n``).
    - `step_time_s`: the step a decoding request sees; `tokens_per_step`: tokens each
      sequence gains per step (``E``); `prefill_tokens_per_step`: mean Prefill tokens a
      Decode step carries.
    - `kv_cache_occupancy`: share of the KV cache the decoding sequences hold;
      `kv_capacity_sequences`: sequences of mean length whose KV fits, per replica (< 1:
      the weights leave no room).
    - `utilization`: rate over `max_sustainable_rate_per_s` (the rate at the capacity cap).
    - `prefill_utilization`: ``rho`` of the Prefill lane (or pool); `decode_utilization`:
      rate over the most the Decode engine sustains at its sequence cap.
    - `max_request_rate_per_s`: the largest rate whose p99 TTFT and TPOT meet the limits
      (the sustainable maximum when there are none; 0 when even a lone request misses
      them, and then `at_max_rate` serves a vanishing rate: throughput ~0, latencies
      those of a lone request, economics of an idle system).
    - `stable`: the rate is below the sustainable maximum; `meets_slo`: stable and within
      the limits.
    - `transfer_s`: KV transfer time per request (disaggregated; 0 otherwise).
    - `balanced_prefill_chips`: Prefill chips that would make the Prefill pool as busy as
      the Decode pool at this rate, both measured against their capacity (the Decode
      pool's at its KV-cache cap, not at latency limits; disaggregated; 0 otherwise).
    - `decode`: `StepTime` breakdown of the step a request sees.
    - `chips`: chips in the system (both pools when disaggregated).
    - `economics`: `Economics` at this operating point (`Technology` given), else None;
      disaggregated, its system totals (power, capex, TCO, carbon, per-token figures)
      cover both pools and its per-chip figures are the Decode chip's;
      `prefill_economics` holds the Prefill pool's own.
    """

    request_rate_per_s: Scalar
    ttft_mean_s: Scalar
    ttft_p50_s: Scalar
    ttft_p90_s: Scalar
    ttft_p99_s: Scalar
    tpot_mean_s: Scalar
    tpot_p50_s: Scalar
    tpot_p90_s: Scalar
    tpot_p99_s: Scalar
    e2e_mean_s: Scalar
    output_tokens_per_s: Scalar
    requests_per_s: Scalar
    requests_in_flight: Scalar
    decode_sequences: Scalar
    step_time_s: Scalar
    tokens_per_step: Scalar
    prefill_tokens_per_step: Scalar
    kv_cache_occupancy: Scalar
    kv_capacity_sequences: Scalar
    utilization: Scalar
    prefill_utilization: Scalar
    decode_utilization: Scalar
    max_sustainable_rate_per_s: Scalar
    max_request_rate_per_s: Scalar
    stable: Array
    meets_slo: Array
    transfer_s: Scalar
    balanced_prefill_chips: Scalar
    decode: StepTime
    chips: Scalar
    economics: Economics | None = None
    prefill_economics: Economics | None = None


class _Point(eqx.Module):
    """Everything at one ``n`` (per replica unless said)."""

    rate: Scalar  # system requests/s
    tau: Scalar
    tpot: Array  # mean, p50, p90, p99
    ttft: Array
    rho: Scalar
    n_cap: Scalar
    n_kv: Scalar
    p_bar: Scalar
    transfer: Scalar
    step: StepTime
    decode_step_s: Scalar  # decode-only step at the mean busy batch
    decode_step_j: Scalar  # its dynamic energy, per replica
    prefill_j: Scalar  # dynamic energy of one request's Prefill
    prefill_busy_s: Scalar  # seconds one prompt occupies the Prefill lane
    draft_j: Scalar  # the draft's dynamic energy per step, per tensor-parallel rank and stage
    gain: Scalar  # tokens a sequence gains per step


def _lognormal(mean, cv2):
    """p50, p90, p99 of a lognormal with this mean and squared coefficient of variation."""
    s2 = jnp.log1p(cv2)
    s = _smooth.safe_sqrt(s2)
    return mean * jnp.exp(jnp.asarray(_Z, dtype=s2.dtype) * s - s2 / 2.0)


def _kv_capacity(hw, model, wl, par, length, draft=None):
    """Sequences per replica of `length` tokens whose KV fits beside the weights, the
    shared context and a full Prefill chunk's activations, in the tightest tier; with a
    `draft` model, its weights and its KV of each sequence (and shared context) too."""
    shards = shards_for(model, par.tp, par.ep)
    w = weight_bytes_per_chip(model, shards, par.pp, wl.weight_precision.bytes, wl.weight_precision.head_bytes)
    kv1 = kv_bytes_per_chip(model, shards, par.pp, 1.0, length, wl.kv_precision.bytes)
    ctx = kv_bytes_per_chip(model, shards, par.pp, 1.0, wl.shared_context_tokens, wl.kv_precision.bytes)
    if draft is not None:
        ds = shards_for(draft, par.tp, par.ep)
        w = w + weight_bytes_per_chip(draft, ds, par.pp, wl.weight_precision.bytes, wl.weight_precision.head_bytes)
        kv1 = kv1 + kv_bytes_per_chip(draft, ds, par.pp, 1.0, length, wl.kv_precision.bytes)
        ctx = ctx + kv_bytes_per_chip(draft, ds, par.pp, 1.0, wl.shared_context_tokens, wl.kv_precision.bytes)
    logits1 = model.vocab_size / (par.tp * par.pp) * 4.0
    chunk = activation_bytes_per_chip(hw, model, wl, par, 1e9) - logits1 * 1e9
    zero = jnp.zeros(())
    n = _memory.items_that_fit(hw, jnp.stack([w, zero, ctx, chunk]), jnp.stack([zero, kv1, zero, zero + logits1]))
    return n, kv1


def _in_flight_output(tr: Traffic):
    """Mean tokens a sequence in flight has decoded: ``O (1 + c^2) / 2``. A sequence found
    decoding is sampled by its length (``L f(L) / E[L]``, the inspection paradox) at a
    uniform point of its life, so ``E[L^2] / (2 E[L])`` (renewal theory's mean residual
    life; Kleinrock, *Queueing Systems* I, 1975, eq. 5.11). ``O / 2`` at ``c = 0``."""
    return tr.output_tokens * (1.0 + tr.output_cv**2) / 2.0


#: Probabilists' Gauss-Hermite nodes and weights (3 points: exact for polynomials of
#: degree 5 in a standard normal), for expectations over lognormal output lengths.
_GH_Z = (0.0, -math.sqrt(3.0), math.sqrt(3.0))
_GH_W = (2.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0)


def _time_average_var(x):
    """``h(x) = 2 (x - 1 + e^-x) / x^2``: variance of the average over a window ``x``
    correlation times long of a process with unit variance and correlation ``e^-|t|``
    (1 as ``x -> 0``, ``2 / x`` for large ``x``); `x` > 0. Below ``x = 0.1`` its
    Taylor series ``2 sum_j (-x)^j / (j + 2)!`` to ``j = 5`` (error < 1e-10; the closed
    form cancels there)."""
    small = x < 0.1
    xs = jnp.where(small, 1.0, x)  # double-where: no 0/0 in the branch not taken
    series = 1.0 + x * (-1.0 / 3.0 + x * (1.0 / 12.0 + x * (-1.0 / 60.0 + x * (1.0 / 360.0 - x / 2520.0))))
    return jnp.where(small, series, 2.0 * (xs + jnp.expm1(-xs)) / xs**2)


def _length_spread(cv_out2, m):
    """Factors by which the output-length spread widens a request's TPOT variance, both
    exactly 1 at ``cv_out2 = 0`` (see the module docstring):

    - per-step noise, averaged over a request's own ``m_i`` Decode steps:
      ``m E[1 / m_i] = 1 + c_m^2`` (lognormal: ``E[X^-1] = e^(s^2) / E[X]``), with
      ``c_m^2`` softly capped at ``m`` (a request has at least one step);
    - the other decoders' count, its variance ``n h(m_i / theta)`` averaged over
      requests, relative to ``h(2)`` (equal lengths: ``theta = m / 2``).

    **Arguments:** `cv_out2`: squared coefficient of variation of the Decode steps per
    request; `m`: their mean. **Returns:** (per-step factor, persistent factor)."""
    cvm2 = cv_out2 * m / (m + cv_out2)
    per_step = 1.0 + cvm2
    s2 = jnp.log1p(cv_out2)
    s = _smooth.safe_sqrt(s2)
    # m_i / theta at the nodes, then h(2) last: the nodes are exactly 2 at cv = 0, so
    # every difference below is 0 (one vector of 4, a few ops in the trace)
    z = jnp.asarray(_GH_Z + (0.0,), dtype=m.dtype)
    x = 2.0 * jnp.exp(z * s - s2 / 2.0) / (1.0 + cv_out2)
    h = _time_average_var(x.at[3].set(2.0))
    dh = jnp.dot(jnp.asarray(_GH_W, dtype=m.dtype), h[:3] - h[3])
    return per_step, 1.0 + dh / h[3]


def _n_cap(hw, model, tr: Traffic, par, spec):
    """Most sequences decoding per replica: the KV cache's room at the mean length, or the
    engine's cap: the traffic's `max_sequences` and the profile's `max_batch_size`."""
    n_kv, _ = _kv_capacity(hw, model, tr.workload(), par, tr.new_prompt_tokens + _in_flight_output(tr),
                           spec.draft if spec is not None else None)
    return _smooth.exact_min(n_kv, _engine_cap(hw, tr))


def _engine_cap(hw, tr: Traffic):
    """Most sequences the engine decodes in one step, per replica: the traffic's
    `max_sequences` and the profile's `max_batch_size` (exact: engine limits are hard)."""
    return _smooth.exact_min(tr.max_sequences, hw.profile.max_batch_size)


def _rows_time(hw, model, wl, par, rows, tau):
    """`mixed_chain` over rows ``(decode_seqs, decode_tokens, decode_ctx, prefill_tokens,
    prefill_seqs, prefill_ctx, prefill_rows)`` (one vmapped trace)."""
    return jax.vmap(lambda r: mixed_chain(hw, model, wl, par, r[1], r[0], r[2], r[3], r[4], r[5], tau, r[6]))(rows)


def _draft_time(hw, spec, wl, par, seqs, ctx, tau):
    """Time and dynamic-energy work of the draft's k proposals for `seqs` sequences."""
    k = spec.draft_tokens
    step, work = jax.vmap(lambda s, c: chain(hw, spec.draft, wl, par, s, s, c, True, tau))(seqs, ctx)
    return k * step.total_s, work, k


def _point(hw, model, tr: Traffic, par, spec, dis, tech, n, tau, finite=False):
    """Everything at ``n`` sequences decoding per replica. `finite`: past the Prefill
    lane's saturation (``rho >= 1``) keep TTFT finite and smooth (the queue's ``1 - rho``
    floored by a softplus), for searches that cross it on their way (`serve_at_load`)."""
    wl = tr.workload()
    P, O = tr.new_prompt_tokens, tr.output_tokens
    B = hw.profile.max_batched_tokens
    pp, dp = par.pp, par.dp
    cv2 = tr.input_cv**2
    if spec is not None:
        E, k = spec.tokens_per_step(), spec.draft_tokens
    else:
        E, k = jnp.ones(()), jnp.zeros(())
    m = (O - 1.0) / E
    agg = dis is None
    p_bar = n * P / m if agg else jnp.zeros(())  # Prefill tokens per step
    tag = 1.0 + n  # decoding sequences a tagged request sees
    ctx_avg = P + _in_flight_output(tr)
    ctx_pre = (P + 1.0) / 2.0
    c = _smooth.smooth_max(B - n * (k + 1.0), 1.0)  # Prefill budget per step
    chunks = _smooth.smooth_max(P / c, 1.0)
    var_p = p_bar * P * (1.0 + cv2)
    sig_p = _smooth.smooth_min(_smooth.safe_sqrt(var_p), c / 2.0) if agg else jnp.zeros(())
    n_busy = n / -jnp.expm1(-n)  # mean sequences in a busy Decode step
    one = jnp.ones(())

    # Steps carry Prefill tokens in chunks (a prompt's, up to the budget) or none: the mean
    # per step runs at a chunk's matrix efficiency
    chunk_rows = _smooth.smooth_min(P, c)

    # the request's own context over its life; the n others' in flight are length-biased
    ctx_q = P + jnp.asarray(_GL_X, dtype=P.dtype) * O + n / tag * (_in_flight_output(tr) - O / 2.0)
    # eight steps as columns of (decoding sequences, context, Prefill tokens): the four
    # quadrature points, the mean context, one more standard deviation of decoders, of
    # Prefill tokens, and a decode-only step at the mean busy batch
    dec = jnp.stack([tag, tag, tag, tag, tag, tag + _smooth.safe_sqrt(n), tag, n_busy])
    ctx = jnp.concatenate([ctx_q, jnp.broadcast_to(ctx_avg, (4,))])
    pre = jnp.stack([p_bar, p_bar, p_bar, p_bar, p_bar, p_bar, p_bar + sig_p, jnp.zeros_like(p_bar)])
    rows = jnp.stack([dec / pp, dec * (k + 1.0) / pp, ctx, pre / pp, pre / (pp * P),
                      jnp.broadcast_to(ctx_pre, (8,)), jnp.broadcast_to(chunk_rows, (8,))], axis=1)
    if agg:  # the own Prefill chunk and a step filled to the budget, with the decoders riding
        own = jnp.stack([n / pp, n * (k + 1.0) / pp, ctx_avg * one, P / chunks, 1.0 / chunks, ctx_pre * one,
                         P / chunks])
        full = jnp.stack([n / pp, n * (k + 1.0) / pp, ctx_avg * one, c, c / P, ctx_pre * one, c])
        alone = jnp.stack([0.0 * one, 0.0 * one, ctx_avg * one, P / chunks, 1.0 / chunks, ctx_pre * one,
                           P / chunks])
        rows = jnp.concatenate([rows, jnp.stack([own, full, alone])])
    steps, works = _rows_time(hw, model, wl, par, rows, tau)
    t = steps.total_s
    prec = wl.activation_precision
    dyn = jax.vmap(lambda w: _energy.dynamic_energy_j(hw, tech, w, prec))(works) if tech is not None else None
    draft_j = jnp.zeros(())
    if spec is not None:
        if spec.draft is not None:
            dt, dwork, kk = _draft_time(hw, spec, wl, par, rows[:8, 0], rows[:8, 2], tau)
            t = t.at[:8].add(dt)
            if tech is not None:
                draft_j = kk * _energy.dynamic_energy_j(hw, tech, jax.tree_util.tree_map(lambda a: a[7], dwork), prec)
        else:  # MTP heads: one layer of the model per proposed token
            t = t.at[:8].add(k * t[:8] / model.n_layers)
            if tech is not None:
                draft_j = k * dyn[7] / model.n_layers
    w_q = jnp.asarray(_GL_W, dtype=t.dtype)
    tau_req = jnp.dot(w_q, t[:4])
    step = jax.tree_util.tree_map(lambda a: jnp.tensordot(w_q, a[:4], axes=1), steps)
    rate_r = n / (m * tau_req)
    rate = rate_r * dp

    # TPOT spread: other decoders (persistent), Prefill riding (per step), accepted tokens
    sig_n = t[5] - t[4]
    sig_pt = (t[6] - t[4]) / _smooth.safe_sqrt(m)
    var_a = spec.tokens_variance() if spec is not None else jnp.zeros(())
    # output-length spread: in Decode steps, (O - 1) / E per request has cv c O / (O - 1)
    per_step, persistent = _length_spread((tr.output_cv * O / (O - 1.0)) ** 2, m)
    tpot_mean = tau_req / E
    cv2_tpot = (persistent * sig_n**2 + per_step * sig_pt**2) / tau_req**2 + per_step * var_a / (E**2 * m)
    tpot = jnp.concatenate([tpot_mean[None], _lognormal(tpot_mean, cv2_tpot)])

    # TTFT
    if agg:
        s_own = t[8] * (chunks + pp - 1.0) / pp
        s_tok = P * t[9] / c
        lam_lane = rate_r
        residual = -jnp.expm1(-(n + rate_r * s_own)) * t[4] / 2.0
        transfer = jnp.zeros(())
        prefill_j = dyn[10] * chunks * par.tp if tech is not None else jnp.zeros(())
        prefill_busy = s_tok
    else:
        hp, pw = dis.prefill_hardware, dis.prefill_parallelism
        Bp = hp.profile.max_batched_tokens
        chunks_p = _smooth.smooth_max(P / Bp, 1.0)
        zero = 0.0 * one
        prow = jnp.stack([jnp.stack([zero, zero, ctx_avg * one, P / chunks_p, 1.0 / chunks_p, ctx_pre * one,
                                     P / chunks_p]),
                          jnp.stack([zero, zero, ctx_avg * one, Bp * one, Bp / P, ctx_pre * one, Bp * one])])
        psteps, pworks = _rows_time(hp, model, wl, pw, prow, tau)
        pt = psteps.total_s
        s_own = pt[0] * (chunks_p + pw.pp - 1.0) / pw.pp
        s_tok = P * pt[1] / Bp
        lam_lane = rate / pw.dp
        residual = -jnp.expm1(-lam_lane * s_own) * pt[0] / 2.0
        kv_bytes = kv_bytes_per_chip(model, shards_for(model, 1.0, 1.0), 1.0, 1.0, P, wl.kv_precision.bytes)
        transfer = kv_bytes / dis.transfer_bandwidth_bytes_per_s + dis.transfer_latency_s
        prefill_j = (jax.vmap(lambda w: _energy.dynamic_energy_j(hp, tech, w, prec))(pworks)[0] * chunks_p * pw.tp
                     if tech is not None else jnp.zeros(()))
        prefill_busy = s_tok
    rho = lam_lane * s_tok
    if finite:
        stable_lane = jnp.ones((), dtype=bool)
        gap = _smooth.softplus(1.0 - rho, sharpness=50.0) + 1e-4
    else:
        stable_lane = rho < 1.0
        gap = jnp.where(stable_lane, 1.0 - rho, 1.0)
    wait_per = jnp.where(stable_lane, s_tok * (1.0 + cv2) / (2.0 * gap), jnp.inf)  # W / rho
    wait = rho * wait_per
    ttft_mean = residual + wait + s_own + transfer
    s2 = jnp.log1p(cv2)
    z = jnp.asarray(_Z, dtype=s2.dtype)  # the quantiles as one vector: a few ops in the trace
    own_q = s_own * jnp.exp(z * _smooth.safe_sqrt(s2) - s2 / 2.0)
    sharp = 4.0
    log_tail = jnp.asarray([math.log(1.0 - q) for q in QUANTILES], dtype=s2.dtype)
    tail = jax.nn.softplus(sharp * (_smooth.safe_log(rho) - log_tail)) / sharp
    wait_q = jnp.where(stable_lane, wait_per * tail, jnp.inf)
    ttft = jnp.concatenate([ttft_mean[None], residual + own_q + wait_q + transfer])

    n_kv, _ = _kv_capacity(hw, model, wl, par, ctx_avg, spec.draft if spec is not None else None)
    n_cap = _smooth.exact_min(n_kv, _engine_cap(hw, tr))  # as `_n_cap`
    return _Point(rate, tau_req, tpot, ttft, rho, n_cap, n_kv, p_bar, transfer, step, t[7],
                  dyn[7] if tech is not None else jnp.zeros(()), prefill_j, prefill_busy, draft_j, E)


def _limit_log(value, limit):
    """``log(value / limit)``, ``-inf`` with no limit (``limit`` infinite)."""
    no_limit = jnp.isinf(limit)
    return jnp.where(no_limit, -jnp.inf, _smooth.safe_log(value) - jnp.log(jnp.where(no_limit, 1.0, limit)))


def _roots(p: _Point, n, rate_target, ttft_limit, tpot_limit):
    """The three root functions at ``n``: stability boundary, the target rate, the limits."""
    h0 = jnp.maximum(_smooth.safe_log(p.rho), jnp.log(n) - jnp.log(p.n_cap))
    h1 = jnp.log(p.rate) - jnp.log(rate_target)
    h2 = jnp.maximum(h0, jnp.maximum(_limit_log(p.ttft[3], ttft_limit), _limit_log(p.tpot[3], tpot_limit)))
    return h0, h1, h2


def _nograd(tree):
    """`tree` with every array leaf cut from differentiation."""
    return jax.tree_util.tree_map(lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, tree)


def _solve(point_ng, point_g, u_hi, n_cap, rate_target, ttft_limit, tpot_limit, differentiable=True):
    """The three roots (``log n``) and the points at them and at the cap.

    Bisection on `point_ng` (built from inputs cut from differentiation, so no gradient
    is traced through the loop); then one forward tangent along ``log n`` at the roots
    and one differentiable evaluation of `point_g` at the roots and the cap. The root's
    dependence on the inputs enters as ``du = -(h - stop_gradient(h)) / h_u``: zero in
    value, ``-h_theta / h_u`` in gradient (the implicit function theorem), carried to
    every output by the tangent. A root not bracketed (no rate meets the limits) gets no
    such term. With `differentiable` False (concrete inputs: nothing can differentiate
    the result) the tangent is skipped."""
    sg = jax.lax.stop_gradient
    limits_ng = sg(rate_target), sg(ttft_limit), sg(tpot_limit)

    def diagonal(pts, u, limits):
        h = jax.vmap(_roots, in_axes=(0, 0, None, None, None))(pts, jnp.exp(u), *limits)
        return jnp.stack([h[0][0], h[1][1], h[2][2]])

    def f(u):
        return diagonal(jax.vmap(lambda n: point_ng(n, False))(jnp.exp(u)), u, limits_ng)

    lo = jnp.full_like(u_hi, math.log(_N_LO))

    def body(_, bracket):
        lo, hi = bracket
        mid = (lo + hi) / 2.0
        up = f(mid) <= 0.0  # the root lies above mid (every function increases in n)
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _ITERATIONS.get(jnp.dtype(u_hi.dtype).itemsize, 60), body, (lo, sg(u_hi)))
    u0 = (lo + hi) / 2.0
    if not differentiable:
        return u0, jax.vmap(lambda n: point_ng(n, True))(jnp.concatenate([jnp.exp(u0), n_cap[None]]))

    def along(u):
        pts = jax.vmap(lambda n: point_ng(n, True))(jnp.exp(u))
        return pts, diagonal(pts, u, limits_ng)

    (_, h0), (dpts, dh) = jax.jvp(along, (u0,), (jnp.ones_like(u0),))
    pts = jax.vmap(lambda n: point_g(n, True))(jnp.concatenate([jnp.exp(u0), n_cap[None]]))
    roots = jax.tree_util.tree_map(lambda a: a[:3], pts)
    h = diagonal(roots, u0, (rate_target, ttft_limit, tpot_limit))
    found = (jnp.abs(h0) < 1e-3) & (jnp.abs(dh) > 1e-30)
    du = jnp.where(found, -(h - sg(h)) / jnp.where(found, dh, 1.0), 0.0)

    def move(a, da):
        return a + da * du.reshape((3,) + (1,) * (a.ndim - 1))

    roots = jax.tree_util.tree_map(move, roots, dpts)
    pts = jax.tree_util.tree_map(lambda r, a: jnp.concatenate([r, a[3:]]), roots, pts)
    return u0 + du, pts


def _serve_impl(hw, model, tr, par, spec, dis, tech, ttft_limit, tpot_limit, at_max_rate, tau, traced,
                differentiable=None, capex=None):
    """`serve` inside a trace: `traced` adds the value checks; `differentiable` (default:
    `traced`) carries the roots' implicit gradients (`_solve`); `capex`: the chip's
    `chip_capex` at `tau` when the caller has it already (None: computed here)."""
    if traced:
        hw = _checked(hw, tr.workload(), par, tech)

    inputs = hw, model, tr, par, spec, dis, tech
    inputs_ng = _nograd(inputs)

    def point_g(n, with_tech):
        h, m, t, p_, s_, d_, te = inputs
        return _point(h, m, t, p_, s_, d_, te if with_tech else None, n, tau)

    def point_ng(n, with_tech):
        h, m, t, p_, s_, d_, te = inputs_ng
        return _point(h, m, t, p_, s_, d_, te if with_tech else None, n, tau)

    # the cap on n does not depend on n
    n_cap = _n_cap(hw, model, tr, par, spec)
    u_hi = jnp.full((3,), jnp.log(jnp.maximum(n_cap, 2.0 * _N_LO)))
    rate_target = tr.request_rate_per_s
    u, pts = _solve(point_ng, point_g, u_hi, n_cap, rate_target, ttft_limit, tpot_limit,
                    differentiable=traced if differentiable is None else differentiable)
    n3 = jnp.exp(u)
    # pts: the three roots and the cap (the Decode engine's own capacity)
    decode_capacity = pts.rate[3]
    sat = jax.tree_util.tree_map(lambda a: a[0], pts)
    lim = jax.tree_util.tree_map(lambda a: a[2], pts)
    max_sustainable = sat.rate
    # 1e-4 in log: float32 bisection lands within ~1e-7 of the limit, on either side
    feasible_limits = _roots(lim, n3[2], rate_target, ttft_limit, tpot_limit)[2] <= 1e-4
    max_rate = jnp.where(feasible_limits, lim.rate, 0.0)
    i = 2 if at_max_rate else 1
    p = jax.tree_util.tree_map(lambda a: a[i], pts)
    n = n3[i]
    rate = lim.rate if at_max_rate else rate_target
    # at the max rate with limits no rate meets, the point is a vanishing rate (stable,
    # serving ~nothing, latencies those of a lone request, which miss the limits)
    stable = (rate < max_sustainable * (1.0 + 1e-6)) & (p.rho < 1.0)
    served = jnp.where(stable, rate, max_sustainable)
    inf = jnp.inf
    ttft = jnp.where(stable, p.ttft, inf)
    tpot = jnp.where(stable, p.tpot, jnp.where(p.rho < 1.0, p.tpot, inf))
    tol = 1.0 + 1e-4
    meets = stable & (ttft[3] <= ttft_limit * tol) & (tpot[3] <= tpot_limit * tol)
    O = tr.output_tokens
    e2e = ttft[0] + (O - 1.0) * tpot[0]
    kv_occ = n / p.n_kv
    chips_d = par.chips
    decode_util = served / decode_capacity
    if dis is None:
        chips = chips_d
        balanced = jnp.zeros(())
    else:
        chips = chips_d + dis.prefill_parallelism.chips
        balanced = dis.prefill_parallelism.chips * p.rho / _smooth.exact_max(decode_util, 1e-12)
    econ = pecon = None
    if tech is not None:
        econ, pecon = _economics(hw, tech, tr, par, dis, p, n, served, tau, capex)
    return Serving(
        request_rate_per_s=rate, ttft_mean_s=ttft[0], ttft_p50_s=ttft[1], ttft_p90_s=ttft[2], ttft_p99_s=ttft[3],
        tpot_mean_s=tpot[0], tpot_p50_s=tpot[1], tpot_p90_s=tpot[2], tpot_p99_s=tpot[3], e2e_mean_s=e2e,
        output_tokens_per_s=served * O, requests_per_s=served, requests_in_flight=served * e2e,
        decode_sequences=n, step_time_s=p.tau, tokens_per_step=(spec.tokens_per_step() if spec is not None
                                                                 else jnp.ones(())),
        prefill_tokens_per_step=p.p_bar, kv_cache_occupancy=kv_occ, kv_capacity_sequences=p.n_kv, utilization=rate / max_sustainable,
        prefill_utilization=p.rho, decode_utilization=decode_util, max_sustainable_rate_per_s=max_sustainable,
        max_request_rate_per_s=max_rate, stable=stable, meets_slo=meets, transfer_s=p.transfer,
        balanced_prefill_chips=balanced, decode=p.step, chips=chips, economics=econ, prefill_economics=pecon,
    )


class AtLoad(eqx.Module):
    """`serve_at_load`'s answer: the operating point of ``n`` sequences decoding per
    replica (SI units, whole system): `request_rate_per_s` (Little's law), TTFT and TPOT
    mean and p99, `output_tokens_per_s`, `requests_in_flight`, `utilization` (the larger
    of the Prefill lane's ``rho`` and ``n`` over the sequence cap: >= 1 cannot be
    sustained), `economics` (with a technology)."""

    request_rate_per_s: Scalar
    ttft_mean_s: Scalar
    ttft_p99_s: Scalar
    tpot_mean_s: Scalar
    tpot_p99_s: Scalar
    output_tokens_per_s: Scalar
    requests_in_flight: Scalar
    utilization: Scalar
    economics: Economics | None = None
    prefill_economics: Economics | None = None


def serve_at_load(hw, model, tr: Traffic, par, sequences, technology=None, tau=_smooth.DEFAULT_TAU,
                  disaggregation: Disaggregation | None = None, speculation: Speculation | None = None) -> AtLoad:
    """The serving model explicit in the load: `sequences` decoding per replica instead of
    a request rate, so no root is solved (one point: as cheap as a few `evaluate` steps).
    For sizing: minimising cost at this point under p99 limits and ``utilization < 1``
    drives the load to the largest rate the limits allow, the answer `serve` finds by
    bisection. Finite and smooth everywhere (TTFT past the Prefill lane's saturation is
    kept finite), jit-safe, no value checks: the caller checks. With `disaggregation`
    the Prefill lane is its pool (`utilization` its ``rho``), the economics cover both
    pools and `prefill_economics` holds the Prefill pool's own. With `speculation` each
    Decode step verifies the drafted tokens (`serve`'s model)."""
    return _at_load(hw, model, tr, par, sequences, technology, tau, disaggregation, speculation)


def _at_load(hw, model, tr, par, sequences, technology, tau, disaggregation, speculation, capex=None):
    """`serve_at_load`; `capex` as in `_serve_impl`."""
    p = _point(hw, model, tr, par, speculation, disaggregation, technology, sequences, tau, finite=True)
    util = _smooth.smooth_max(p.rho, sequences / _smooth.exact_max(p.n_cap, 1e-9))
    O = tr.output_tokens
    e2e = p.ttft[0] + (O - 1.0) * p.tpot[0]
    econ = pecon = None
    if technology is not None:
        econ, pecon = _economics(hw, technology, tr, par, disaggregation, p, sequences, p.rate, tau, capex)
    return AtLoad(p.rate, p.ttft[0], p.ttft[3], p.tpot[0], p.tpot[3], p.rate * O, p.rate * e2e, util, econ, pecon)


def _economics(hw, tech, tr, par, dis, p: _Point, n, served, tau, capex_d=None):
    """Economics at the operating point: static power all the time, dynamic energy at the
    rate work arrives (Decode steps of the mean busy batch, each request's Prefill);
    `capex_d`: the (Decode) chip's `chip_capex`, None: computed here."""
    O = tr.output_tokens
    tokens = served * O
    rate_r = served / par.dp
    n_busy = n / -jnp.expm1(-n)
    per_replica = par.tp * par.pp
    # Decode steps per second: tokens / (sequences per step x tokens each gains)
    steps_per_s = rate_r * (O - 1.0) / (n_busy * p.gain)
    capex_d = chip_capex(hw, tech, tau) if capex_d is None else capex_d
    dec_w = (p.decode_step_j + p.draft_j) * per_replica * steps_per_s  # W per replica
    pre_w = rate_r * p.prefill_j
    decode_tok = ((p.decode_step_j + p.draft_j) * per_replica + capex_d.static_power_w * per_replica
                  * p.decode_step_s) / (n_busy * p.gain)
    if dis is None:
        avg_chip = capex_d.static_power_w + (dec_w + pre_w) / per_replica
        per_token = avg_chip * par.chips / tokens
        prefill_e = p.prefill_j + capex_d.static_power_w * per_replica * p.prefill_busy_s
        econ = operating_economics(hw, tech, par.chips, capex_d, avg_chip, per_token, decode_tok, prefill_e, tokens)
        return econ, None
    hp, pw = dis.prefill_hardware, dis.prefill_parallelism
    capex_p = chip_capex(hp, tech, tau)
    avg_d = capex_d.static_power_w + dec_w / per_replica
    pre_rate_r = served / pw.dp
    avg_p = capex_p.static_power_w + pre_rate_r * p.prefill_j / (pw.tp * pw.pp)
    total_w = avg_d * par.chips + avg_p * pw.chips
    per_token = total_w / tokens
    prefill_e = p.prefill_j + capex_p.static_power_w * pw.tp * pw.pp * p.prefill_busy_s
    ed = operating_economics(hw, tech, par.chips, capex_d, avg_d, per_token, decode_tok, prefill_e, tokens)
    ep = operating_economics(hp, tech, pw.chips, capex_p, avg_p, per_token, decode_tok, prefill_e, tokens)
    return _combined(ed, ep, tokens), ep


def _combined(d: Economics, p: Economics, tokens_per_s) -> Economics:
    """System totals of two pools (sums of power, capex, TCO, carbon; ratios redone)."""
    tokens_year = tokens_per_s * YEAR_S
    tco = d.tco_usd_per_year + p.tco_usd_per_year
    facility = d.facility_power_w + p.facility_power_w
    embodied = d.embodied_kgco2e + p.embodied_kgco2e
    carbon_year = (d.kgco2e_per_million_tokens + p.kgco2e_per_million_tokens) * tokens_year / 1e6
    return eqx.tree_at(
        lambda e: (e.system_average_power_w, e.facility_power_w, e.system_capex_usd, e.facility_capex_usd,
                   e.tco_usd_per_year, e.usd_per_million_tokens, e.embodied_kgco2e, e.operational_kgco2e_per_year,
                   e.kgco2e_per_million_tokens, e.tokens_per_s_per_watt, e.tokens_per_s_per_usd, e.tokens_per_kgco2e),
        d,
        (d.system_average_power_w + p.system_average_power_w, facility, d.system_capex_usd + p.system_capex_usd,
         d.facility_capex_usd + p.facility_capex_usd, tco, tco / tokens_year * 1e6, embodied,
         d.operational_kgco2e_per_year + p.operational_kgco2e_per_year, carbon_year / tokens_year * 1e6,
         tokens_per_s / facility, tokens_per_s / tco, tokens_year / carbon_year),
    )


@filter_jit(packed=True)  # NumPy results at the top level (`diffhw._jit`)
@eqx.debug.assert_max_traces(max_traces=None)
def _serve_jit(hw, model, tr, par, spec, dis, tech, ttft_limit, tpot_limit, at_max_rate, tau, traced):
    return _serve_impl(hw, model, tr, par, spec, dis, tech, ttft_limit, tpot_limit, at_max_rate, tau, traced)


def _host_checks(hw, model, tr, par, spec, dis, tech):
    check_traffic(tr)
    check_values(hw, tr.workload(), par, tech)
    if dis is not None:
        check_values(dis.prefill_hardware, tr.workload(), dis.prefill_parallelism, None)
    if spec is not None:
        k, a = float(spec.draft_tokens), float(spec.acceptance)
        if not (math.isfinite(k) and k >= 0):
            raise InputError("draft_tokens", k, ">= 0 and finite")
        if not 0.0 <= a <= 1.0:
            raise InputError("acceptance", a, "in [0, 1]")


def serve(
    hardware: Hardware,
    model: Transformer,
    traffic: Traffic,
    parallelism: Parallelism | None = None,
    *,
    ttft_limit_s=math.inf,
    tpot_limit_s=math.inf,
    at_max_rate: bool = False,
    speculation: Speculation | None = None,
    disaggregation: Disaggregation | None = None,
    tau: float = _smooth.DEFAULT_TAU,
    technology: Technology | None = None,
) -> Serving:
    """Serve `traffic` on a continuous-batching engine in steady state (see the module
    docstring for the model): TTFT and TPOT means and percentiles, throughput, requests
    in flight, KV occupancy, utilisation, the maximum request rate under p99 limits and,
    with `technology`, energy, power, $/Mtoken and carbon at that operating point.

    Differentiable with `jax.grad` in every float leaf of the hardware, model widths,
    traffic (the rate included), speculation and disaggregation.

    **Arguments:**

    - `hardware`, `model`, `parallelism`: as in `evaluate` (`parallelism` defaults to one
      chip); with `disaggregation` they are the Decode pool.
    - `traffic`: a `Traffic` (`diffhw.traffic`).
    - `ttft_limit_s`, `tpot_limit_s`: limits on p99 TTFT and TPOT (``inf``: none), e.g.
      MLPerf Server for Llama-2-70B: 2 s and 0.2 s; Interactive: 0.45 s and 0.04 s.
    - `at_max_rate`: serve at the largest rate meeting the limits (and the capacity
      cap), ignoring the traffic's rate.
    - `speculation`: a `Speculation` (`diffhw.speculative`), or None.
    - `disaggregation`: a `Disaggregation` (`diffhw.disaggregated`), or None.
    - `tau`, `technology`: as in `evaluate`.

    **Returns:** a `Serving`.
    """
    return _serve_jit(*_serve_args(hardware, model, traffic, parallelism, ttft_limit_s, tpot_limit_s, at_max_rate,
                                   speculation, disaggregation, tau, technology))


def prepare_serve(hardware, model, traffic, parallelism=None, *, ttft_limit_s=math.inf, tpot_limit_s=math.inf,
                  at_max_rate=False, speculation=None, disaggregation=None, tau=_smooth.DEFAULT_TAU,
                  technology=None) -> None:
    """Start compiling `serve`'s program for this structure in the background (while
    the program cache is on: the command line); the arguments as in `serve`."""
    _serve_jit.prepare(*_serve_args(hardware, model, traffic, parallelism, ttft_limit_s, tpot_limit_s, at_max_rate,
                                    speculation, disaggregation, tau, technology, check=False))


def _serve_args(hardware, model, traffic, parallelism, ttft_limit_s, tpot_limit_s, at_max_rate, speculation,
                disaggregation, tau, technology, check=True):
    par = parallelism if parallelism is not None else _parallelism()
    hardware, model, technology = _anonymous(hardware, model, technology)
    if speculation is not None and speculation.draft is not None:
        speculation = eqx.tree_at(lambda s: s.draft, speculation, _anonymous(hardware, speculation.draft)[1])
    if disaggregation is not None:
        ph = _anonymous(disaggregation.prefill_hardware, model)[0]
        disaggregation = eqx.tree_at(lambda d: d.prefill_hardware, disaggregation, ph)
    limits = jnp.asarray(ttft_limit_s, dtype=float), jnp.asarray(tpot_limit_s, dtype=float)
    traced = _is_traced(hardware, traffic, par, speculation, disaggregation, technology, limits)
    if not traced and check:
        _host_checks(hardware, model, traffic, par, speculation, disaggregation, technology)
        for name, v in zip(("ttft_limit_s", "tpot_limit_s"), limits):
            if not float(v) > 0:
                raise InputError(name, float(v), "> 0 (inf for no limit)")
    return hardware, model, traffic, par, speculation, disaggregation, technology, *limits, bool(at_max_rate), tau, traced


def max_request_rate(hardware, model, traffic, parallelism=None, *, ttft_limit_s=math.inf, tpot_limit_s=math.inf,
                     **kwargs) -> Scalar:
    """The largest request rate (requests/s, whole system) whose p99 TTFT and TPOT meet the
    limits and that the system sustains (0 if even a vanishing rate misses them).
    Differentiable (implicit function theorem at the binding limit). Keyword arguments as
    in `serve`."""
    return serve(hardware, model, traffic, parallelism, ttft_limit_s=ttft_limit_s, tpot_limit_s=tpot_limit_s,
                 at_max_rate=True, **kwargs).max_request_rate_per_s
