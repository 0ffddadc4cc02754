"""What is asked of the hardware: batch, sequence lengths, precisions, parallelism."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._errors import InputError, check_positive
from ._precision import Precision, precision, weight_only_activations

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


def _f_or_none(x):
    return None if x is None else jnp.asarray(x, dtype=float)


class Workload(eqx.Module):
    """A serving workload. Counts are float leaves (relaxed), so they can be swept and
    differentiated without retracing.

    - `batch`: concurrent requests in the whole system (split over data-parallel
      replicas and pipeline micro-batches).
    - `input_tokens`, `output_tokens`: prompt and generated tokens per request.
    - `weight_precision`, `activation_precision`, `kv_precision`: `Precision`s. Matrix
      work runs at the activation precision (weights narrower than activations are
      dequantised on the fly, as in W4A16 kernels).
    - `shared_context_tokens`: a read-only context every request attends to (a shared
      system prompt, a retrieval corpus, a code base), whose KV cache is stored once.
    - `routing_skew`: MoE routing skew, the coefficient of variation of the share of
      tokens each routed expert receives (0: uniform routing, the default). With expert
      parallelism the most loaded rank sets the experts' time and the all-to-all, even
      under uniform routing at small batches (`diffhw._workload._operators.rank_load_factor`).
    - `decode_block_tokens`, `denoising_steps`: non-autoregressive (block diffusion)
      Decode. Each Decode pass runs a block of `decode_block_tokens` tokens per sequence
      through the model and a block takes `denoising_steps` passes, so per output token
      the weights and KV history are read ``denoising_steps / decode_block_tokens`` times
      and the FLOPs are ``denoising_steps`` times those of one token. 1 and 1 (the
      defaults): autoregressive Decode, one token per step.
    - `encoder_params`, `encoder_tokens`: a modality encoder (e.g. a ViT) in front of
      the decoder: its weights (elements, stored at the weight precision beside the
      model's) and the tokens per request it encodes during Prefill (its FLOPs are
      ``2 * encoder_params * encoder_tokens`` per request). None (the default): text
      only, and no encoder in the traced program (its roofline costs every compile ~8%
      of `evaluate`'s operations); the two are set together.
    - `beam_width`: beam search, sequences each request decodes (1, the default: one
      sequence, greedy or sampled). Every Decode step runs ``batch * beam_width`` rows
      (FLOPs, activations, the head's scoring, sampling), each beam writes and stores
      its own generated KV while the prompt's KV is stored once per request (and read
      once per request and step by grouped-query models' kernels, once per beam by
      multi-head ones: `diffhw._workload._operators.step_ops`); Prefill runs
      once per request and a request returns one sequence, so throughput counts
      ``output_tokens`` per request, not per beam.
    """

    batch: Scalar = eqx.field(converter=_f)
    input_tokens: Scalar = eqx.field(converter=_f)
    output_tokens: Scalar = eqx.field(converter=_f)
    weight_precision: Precision
    activation_precision: Precision
    kv_precision: Precision
    shared_context_tokens: Scalar = eqx.field(converter=_f, default=0.0)
    routing_skew: Scalar = eqx.field(converter=_f, default=0.0)
    decode_block_tokens: Scalar = eqx.field(converter=_f, default=1.0)
    denoising_steps: Scalar = eqx.field(converter=_f, default=1.0)
    encoder_params: Scalar | None = eqx.field(converter=_f_or_none, default=None)
    encoder_tokens: Scalar | None = eqx.field(converter=_f_or_none, default=None)
    beam_width: Scalar = eqx.field(converter=_f, default=1.0)


def workload(
    batch=1,
    input_tokens=2048,
    output_tokens=256,
    precision_="bf16",
    kv_precision=None,
    weight_precision=None,
    activation_precision=None,
    shared_context_tokens=0.0,
    routing_skew=0.0,
    decode_block_tokens=1.0,
    denoising_steps=1.0,
    encoder_params=None,
    encoder_tokens=None,
    beam_width=1.0,
) -> Workload:
    """Build a `Workload`, checking values (for use outside `jit`).

    `precision_` sets weights and activations; `weight_precision` and
    `activation_precision` override one of them; `kv_precision` defaults to the
    activation precision. `decode_block_tokens` and `denoising_steps` (>= 1) describe
    block-diffusion Decode, `encoder_params` and `encoder_tokens` (>= 0; None: none) a
    modality encoder (see `Workload`; `diffhw.trends` sets them). `beam_width` (>= 1): beam
    search's beams per request (see `Workload`).
    """
    check_positive("batch", batch)
    check_positive("input_tokens", input_tokens)
    check_positive("output_tokens", output_tokens)
    if not isinstance(output_tokens, jax.core.Tracer) and float(output_tokens) < 1:
        raise InputError("output_tokens", output_tokens, ">= 1")
    w, a, kv = precisions(precision_, kv_precision, weight_precision, activation_precision)
    check_positive("shared_context_tokens", shared_context_tokens, allow_zero=True)
    check_routing_skew(routing_skew)
    for name, v in (("decode_block_tokens", decode_block_tokens), ("denoising_steps", denoising_steps)):
        check_positive(name, v)
        if not isinstance(v, jax.core.Tracer) and float(v) < 1:
            raise InputError(name, v, ">= 1 (1: autoregressive Decode)")
    if encoder_params is not None or encoder_tokens is not None:  # an encoder: both leaves exist
        encoder_params = 0.0 if encoder_params is None else encoder_params
        encoder_tokens = 0.0 if encoder_tokens is None else encoder_tokens
        check_positive("encoder_params", encoder_params, allow_zero=True)
        check_positive("encoder_tokens", encoder_tokens, allow_zero=True)
    check_positive("beam_width", beam_width)
    if not isinstance(beam_width, jax.core.Tracer) and float(beam_width) < 1:
        raise InputError("beam_width", beam_width, ">= 1 (1: no beam search)")
    return Workload(batch, input_tokens, output_tokens, w, a, kv, shared_context_tokens, routing_skew,
                    decode_block_tokens, denoising_steps, encoder_params, encoder_tokens, beam_width)


def precisions(precision_="bf16", kv_precision=None, weight_precision=None, activation_precision=None):
    """``(weights, activations, KV)`` `Precision`s: `precision_` sets weights and
    activations, `weight_precision` / `activation_precision` override one, the KV cache
    defaults to the activations'. A weight-only format as `precision_` (``"awq"``,
    ``"q4_0"``, ...) sets the weights; the activations default to the 16-bit format its
    kernels compute in (`weight_only_activations`)."""
    w = precision(weight_precision if weight_precision is not None else precision_)
    if activation_precision is None:
        activation_precision = weight_only_activations(precision_) or precision_
    a = precision(activation_precision)
    return w, a, (precision(kv_precision) if kv_precision is not None else a)


def check_routing_skew(routing_skew):
    """`routing_skew` must be finite and in [0, 10] (a coefficient of variation)."""
    if isinstance(routing_skew, jax.core.Tracer):
        return
    v = float(routing_skew)
    if not 0.0 <= v <= 10.0:
        raise InputError("routing_skew", v, "between 0 (uniform routing) and 10 (a coefficient of variation of "
                         "expert popularity)")


class Parallelism(eqx.Module):
    """How the model is spread over chips. Degrees are float leaves (relaxed for sizing);
    `validate_parallelism` checks integer values against the model.

    - `tp`: tensor parallel (attention heads, FFN, vocabulary).
    - `pp`: pipeline parallel (layers split into `pp` stages; the batch into `pp`
      micro-batches).
    - `dp`: data-parallel replicas (the batch is split over them).
    - `ep`: expert parallel: a stage's routed experts are spread over `ep` ranks. With
      ``ep <= tp`` the ranks sit inside the tensor-parallel group; with ``ep > tp`` the
      group spans ``ep / tp`` data-parallel replicas, which then share their experts.

    Chips in the system: ``tp * pp * dp``, numbered tensor-parallel rank first, then
    replica, then stage (what a multi-node system's scale-up domains hold:
    `diffhw._hardware._collectives`).

    **Attention data parallel with wide expert parallel** (how SGLang, vLLM and
    TensorRT-LLM serve DeepSeek-V3/R1 and Qwen3-235B on 8-72 GPUs: SGLang
    ``--enable-dp-attention``, TensorRT-LLM ``enable_attention_dp``) is ``dp`` replicas
    of a small ``tp`` (1: every rank holds all attention weights) with ``ep`` up to
    ``tp * dp``: each replica keeps the KV cache of its own ``batch / dp`` sequences and
    runs their attention, dense layers and head; the routed experts are sharded over the
    ``ep`` ranks (``E / ep`` each) and every MoE layer dispatches each token's hidden
    state to its top-k experts and combines them back by an all-to-all over those ranks,
    the most loaded rank setting the pace (`diffhw._workload._operators.rank_load_factor`).
    E.g. 8 GPUs: ``parallelism(tp=1, dp=8, ep=8)``; against ``parallelism(tp=8, ep=8)``
    (attention tensor parallel) it drops the attention all-reduces and, for MLA models,
    the latent KV cache that every TP rank would hold whole. Wide EP need not divide
    the experts (256 experts over 72 GPUs): engines then fill every rank with redundant
    copies of popular experts (SGLang ``--ep-num-redundant-experts``, DeepSeek's EPLB),
    and each rank is counted with the mean ``E / ep`` experts.
    """

    tp: Scalar = eqx.field(converter=_f)
    pp: Scalar = eqx.field(converter=_f)
    dp: Scalar = eqx.field(converter=_f)
    ep: Scalar = eqx.field(converter=_f)

    @property
    def chips(self):
        return self.tp * self.pp * self.dp


def parallelism(tp=1, pp=1, dp=1, ep=1) -> Parallelism:
    return Parallelism(tp, pp, dp, ep)


def _as_int(field, value):
    v = check_positive(field, value)
    if v != int(v):
        raise InputError(field, value, "a whole number")
    return int(v)


def validate_parallelism(model, par: Parallelism):
    """Check integer parallel degrees against a model (outside `jit`).

    Raises `InputError` naming the degree, its value and what is allowed.
    """
    tp, pp, dp, ep = (_as_int(n, getattr(par, n)) for n in ("tp", "pp", "dp", "ep"))
    if model.n_heads % tp:
        divisors = [t for t in range(1, model.n_heads + 1) if model.n_heads % t == 0]
        raise InputError(
            "tp", tp, f"a divisor of the model's {model.n_heads} attention heads",
            "e.g. " + ", ".join(map(str, divisors[:8])),
        )
    kv = model.n_kv_heads
    if not model.mla and kv % tp and tp % kv:
        raise InputError("tp", tp, f"a divisor or multiple of the model's {kv} KV heads")
    if pp > model.n_layers:
        raise InputError("pp", pp, f"at most the model's {model.n_layers} layers")
    if ep > 1:
        if model.n_experts == 0:
            raise InputError("ep", ep, "1 for a dense model (it has no experts)")
        if ep > model.n_experts or (model.n_experts % ep and ep <= tp):
            raise InputError("ep", ep, f"a divisor of the model's {model.n_experts} experts, or (wide expert "
                             f"parallel over replicas, ep > tp) at most {model.n_experts}")
        if not (tp % ep == 0 or (ep % tp == 0 and (tp * dp) % ep == 0)):
            raise InputError(
                "ep", ep, f"a divisor of tp={tp}, or a multiple of tp that divides tp*dp={tp * dp}"
            )
    return tp, pp, dp, ep
