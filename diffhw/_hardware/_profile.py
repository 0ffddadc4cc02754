"""The calibration profile: how close a serving stack gets to the hardware's peaks."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._smooth import exact_min


def _f(x):
    return jnp.asarray(x, dtype=float)


Scalar = Float[Array, ""]


class Profile(eqx.Module):
    """Software efficiency: the "calibration profile" of a hardware + serving stack.

    These terms say how close a serving stack gets to the hardware's peaks. They are
    part of `Hardware` (as ``hardware.profile``) so a user can swap them, and they are
    float leaves so they can be fitted by gradient descent.

    **Fields:**

    - `bandwidth_efficiency`: achievable fraction of peak memory bandwidth, in (0, 1].
    - `compute_efficiency`: achievable fraction of peak FLOP/s on large matrices, (0, 1].
    - `compute_half_rows`: rows M of a matrix multiply at which its efficiency is half
      of `compute_efficiency`: ``eff(M) = compute_efficiency * M / (M + half_rows)``
      (tile quantisation and launch tails of skinny GEMMs), >= 0.
    - `network_efficiency`: achievable fraction of link bandwidth in collectives, (0, 1].
    - `collective_latency_s`: software time per collective call (kernel launch and
      synchronisation of the communication library), on top of the fabric's latency,
      >= 0.
    - `step_overhead_s`: fixed time per Decode step or Prefill pass (scheduling,
      sampling, host synchronisation), >= 0.
    - `layer_overhead_s`: fixed time per layer per step (kernel launches, norms,
      small ops the roofline does not see), >= 0.
    - `memory_utilization`: fraction of memory capacity the stack may use, (0, 1].
    - `max_batched_tokens`: tokens per Prefill chunk (sets activation memory and
      pipeline micro-batching of Prefill), > 0.
    - `collective_step_latency_s`: software time per peer step of a collective, on top
      of `collective_latency_s` and of the fabric's latency: an all-reduce among ``p``
      chips pays it ``2 (p-1)`` times (the steps of a ring, as NCCL runs within a node),
      an all-to-all ``p-1`` times, a send once; >= 0, default 0 (a stack whose
      collective cost does not grow with the chip count). NCCL's own cost model charges
      0.6-3.4 us per NVLink ring step (LL to Simple protocol, `src/graph/tuning.cc`).
    - `sequence_overhead_s`: host time per sequence in a Decode step or Prefill pass
      (sampling, logits processing, stop checks and bookkeeping done per request), >= 0,
      default 0 (a stack that does these batched on the accelerator).
    - `fp8_compute_ratio`, `fp4_compute_ratio`, `int8_compute_ratio`: the share of its
      peak a format's matrix work reaches, relative to bf16/fp16's: matrix work in that
      format runs at ``peak_format * compute_efficiency * ratio`` (and the same
      ``M / (M + compute_half_rows)`` in the rows), never below the next wider format's
      rate (`Hardware.matmul_flop_per_s`: a chip without the format's units runs the
      wider path). > 0, default 1 (every format reaches
      the same share). Low-precision GEMMs reach a smaller share of their (doubled) peak:
      block-scale handling, operand conversion and the unchanged epilogue and memory
      system take a larger part of each tile (`precision_ratio`).
    - `moe_efficiency`: the share of the dense layers' rates (compute and memory) that
      the routed-expert matrix multiplies of an MoE block reach: their FLOPs and weight
      bytes take ``1 / moe_efficiency`` times the roofline time of dense GEMMs with the
      same rows (grouped GEMMs over many small, ragged per-expert problems: rows padded to
      the tile per expert, per-expert prologues and tails, uneven experts). (0, 1],
      default 1 (as fast as dense GEMMs, as DeepGEMM's grouped kernels run on Hopper:
      1,093-1,297 TFLOPS contiguous and up to 2,064 GB/s masked, against 1,025-1,358
      TFLOPS for its dense GEMMs of the same shapes; github.com/deepseek-ai/DeepGEMM
      README, 2025).
    - `moe_exposed_fraction`: share of the MoE dispatch/combine all-to-all left exposed,
      in [0, 1]: with two micro-batches one's all-to-all runs under the other's layers
      (SGLang's two-batch overlap, ``--enable-two-batch-overlap``, on DeepEP; DeepSeek's
      inference system), so the exposed all-to-all is
      ``t_a2a - (1 - moe_exposed_fraction) * min(t_a2a, t_roofline)``; default 1 (all
      exposed, as TensorRT-LLM and vLLM run it), 0 with two-batch overlap. (Held as the
      exposed share, not the hidden one, so that its default sits inside the range a
      finite difference steps through.)
    - `max_batch_size`: most sequences one engine instance (one data-parallel replica)
      schedules in a step (vLLM ``max_num_seqs``, TensorRT-LLM ``max_batch_size``), > 0,
      default 1e9 (no limit). `max_throughput` searches batches up to
      ``dp * min(max_batch_size, max_batched_tokens)``: a Decode step schedules at least
      one token per sequence within the step's token budget.
    """

    bandwidth_efficiency: Scalar = eqx.field(converter=_f)
    compute_efficiency: Scalar = eqx.field(converter=_f)
    compute_half_rows: Scalar = eqx.field(converter=_f)
    network_efficiency: Scalar = eqx.field(converter=_f)
    collective_latency_s: Scalar = eqx.field(converter=_f)
    step_overhead_s: Scalar = eqx.field(converter=_f)
    layer_overhead_s: Scalar = eqx.field(converter=_f)
    memory_utilization: Scalar = eqx.field(converter=_f)
    max_batched_tokens: Scalar = eqx.field(converter=_f)
    collective_step_latency_s: Scalar = eqx.field(converter=_f, default=0.0)
    sequence_overhead_s: Scalar = eqx.field(converter=_f, default=0.0)
    fp8_compute_ratio: Scalar = eqx.field(converter=_f, default=1.0)
    fp4_compute_ratio: Scalar = eqx.field(converter=_f, default=1.0)
    int8_compute_ratio: Scalar = eqx.field(converter=_f, default=1.0)
    max_batch_size: Scalar = eqx.field(converter=_f, default=1e9)
    moe_efficiency: Scalar = eqx.field(converter=_f, default=1.0)
    moe_exposed_fraction: Scalar = eqx.field(converter=_f, default=1.0)
    name: str = eqx.field(static=True, default="custom")

    def precision_ratio(self, column):
        """The compute-efficiency multiplier of a `Hardware` peak column
        (``"fp32" | "bf16" | "fp8" | "int8" | "fp4"``): 1 for fp32 and bf16, the
        profile's ratio for the others (dimensionless)."""
        if column in ("fp8", "fp4", "int8"):
            return getattr(self, f"{column}_compute_ratio")
        return jnp.ones(())

    def engine_batch_limit(self):
        """Most sequences one engine instance runs in a Decode step:
        ``min(max_batch_size, max_batched_tokens)`` (exact: an engine limit is a hard cap)."""
        return exact_min(self.max_batch_size, self.max_batched_tokens)
