"""The calibration profile: how close a serving stack gets to the hardware's peaks."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


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
    name: str = eqx.field(static=True, default="custom")
