"""Workload algebra: FLOPs and bytes of a transformer decoder, hardware-free.

A `Transformer` is structure (layer and head counts, which layers are MoE or use a
sliding window) plus float leaves (widths). `step_ops` turns it, a number of tokens, a
context length and a sharding into per-chip FLOPs and bytes for each operator group of
a Decode step or a Prefill pass. Nothing here knows about hardware.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import _smooth

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


class Transformer(eqx.Module):
    """A decoder-only transformer: structure plus float leaves.

    **Static structure:** `n_layers`, `n_heads`, `n_kv_heads`, `n_experts` (0 = dense),
    `experts_per_token`, `n_shared_experts`, `gated_ffn`, `tied_embeddings`, `mla`
    (DeepSeek Multi-head Latent Attention) and `layer_groups`, a tuple of
    ``(sliding, moe, count)`` saying how many layers use a sliding window and/or MoE.

    **Float leaves (elements, not bytes):** `d_model`, `head_dim`, `ffn_dim` (dense FFN
    width), `vocab_size`, `expert_ffn_dim`, `shared_expert_ffn_dim` (width of each shared
    expert), `sliding_window` (tokens), and for MLA `q_lora_rank` (0 = no query
    compression), `kv_lora_rank`, `qk_nope_dim`, `qk_rope_dim`, `v_head_dim`.
    """

    d_model: Scalar = eqx.field(converter=_f)
    head_dim: Scalar = eqx.field(converter=_f)
    ffn_dim: Scalar = eqx.field(converter=_f)
    vocab_size: Scalar = eqx.field(converter=_f)
    expert_ffn_dim: Scalar = eqx.field(converter=_f)
    shared_expert_ffn_dim: Scalar = eqx.field(converter=_f)
    sliding_window: Scalar = eqx.field(converter=_f)
    q_lora_rank: Scalar = eqx.field(converter=_f)
    kv_lora_rank: Scalar = eqx.field(converter=_f)
    qk_nope_dim: Scalar = eqx.field(converter=_f)
    qk_rope_dim: Scalar = eqx.field(converter=_f)
    v_head_dim: Scalar = eqx.field(converter=_f)
    n_layers: int = eqx.field(static=True)
    n_heads: int = eqx.field(static=True)
    n_kv_heads: int = eqx.field(static=True)
    n_experts: int = eqx.field(static=True)
    experts_per_token: int = eqx.field(static=True)
    n_shared_experts: int = eqx.field(static=True)
    gated_ffn: bool = eqx.field(static=True)
    tied_embeddings: bool = eqx.field(static=True)
    mla: bool = eqx.field(static=True)
    layer_groups: tuple = eqx.field(static=True)
    name: str = eqx.field(static=True, default="custom")
    description: str = eqx.field(static=True, default="")

    def __check_init__(self):
        if sum(c for _, _, c in self.layer_groups) != self.n_layers:
            raise ValueError("layer_groups must add up to n_layers")
        if self.n_heads % self.n_kv_heads:
            raise ValueError("n_heads must be a multiple of n_kv_heads")
        if any(moe for _, moe, _ in self.layer_groups) and self.n_experts < 1:
            raise ValueError("a MoE layer needs n_experts >= 1")

    # ----- parameter counts (elements) -----
    @property
    def n_moe_layers(self) -> int:
        return sum(c for _, moe, c in self.layer_groups if moe)

    @property
    def n_dense_layers(self) -> int:
        return self.n_layers - self.n_moe_layers

    def attention_params(self):
        """Weights of one attention block (elements)."""
        return sum(self._attention_parts(1.0, 1.0).values())

    def _attention_parts(self, tp, kv_shard):
        """Per-chip weight elements of the attention projections, by part."""
        d, h = self.d_model, self.n_heads
        if self.mla:
            qk = self.qk_nope_dim + self.qk_rope_dim
            has_q_lora = self.q_lora_rank > 0
            q = jnp.where(
                has_q_lora,
                d * self.q_lora_rank + self.q_lora_rank * h * qk / tp,
                d * h * qk / tp,
            )
            # The down projections (q_a, kv_a) are small and replicated across TP ranks.
            kv = d * (self.kv_lora_rank + self.qk_rope_dim) + self.kv_lora_rank * h * (
                self.qk_nope_dim + self.v_head_dim
            ) / tp
            o = h * self.v_head_dim * d / tp
            return {"q": q, "kv": kv, "o": o}
        hd = self.head_dim
        return {
            "q": d * h * hd / tp,
            "kv": 2 * d * self.n_kv_heads * hd / kv_shard,
            "o": h * hd * d / tp,
        }

    def ffn_params(self):
        """Weights of one dense FFN block (elements)."""
        return (3.0 if self.gated_ffn else 2.0) * self.d_model * self.ffn_dim

    def expert_params(self):
        """Weights of one routed expert (elements)."""
        return (3.0 if self.gated_ffn else 2.0) * self.d_model * self.expert_ffn_dim

    def shared_expert_params(self):
        """Weights of all shared experts of one MoE layer (elements)."""
        per = (3.0 if self.gated_ffn else 2.0) * self.d_model * self.shared_expert_ffn_dim
        return self.n_shared_experts * per

    def router_params(self):
        return self.d_model * self.n_experts

    def embedding_params(self):
        """Input embedding plus (if untied) output head (elements)."""
        return self.vocab_size * self.d_model * (1.0 if self.tied_embeddings else 2.0)

    def _params(self, experts):
        norms = 2 * self.d_model * self.n_layers + self.d_model
        moe = self.n_moe_layers * (
            experts * self.expert_params() + self.shared_expert_params() + self.router_params()
        )
        return (
            self.n_layers * self.attention_params()
            + self.n_dense_layers * self.ffn_params()
            + moe
            + self.embedding_params()
            + norms
        )

    def total_params(self):
        """All weights (elements), counting every expert."""
        return self._params(self.n_experts)

    def active_params(self):
        """Weights one token touches (elements), including both embedding tables."""
        return self._params(self.experts_per_token)

    def kv_elements_per_token_per_layer(self, kv_shard=1.0):
        """KV-cache elements one token adds to one layer (on one chip).

        Standard attention stores K and V for each KV head: ``2 * n_kv_heads * head_dim``
        (divided by the KV shard). MLA stores one latent vector plus the decoupled RoPE
        key, ``kv_lora_rank + qk_rope_dim``, replicated on every tensor-parallel rank.
        """
        if self.mla:
            return self.kv_lora_rank + self.qk_rope_dim
        return 2.0 * self.n_kv_heads * self.head_dim / kv_shard

    def kv_bytes_per_token(self, kv_bytes, context=None):
        """KV-cache bytes of one token over all layers (whole model, one copy).

        With `context` given, sliding-window layers hold at most `sliding_window` tokens,
        so the result is the KV bytes of a whole sequence of that length divided by it.
        """
        per_layer = self.kv_elements_per_token_per_layer() * kv_bytes
        total = 0.0
        for sliding, _, count in self.layer_groups:
            frac = 1.0
            if sliding and context is not None:
                frac = _smooth.smooth_min(context, self.sliding_window) / context
            total = total + count * per_layer * frac
        return total


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
    """

    flops: Scalar
    weight_bytes: Scalar
    kv_read_bytes: Scalar
    kv_write_bytes: Scalar
    act_bytes: Scalar
    rows: Scalar
    context_bytes: Scalar = eqx.field(default_factory=lambda: jnp.zeros(()))

    @property
    def bytes(self):
        return (
            self.weight_bytes + self.kv_read_bytes + self.kv_write_bytes + self.act_bytes + self.context_bytes
        )

    def reads_writes(self):
        """Bytes read and written by data class (`diffhw._memory.DATA_CLASSES` order)."""
        reads = jnp.stack([self.weight_bytes, self.kv_read_bytes, self.context_bytes, self.act_bytes])
        writes = jnp.stack([jnp.zeros(()), self.kv_write_bytes, jnp.zeros(()), jnp.zeros(())])
        return reads, writes


def expected_experts_touched(n_experts, k, tokens):
    """Expected number of distinct experts that `tokens` tokens route to.

    Each token picks `k` of `n_experts` (uniform routing): ``E * (1 - (1 - k/E)**T)``,
    smooth in `tokens` so the model stays differentiable in batch.
    """
    return n_experts * (1.0 - jnp.exp(tokens * jnp.log1p(-k / n_experts)))


def step_ops(model, shards, tokens, sequences, context, wbytes, abytes, kvbytes, decode, shared=0.0):
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
    - `decode`: static; Decode uses MLA's absorbed (latent) attention.
    - `shared`: tokens of a read-only context every sequence also attends to (a shared
      prefix), stored once and read once per step (as cascade-attention kernels do);
      sliding-window layers do not reach it.

    **Returns:** a list of ``(name, layer_count, OpCost)``; multiply each cost by its
    count and add to get the step's total.
    """
    d, h = model.d_model, model.n_heads
    tp = shards.tp
    ops = []

    attn_w = sum(model._attention_parts(tp, shards.kv_shard).values())
    q_width = h * (model.qk_nope_dim + model.qk_rope_dim if model.mla else model.head_dim) / tp
    proj = OpCost(
        flops=2.0 * attn_w * tokens,
        weight_bytes=attn_w * wbytes,
        kv_read_bytes=jnp.zeros(()),
        kv_write_bytes=jnp.zeros(()),
        act_bytes=tokens * (2.0 * d + 2.0 * q_width) * abytes,
        rows=tokens,
    )

    kv_elems = model.kv_elements_per_token_per_layer(shards.kv_shard)
    heads = h / tp
    if model.mla and decode:
        # Absorbed MLA: scores over (latent + rope), values over the latent.
        score_dim, value_dim = model.kv_lora_rank + model.qk_rope_dim, model.kv_lora_rank
        core_rows = heads
    elif model.mla:
        score_dim, value_dim = model.qk_nope_dim + model.qk_rope_dim, model.v_head_dim
        core_rows = tokens
    else:
        score_dim = value_dim = model.head_dim
        core_rows = (h / model.n_kv_heads) if decode else tokens

    for sliding, moe, count in model.layer_groups:
        ctx = _smooth.smooth_min(context, model.sliding_window) if sliding else context
        shared_ctx = 0.0 if sliding else shared
        core = OpCost(
            flops=2.0 * heads * (score_dim + value_dim) * (ctx + shared_ctx) * tokens,
            weight_bytes=jnp.zeros(()),
            kv_read_bytes=(sequences * ctx * kv_elems * kvbytes) if decode else jnp.zeros(()),
            kv_write_bytes=tokens * kv_elems * kvbytes,
            act_bytes=2.0 * tokens * q_width * abytes,
            rows=core_rows * jnp.ones(()),
            context_bytes=shared_ctx * kv_elems * kvbytes * jnp.ones(()),
        )
        ops.append((f"attention_proj{'_sliding' if sliding else ''}{'_moe' if moe else ''}", count, proj))
        ops.append((f"attention_core{'_sliding' if sliding else ''}{'_moe' if moe else ''}", count, core))
        ops.append((f"{'moe' if moe else 'ffn'}{'_sliding' if sliding else ''}", count, _ffn_op(model, shards, tokens, wbytes, abytes, moe)))

    vocab = model.vocab_size / tp
    ops.append(
        (
            "lm_head",
            1,
            OpCost(
                flops=2.0 * d * vocab * sequences,
                weight_bytes=d * vocab * wbytes,
                kv_read_bytes=jnp.zeros(()),
                kv_write_bytes=jnp.zeros(()),
                act_bytes=(tokens * d + sequences * (d + vocab)) * abytes,
                rows=sequences,
            ),
        )
    )
    return ops


def _ffn_op(model, shards, tokens, wbytes, abytes, moe):
    d, tp = model.d_model, shards.tp
    if not moe:
        w = model.ffn_params() / tp
        width = model.ffn_dim / tp
        return OpCost(
            flops=2.0 * w * tokens,
            weight_bytes=w * wbytes,
            kv_read_bytes=jnp.zeros(()),
            kv_write_bytes=jnp.zeros(()),
            act_bytes=tokens * (2.0 * d + 3.0 * width) * abytes,
            rows=tokens,
        )
    E, k = float(model.n_experts), float(model.experts_per_token)
    # Tokens routed inside the expert group: the group spans expert_group / tp replicas.
    group_tokens = tokens * shards.expert_group / tp
    touched = expected_experts_touched(E, k, group_tokens)
    routed_w = (touched / shards.expert_group) * model.expert_params()
    shared_w = model.shared_expert_params() / tp
    router_w = model.router_params()
    flops = 2.0 * tokens * (k * model.expert_params() / tp + shared_w + router_w)
    rows = group_tokens * k / _smooth.exact_max(touched, 1e-9)
    width = (k * model.expert_ffn_dim + model.n_shared_experts * model.shared_expert_ffn_dim) / tp
    return OpCost(
        flops=flops,
        weight_bytes=(routed_w + shared_w + router_w) * wbytes,
        kv_read_bytes=jnp.zeros(()),
        kv_write_bytes=jnp.zeros(()),
        act_bytes=tokens * (2.0 * d * (1.0 + k) + 3.0 * width) * abytes,
        rows=rows,
    )


def weight_bytes_per_chip(model, shards, pp, wbytes):
    """Bytes of weights one chip stores: its share of every expert, head and table."""
    attn = sum(model._attention_parts(shards.tp, shards.kv_shard).values())
    moe = (
        model.n_experts * model.expert_params() / shards.expert_group
        + model.shared_expert_params() / shards.tp
        + model.router_params()
    )
    layers = model.n_layers * attn + model.n_dense_layers * model.ffn_params() / shards.tp
    layers = layers + model.n_moe_layers * moe + 2 * model.d_model * model.n_layers
    # Embedding and head sit on the first and last pipeline stage; spread evenly here.
    return (layers + model.embedding_params() / shards.tp) / pp * wbytes


def kv_bytes_per_chip(model, shards, pp, sequences, context, kvbytes):
    """Bytes of KV cache one chip stores for `sequences` sequences of `context` tokens."""
    per_layer = model.kv_elements_per_token_per_layer(shards.kv_shard) * kvbytes
    total = 0.0
    for sliding, _, count in model.layer_groups:
        ctx = _smooth.smooth_min(context, model.sliding_window) if sliding else context
        total = total + count * per_layer * ctx
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
