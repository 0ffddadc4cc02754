"""Workload algebra: FLOPs and bytes of each operator group of a step, hardware-free.

`step_ops` turns a `Transformer`, a number of tokens, a context length and a sharding
(`Shards`) into per-chip FLOPs and bytes for each operator group of a Decode step or a
Prefill pass; `weight_bytes_per_chip` and `kv_bytes_per_chip` give what one chip
stores. Nothing here knows about hardware.
"""

from statistics import NormalDist

import equinox as eqx
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from ._transformer import Transformer

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


class Shards(eqx.Module):
    """How one chip's share of a layer is cut.

    - `tp`: tensor-parallel degree (attention heads, FFN columns, vocabulary).
    - `kv_shard`: ways the KV heads are split, ``min(tp, n_kv_heads)`` (KV heads are
      replicated when TP exceeds them; MLA's latent is replicated: 1).
    - `expert_group`: chips sharing one stage's routed experts, ``max(tp, ep)``.
    - `ep`: expert-parallel degree.
    """

    tp: Scalar = eqx.field(converter=_f)
    kv_shard: Scalar = eqx.field(converter=_f)
    expert_group: Scalar = eqx.field(converter=_f)
    ep: Scalar = eqx.field(converter=_f)


def shards_for(model: Transformer, tp, ep) -> Shards:
    """Shards of `model` under tensor parallel `tp` and expert parallel `ep`."""
    tp = _f(tp)
    kv_shard = 1.0 if model.mla else _smooth.exact_min(tp, float(model.n_kv_heads))
    return Shards(tp, kv_shard, _smooth.exact_max(tp, _f(ep)), ep)


class OpCost(eqx.Module):
    """FLOPs and bytes of one operator group on one chip (one layer, or the head).

    - `flops`: floating-point operations.
    - `weight_bytes`, `kv_read_bytes`, `kv_write_bytes`, `act_bytes`: bytes moved to
      or from memory.
    - `rows`: rows M of the group's matrix multiplies (sets compute efficiency).
    - `context_bytes`: bytes of a read-only shared context (a shared prompt prefix or a
      retrieval corpus's KV) read once per step for the whole batch.
    - `expert_flops`, `expert_weight_bytes`: the part of `flops` and `weight_bytes` done by
      routed-expert (grouped) matrix multiplies, None outside an MoE block: the hardware's
      `Profile.moe_efficiency` times them (`diffhw._timing._latency.ops_chain`; stacked
      groups drop them).
    - `expert_load`: the most loaded expert-parallel rank's load over the mean
      (`rank_load_factor`) that an MoE block's routed experts ran at, None elsewhere: the
      step's expert-parallel all-to-all sees the same imbalance (`ops_chain` hands it to
      `diffhw._timing._latency.communication` rather than computing it again).
    """

    flops: Scalar
    weight_bytes: Scalar
    kv_read_bytes: Scalar
    kv_write_bytes: Scalar
    act_bytes: Scalar
    rows: Scalar
    context_bytes: Scalar = eqx.field(default_factory=lambda: jnp.zeros(()))
    expert_flops: Scalar | None = None
    expert_weight_bytes: Scalar | None = None
    expert_load: Scalar | None = None

    @property
    def bytes(self):
        return (
            self.weight_bytes + self.kv_read_bytes + self.kv_write_bytes + self.act_bytes + self.context_bytes
        )

    def reads_writes(self):
        """Bytes read and written by data class (`diffhw._hardware._memory.DATA_CLASSES` order)."""
        reads = jnp.stack([self.weight_bytes, self.kv_read_bytes, self.context_bytes, self.act_bytes])
        writes = jnp.stack([jnp.zeros(()), self.kv_write_bytes, jnp.zeros(()), jnp.zeros(())])
        return reads, writes


def _popularity(n_experts, skew):
    """Share of routed tokens each of `n_experts` experts receives: lognormal across
    experts with coefficient of variation `skew` (0: uniform), at the experts' quantiles
    (a deterministic, smooth stand-in for one draw), normalised to sum to one."""
    z = jnp.asarray([NormalDist().inv_cdf((i + 0.5) / n_experts) for i in range(n_experts)])
    s = _smooth.safe_sqrt(jnp.log1p(jnp.asarray(skew) ** 2))
    w = jnp.exp(z * s)
    return w / jnp.sum(w)


def expected_experts_touched(n_experts, k, tokens, skew=0.0):
    """Expected number of distinct experts that `tokens` tokens route to.

    Each token picks `k` of `n_experts`, expert ``i`` with probability ``k w_i``
    (`_popularity`; uniform routing, ``skew = 0``: ``E * (1 - (1 - k/E)**T)``), smooth
    in `tokens` so the model stays differentiable in batch.
    """
    uniform = n_experts * (1.0 - jnp.exp(tokens * jnp.log1p(-k / n_experts)))
    if isinstance(skew, (int, float)) and skew == 0.0:
        return uniform
    q = _smooth.exact_min(k * _popularity(int(n_experts), skew), 1.0 - 1e-6)  # guard: log1p(-q) finite
    skewed = jnp.sum(1.0 - jnp.exp(jnp.asarray(tokens)[..., None] * jnp.log1p(-q)), axis=-1)
    return jnp.where(jnp.asarray(skew) > 0.0, skewed, uniform)  # exactly the closed form at 0


def rank_load_factor(n_experts, k, tokens, ranks, skew=0.0):
    """Expected load of the most loaded of `ranks` expert-parallel ranks over the mean
    (>= 1; 1 with one rank), for `tokens` tokens routed inside the expert group.

    A rank holds ``E / ranks`` experts, placed without regard to popularity. Its token
    count has mean ``mu = T k / ranks`` and variance from the routing draw (each token's
    `k` distinct experts: hypergeometric, ``T k (1/r)(1 - 1/r)(E - k)/(E - 1)``) and from
    expert popularity (coefficient of variation `skew` across experts, sampled without
    replacement into ranks: ``(T k)^2 skew^2 (1 - 1/r) / (r (E - 1))``). The maximum of
    `ranks` such loads is taken as ``mu + sigma g(r)`` with ``g`` Blom's expected maximum
    of ``r`` standard normals, ``Phi^-1((r - 0.375) / (r + 0.25))``, and capped at the
    most a rank can take (``min(k, E / r)`` per token). Smooth in `tokens`, `ranks` and
    `skew`; uniform routing (``skew = 0``) keeps the statistical imbalance of small
    batches, which fades as ``1 / sqrt(T)``.
    """
    E = float(n_experts)
    r = jnp.asarray(ranks, dtype=jnp.result_type(tokens, float))
    tk = tokens * k
    mu = _smooth.exact_max(tk / r, 1e-12)
    spread = 1.0 - 1.0 / r
    var = tk * spread / r * (E - k) / max(E - 1.0, 1.0) + tk**2 * jnp.asarray(skew) ** 2 * spread / (
        r * max(E - 1.0, 1.0))
    # Phi^-1(p) = sqrt(2) erfinv(2p - 1): XLA's one `erf_inv` operation, where
    # `jax.scipy.special.ndtri`'s rational approximations trace ~100 (the same values)
    g = math.sqrt(2.0) * jax.lax.erf_inv(2.0 * (r - 0.375) / (r + 0.25) - 1.0)
    f = 1.0 + _smooth.safe_sqrt(var) * g / mu
    # a guard where the normal approximation overshoots (extreme skew); rarely binds
    cap = _smooth.exact_min(jnp.asarray(k, dtype=r.dtype), E / r) * r / k
    return _smooth.exact_min(f, cap)


def _weights_op(weights, tokens, wbytes, act_bytes):
    """A GEMM of `tokens` rows through `weights` parameters (no KV traffic)."""
    return OpCost(flops=2.0 * weights * tokens, weight_bytes=weights * wbytes, kv_read_bytes=jnp.zeros(()),
                  kv_write_bytes=jnp.zeros(()), act_bytes=act_bytes, rows=tokens)


def step_ops(model, shards, tokens, sequences, context, wbytes, abytes, kvbytes, decode, shared=0.0, skew=0.0,
             block=1.0, beams=1.0, prompt=0.0, head_wbytes=None, parts="all"):
    """Per-chip FLOPs and bytes of one Decode step or one Prefill pass.

    **Arguments:**

    - `model`: the `Transformer`.
    - `shards`: the `Shards` of one chip.
    - `tokens`: tokens processed in this step by the chip's tensor-parallel group
      (Decode: one per sequence; Prefill: all prompt tokens of the pass).
    - `sequences`: sequences in the step (one logit row and one KV history each).
    - `context`: tokens each query attends to (Decode: the current context length;
      Prefill: the causal average, about half the prompt).
    - `wbytes`, `abytes`, `kvbytes`: bytes per weight, activation and KV element.
    - `head_wbytes`: bytes per weight of the LM head (`Precision.head_bytes`: quantised
      formats keep it wider); None: `wbytes`.
    - `decode`: static; Decode uses MLA's absorbed (latent) attention.
    - `shared`: tokens of a read-only context every sequence also attends to (a shared
      prefix), stored once and read once per step (as cascade-attention kernels do);
      sliding-window layers do not reach it.
    - `skew`: MoE routing skew, the coefficient of variation of expert popularity (0:
      uniform); with expert parallelism the most loaded rank sets the expert group's
      compute and activation traffic (`rank_load_factor`), and popular experts are
      touched more often (`expected_experts_touched`).
    - `block`: Decode only, tokens each sequence runs through the model in this step
      (1: autoregressive; a block-diffusion pass denoises a block of them,
      ``tokens = sequences * block``). The block's queries share one read of the
      sequence's KV history (more matrix rows for the attention core) and the head
      scores every one of them.
    - `beams`, `prompt`: Decode only, beam search: `sequences` counts every beam
      (``requests * beams``) and the first `prompt` tokens of each context are the
      request's prompt, whose KV the beams share. The shared part is read once per
      request and step by grouped-query kernels, the generated part once per beam:
      TensorRT-LLM shares the prompt's KV blocks among a request's beams
      (`share_across_beam`, tensorrt_llm/runtime/kv_cache_manager.py) and its XQA decode
      kernel, which serves MQA/GQA models, loads those "converged" tiles once for all
      beams, whose queries it stacks as extra matrix rows (cpp/kernels/xqa/mha.cu,
      `isConvergedTile`; github.com/NVIDIA/TensorRT-LLM). Multi-head models (as many KV
      heads as query heads, e.g. GPT-J) decode with its masked-MHA kernel, one sequence
      at a time, so every beam reads the whole context (as do vLLM's copy-on-write beams,
      Kwon et al., SOSP 2023, sec. 4.4); the blocks are still stored once. 1: no beam
      search.
    - `parts`: static; "all", or only the attention cores ("core") or every group but
      them ("other"), in the same order (`diffhw._timing._latency.mixed_chain` takes the
      cores of its Decode and Prefill parts and the rest of the whole step: the groups
      not asked for are not traced at all).

    **Returns:** a list of ``(name, layer_count, OpCost)``; multiply each cost by its
    count and add to get the step's total.
    """
    d, h = model.d_model, model.n_heads
    tp = shards.tp
    ops = []
    cores, others = parts != "other", parts != "core"

    q_width = h * (model.qk_nope_dim + model.qk_rope_dim if model.mla else model.head_dim) / tp
    if others:
        attn_w = sum(model._attention_parts(tp, shards.kv_shard).values())
        proj = _weights_op(attn_w, tokens, wbytes, tokens * (2.0 * d + 2.0 * q_width) * abytes)

    if cores:
        kv_elems = model.kv_elements_per_token_per_layer(shards.kv_shard)
        heads = h / tp
        # beams sharing one read of the prompt's KV: grouped-query kernels (XQA) only
        share = beams if (model.mla or model.n_kv_heads < h) else 1.0
        if model.mla and decode:
            # Absorbed MLA: scores over (latent + rope), values over the latent.
            score_dim, value_dim = model.kv_lora_rank + model.qk_rope_dim, model.kv_lora_rank
            core_rows = heads * block * share
        elif model.mla:
            score_dim, value_dim = model.qk_nope_dim + model.qk_rope_dim, model.v_head_dim
            core_rows = tokens
        else:
            score_dim = value_dim = model.head_dim
            core_rows = (h / model.n_kv_heads * block * share) if decode else tokens
        # beam search: the share of the sequences whose prompt KV another beam already read
        reread = sequences * (1.0 - 1.0 / share)

    ffn = {}
    for sliding, moe, count in model.layer_groups:
        suffix = f"{'_sliding' if sliding else ''}{'_moe' if moe else ''}"
        if others:
            ops.append((f"attention_proj{suffix}", count, proj))
        if cores:
            ctx = _smooth.smooth_min(context, model.sliding_window) if sliding else context
            shared_ctx = 0.0 if sliding else shared
            # prompt tokens still in reach (a sliding window slides off them as beams grow)
            beam_shared = ctx - (_smooth.smooth_min(context - prompt, ctx) if sliding else context - prompt)
            core = OpCost(
                flops=2.0 * heads * (score_dim + value_dim) * (ctx + shared_ctx) * tokens,
                weight_bytes=jnp.zeros(()),
                kv_read_bytes=((sequences * ctx - reread * beam_shared) * kv_elems * kvbytes) if decode
                else jnp.zeros(()),
                kv_write_bytes=tokens * kv_elems * kvbytes,
                act_bytes=2.0 * tokens * q_width * abytes,
                rows=core_rows * jnp.ones(()),
                context_bytes=shared_ctx * kv_elems * kvbytes * jnp.ones(()),
            )
            ops.append((f"attention_core{suffix}", count, core))
        if others:
            if moe not in ffn:  # sliding and full layers share their FFN's cost
                ffn[moe] = _ffn_op(model, shards, tokens, wbytes, abytes, moe, skew)
            ops.append((f"{'moe' if moe else 'ffn'}{'_sliding' if sliding else ''}", count, ffn[moe]))
    if not others:
        return ops

    vocab = model.vocab_size / tp
    scored = sequences * block if decode else sequences  # rows the head scores
    ops.append(
        (
            "lm_head",
            1,
            OpCost(
                flops=2.0 * d * vocab * scored,
                weight_bytes=d * vocab * (wbytes if head_wbytes is None else head_wbytes),
                kv_read_bytes=jnp.zeros(()),
                kv_write_bytes=jnp.zeros(()),
                act_bytes=(tokens * d + scored * (d + vocab)) * abytes,
                rows=scored * jnp.ones(()),
            ),
        )
    )
    return ops


def _ffn_op(model, shards, tokens, wbytes, abytes, moe, skew=0.0):
    d, tp = model.d_model, shards.tp
    if not moe:
        w = model.ffn_params() / tp
        width = model.ffn_dim / tp
        return _weights_op(w, tokens, wbytes, tokens * (2.0 * d + 3.0 * width) * abytes)
    E, k = float(model.n_experts), float(model.experts_per_token)
    # Tokens routed inside the expert group: the group spans expert_group / tp replicas.
    group_tokens = tokens * shards.expert_group / tp
    touched = expected_experts_touched(E, k, group_tokens, skew)
    # the most loaded expert-parallel rank sets the routed experts' work (1 when ep = 1)
    load = rank_load_factor(E, k, group_tokens, shards.ep, skew)
    # the most loaded rank also touches more of its experts: a share ``1 - (1 - p)**load``
    # of them, ``p = touched / E`` (the mean rank's share)
    miss = jnp.log(_smooth.exact_max((E - touched) / E, 1e-30))  # guard: every expert touched
    touched_max = E * -jnp.expm1(load * miss)
    routed_w = (touched_max / shards.expert_group) * model.expert_params()
    shared_w = model.shared_expert_params() / tp
    router_w = model.router_params()
    expert_flops = 2.0 * tokens * load * k * model.expert_params() / tp
    flops = expert_flops + 2.0 * tokens * (shared_w + router_w)
    rows = group_tokens * k / _smooth.exact_max(touched, 1e-9)
    shared_width = model.n_shared_experts * model.shared_expert_ffn_dim / tp
    return OpCost(
        flops=flops,
        weight_bytes=(routed_w + shared_w + router_w) * wbytes,
        expert_flops=expert_flops,
        expert_weight_bytes=routed_w * wbytes,
        expert_load=load,
        kv_read_bytes=jnp.zeros(()),
        kv_write_bytes=jnp.zeros(()),
        act_bytes=tokens * (2.0 * d + load * (2.0 * d * k + 3.0 * k * model.expert_ffn_dim / tp)
                            + 3.0 * shared_width) * abytes,
        rows=rows,
    )


def encoder_op(model, shards, encoder_params, tokens, wbytes, abytes):
    """Per-chip FLOPs and bytes of a modality encoder (e.g. a ViT) encoding `tokens`
    tokens during Prefill: its `encoder_params` weights (elements) split over the
    tensor-parallel group and read once, ``2 * params`` FLOPs per token, and the encoded
    tokens written out as ``d_model``-wide embeddings for the decoder."""
    w = encoder_params / shards.tp
    return OpCost(
        flops=2.0 * w * tokens,
        weight_bytes=w * wbytes,
        kv_read_bytes=jnp.zeros(()),
        kv_write_bytes=jnp.zeros(()),
        act_bytes=tokens * model.d_model * abytes * jnp.ones(()),
        rows=tokens * jnp.ones(()),
    )


def weight_bytes_per_chip(model, shards, pp, wbytes, head_wbytes=None):
    """Bytes of weights one chip stores: its share of every expert, head and table
    (the embedding and head tables at `head_wbytes`, default `wbytes`)."""
    attn = sum(model._attention_parts(shards.tp, shards.kv_shard).values())
    moe = (
        model.n_experts * model.expert_params() / shards.expert_group
        + model.shared_expert_params() / shards.tp
        + model.router_params()
    )
    layers = model.n_layers * attn + model.n_dense_layers * model.ffn_params() / shards.tp
    layers = layers + model.n_moe_layers * moe + 2 * model.d_model * model.n_layers
    # Embedding and head sit on the first and last pipeline stage; spread evenly here.
    tables = model.embedding_params() / shards.tp
    if head_wbytes is not None:  # a ratio of exactly 1 keeps same-width results bit for bit
        tables = tables * (head_wbytes / wbytes)
    return (layers + tables) / pp * wbytes


def kv_bytes_per_chip(model, shards, pp, sequences, context, kvbytes, beams=1.0, generated=0.0):
    """Bytes of KV cache one chip stores for `sequences` sequences of `context` tokens.

    Beam search (`beams` > 1): each sequence is a request whose last `generated` tokens
    are held once per beam and whose prompt once (the beams share its blocks, as
    TensorRT-LLM's KV cache manager does; `step_ops`); a sliding window holds at most
    its window per beam."""
    per_layer = model.kv_elements_per_token_per_layer(shards.kv_shard) * kvbytes
    total = 0.0
    for sliding, _, count in model.layer_groups:
        ctx = _smooth.smooth_min(context, model.sliding_window) if sliding else context
        own = _smooth.smooth_min(generated, ctx) if sliding else generated
        total = total + count * per_layer * (ctx + (beams - 1.0) * own)
    return total * sequences / pp


#: Tokens per KV-cache page (vLLM's default block size), the unit a KV read fetches.
KV_PAGE_TOKENS = 16.0


def access_bytes(model, wbytes, abytes, kvbytes):
    """Typical bytes of one contiguous access per data class (`DATA_CLASSES` order), for
    reads and for writes.

    Reads: a weight-matrix row (``d_model`` weights), a KV page of one head (16 tokens),
    the same for the shared context, an activation vector. Writes: a row, one token's
    K (or V) of one head (the KV cache grows a token at a time), the same, a vector.

    **Returns:** ``(read_bytes, write_bytes)``, arrays of 4.
    """
    head = ((model.kv_lora_rank + model.qk_rope_dim) if model.mla else model.head_dim) * kvbytes
    row, vec = model.d_model * wbytes, model.d_model * abytes
    reads = jnp.stack([row, KV_PAGE_TOKENS * head, KV_PAGE_TOKENS * head, vec])
    writes = jnp.stack([row, head, head, vec])
    return reads, writes
