"""The transformer decoder: its structure, widths and parameter counts, hardware-free.

A `Transformer` is structure (layer and head counts, which layers are MoE or use a
sliding window) plus float leaves (widths). `diffhw._workload._operators` turns it into
the FLOPs and bytes of each operator group of a step.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth

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

    **Metadata** (static, not read by the maths): `name`, `description`, and
    `max_context`, the context window in tokens (``max_position_embeddings``; 0 when
    unknown), which the command line holds sequence lengths to.
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
    max_context: int = eqx.field(static=True, default=0)  # tokens (max_position_embeddings); 0: unknown

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
