"""What a serving system is asked to do: a stream of requests (`Traffic`), optional
speculative decoding (`Speculation`) and an optional separate Prefill pool
(`Disaggregation`)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from .._errors import InputError, check_positive
from .._hardware._hardware import Hardware
from .._workload._precision import Precision
from .._workload._transformer import Transformer
from .._workload._workload import Parallelism, Workload, check_routing_skew, precisions

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


class Traffic(eqx.Module):
    """A stream of requests served by a continuous-batching engine. Float leaves, so
    every output is differentiable in them (the rate included).

    - `request_rate_per_s`: mean arrival rate of the whole system (Poisson arrivals).
    - `input_tokens`, `output_tokens`: mean prompt and output lengths per request.
    - `input_cv`: coefficient of variation of prompt lengths (0: all equal; 1: about
      exponential), which widens the TTFT percentiles and the Prefill queue.
    - `prefix_hit`: fraction of each prompt found in the prefix cache, in [0, 1): its
      Prefill is skipped, its KV is not written again and is stored once (as a shared
      prefix that every request attends to).
    - `shared_context_tokens`: a read-only context every request attends to, stored once.
    - `weight_precision`, `activation_precision`, `kv_precision`: `Precision`s.
    - `max_sequences`: a cap on sequences decoding at once per replica beside the
      profile's engine limit (`Profile.max_batch_size`: vLLM's ``max_num_seqs``,
      TensorRT-LLM's ``max_batch_size``), the smaller binding; ``inf``: the profile's
      limit, memory and the token budget set the cap. The per-step token budget is the profile's
      ``max_batched_tokens`` (vLLM's ``max_num_batched_tokens``).
    - `routing_skew`: MoE routing skew (`Workload.routing_skew`; 0: uniform).
    - `output_cv`: coefficient of variation of output lengths (0: all equal, the mean;
      1: about exponential). The sequences in flight are then length-biased (longer
      contexts in every Decode step and in the KV cache) and short requests average
      their TPOT over few steps, which widens the TPOT percentiles (see `diffhw.serve`).
    """

    request_rate_per_s: Scalar = eqx.field(converter=_f)
    input_tokens: Scalar = eqx.field(converter=_f)
    output_tokens: Scalar = eqx.field(converter=_f)
    weight_precision: Precision
    activation_precision: Precision
    kv_precision: Precision
    input_cv: Scalar = eqx.field(converter=_f, default=0.0)
    prefix_hit: Scalar = eqx.field(converter=_f, default=0.0)
    shared_context_tokens: Scalar = eqx.field(converter=_f, default=0.0)
    max_sequences: Scalar = eqx.field(converter=_f, default=math.inf)
    routing_skew: Scalar = eqx.field(converter=_f, default=0.0)
    output_cv: Scalar = eqx.field(converter=_f, default=0.0)

    @property
    def new_prompt_tokens(self):
        """Prompt tokens each request must prefill: those not found in the prefix cache."""
        return (1.0 - self.prefix_hit) * self.input_tokens

    def workload(self) -> Workload:
        """The `Workload` of one request (batch 1) with the cached prefix as shared context."""
        shared = self.shared_context_tokens + self.prefix_hit * self.input_tokens
        return Workload(1.0, self.new_prompt_tokens, self.output_tokens, self.weight_precision,
                        self.activation_precision, self.kv_precision, shared, self.routing_skew)


def _concrete(x):
    return not isinstance(x, jax.core.Tracer)


def check_traffic(t: Traffic) -> None:
    """The value checks of `Traffic` (concrete values): one `InputError` naming the field."""
    check_routing_skew(t.routing_skew)
    check_positive("request_rate_per_s", t.request_rate_per_s)
    check_positive("input_tokens", t.input_tokens)
    if _concrete(t.output_tokens) and not float(t.output_tokens) >= 2:
        raise InputError("output_tokens", float(t.output_tokens),
                         ">= 2 (the first token comes from Prefill; serving under load needs a Decode phase)")
    check_positive("input_cv", t.input_cv, allow_zero=True)
    if _concrete(t.output_cv) and not (math.isfinite(float(t.output_cv)) and 0.0 <= float(t.output_cv) <= 100.0):
        raise InputError("output_cv", float(t.output_cv), "between 0 and 100 (coefficient of variation of output lengths)")
    check_positive("shared_context_tokens", t.shared_context_tokens, allow_zero=True)
    if _concrete(t.prefix_hit) and not 0.0 <= float(t.prefix_hit) < 1.0:
        raise InputError("prefix_hit", float(t.prefix_hit), "in [0, 1) (a fraction of each prompt)")
    if _concrete(t.max_sequences) and not float(t.max_sequences) >= 1.0:
        raise InputError("max_sequences", float(t.max_sequences), ">= 1 (inf for no cap)")


def traffic(
    request_rate_per_s=1.0,
    input_tokens=2048,
    output_tokens=256,
    precision_="bf16",
    kv_precision=None,
    weight_precision=None,
    activation_precision=None,
    input_cv=0.0,
    prefix_hit=0.0,
    shared_context_tokens=0.0,
    max_sequences=math.inf,
    routing_skew=0.0,
    output_cv=0.0,
) -> Traffic:
    """Build a `Traffic`, checking values (outside `jit`). Precisions as in
    `diffhw.workload`: `precision_` sets weights and activations, `kv_precision`
    defaults to the activation precision."""
    w, a, kv = precisions(precision_, kv_precision, weight_precision, activation_precision)
    t = Traffic(request_rate_per_s, input_tokens, output_tokens, w, a, kv, input_cv, prefix_hit,
                shared_context_tokens, max_sequences, routing_skew, output_cv)
    check_traffic(t)
    return t


class Speculation(eqx.Module):
    """Speculative decoding: a draft proposes `draft_tokens` tokens per sequence, the
    model verifies them in one pass and keeps the accepted prefix plus its own next token.

    - `draft_tokens` (k): tokens proposed per verification step (float: relaxed).
    - `acceptance` (a): probability that each proposed token is accepted, in [0, 1].
      Expected tokens per verification step: ``(1 - a**(k+1)) / (1 - a)``, i.e. 1 at
      a = 0 and k + 1 at a = 1 (Leviathan et al., ICML 2023).
    - `draft`: the draft `Transformer` (run k times per step, one token each, on the
      same chips and parallelism), or None for multi-token-prediction heads (MTP, as in
      DeepSeek-V3), each costing one layer of the model per proposed token.
    """

    draft_tokens: Scalar = eqx.field(converter=_f)
    acceptance: Scalar = eqx.field(converter=_f)
    draft: Transformer | None = None

    def tokens_per_step(self):
        """Expected tokens each sequence gains per verification step."""
        k, a = self.draft_tokens, self.acceptance
        near_one = a > 1.0 - 1e-6
        a_safe = jnp.where(near_one, 0.5, a)
        return jnp.where(near_one, k + 1.0, (1.0 - a_safe ** (k + 1.0)) / (1.0 - a_safe))

    def tokens_variance(self):
        """Variance of the tokens gained per step (a geometric count truncated at k + 1)."""
        kk, a = self.draft_tokens + 1.0, _smooth.exact_min(self.acceptance, 1.0 - 1e-4)
        mean = (1.0 - a**kk) / (1.0 - a)
        # E[A^2] = sum_{j=1}^{K} (2j - 1) a^(j-1)
        s1 = (1.0 - (kk + 1.0) * a**kk + kk * a ** (kk + 1.0)) / (1.0 - a) ** 2
        return _smooth.exact_max(2.0 * s1 - mean - mean**2, 0.0)  # rounding below 0


def speculative(draft_tokens=4, acceptance=0.7, draft_model=None) -> Speculation:
    """Build a `Speculation`, checking values (outside `jit`)."""
    check_positive("draft_tokens", draft_tokens, allow_zero=True)
    if _concrete(acceptance) and not 0.0 <= float(acceptance) <= 1.0:
        raise InputError("acceptance", acceptance, "in [0, 1] (probability that a drafted token is accepted)")
    if draft_model is not None and not isinstance(draft_model, Transformer):
        raise InputError("draft_model", type(draft_model).__name__, "a Transformer (e.g. diffhw.presets.model(...))")
    return Speculation(draft_tokens, acceptance, draft_model)


#: Bandwidth a prefill chip ships KV over by default: one 400 Gb/s RDMA NIC per GPU, as in
#: an NVIDIA DGX H100 (eight ConnectX-7 400 Gb/s ports for eight GPUs; NVIDIA DGX H100
#: user guide, "Hardware overview"): 50 GB/s per chip.
NIC_BYTES_PER_S = 400e9 / 8.0


class Disaggregation(eqx.Module):
    """Disaggregated Prefill and Decode (Splitwise, DistServe, Dynamo): prompts run on a
    pool of their own, and each request's KV cache then crosses the network to the
    Decode pool (the `hardware` and `parallelism` given to `serve`).

    - `prefill_hardware`, `prefill_parallelism`: the Prefill pool (its dp = replicas).
    - `transfer_bandwidth_bytes_per_s`: bandwidth one request's KV moves at, bytes/s
      (default: one 400 Gb/s NIC per chip of a prefill replica, `NIC_BYTES_PER_S`).
    - `transfer_latency_s`: fixed latency of a transfer (default: the Decode chip's link
      plus message latency).
    """

    prefill_hardware: Hardware
    prefill_parallelism: Parallelism
    transfer_bandwidth_bytes_per_s: Scalar = eqx.field(converter=_f)
    transfer_latency_s: Scalar = eqx.field(converter=_f)


def disaggregated(prefill_hardware, prefill_parallelism, transfer_bandwidth_bytes_per_s=None,
                  transfer_latency_s=None, decode_hardware=None) -> Disaggregation:
    """Build a `Disaggregation` (outside `jit`); defaults as in `Disaggregation`."""
    if transfer_bandwidth_bytes_per_s is None:
        p = prefill_parallelism
        transfer_bandwidth_bytes_per_s = NIC_BYTES_PER_S * float(p.tp) * float(p.pp)
    if transfer_latency_s is None:
        hw = decode_hardware if decode_hardware is not None else prefill_hardware
        transfer_latency_s = float(hw.link_latency_s) + float(hw.message_latency_s)
    check_positive("transfer_bandwidth_bytes_per_s", transfer_bandwidth_bytes_per_s)
    check_positive("transfer_latency_s", transfer_latency_s, allow_zero=True)
    return Disaggregation(prefill_hardware, prefill_parallelism, transfer_bandwidth_bytes_per_s,
                          transfer_latency_s)
