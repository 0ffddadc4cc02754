"""Processing near memory (PNM) and in memory (PIM), and 3D memory-logic stacking.

Compute units attached to a memory tier take a continuous `offload_fraction` of the
memory-bound work of Decode (Prefill, compute-bound, stays on the host): the weight reads of the (GEMV-like) projections and the
KV-cache and shared-context reads of attention. They see an internal bandwidth of
``bandwidth_multiple`` times the tier's external one. Data must be split into shards of
`shard_bytes` (PIM: a DRAM bank, 32-64 MB; PNM: a base die or CXL buffer's memory,
16-32 GB; Ma & Patterson, Table 4); every shard returns a partial result per token that
the host must read and reduce, so many small shards multiply traffic. With the same
equations a datacenter model at large batch pays heavily for PIM and a small model at
batch 1 does not.

3D stacking is PNM with the logic under (or over) the memory: `bandwidth_multiple`
states the extra bandwidth of the through-silicon interface, `j_per_byte` its lower
energy (HBM base die: same bandwidth, 2-3x lower energy), and an optional thermal limit
(`power_density_w_per_mm2` over `footprint_mm2`) caps the near-memory FLOP/s by
dynamic voltage and frequency scaling (power ~ f^3).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth
from . import _memory

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


class NearMemory(eqx.Module):
    """Compute near or in one memory tier of a chip (all units of the chip together).

    - `flop_per_s`: peak FLOP/s of the near-memory units.
    - `j_per_flop`: their energy per FLOP.
    - `bandwidth_multiple`: internal bandwidth over the tier's external bandwidth.
    - `j_per_byte`: energy per byte of internal access.
    - `shard_bytes`: data one unit holds (the shard), bytes.
    - `offload_fraction`: share of the memory-bound work sent near memory, [0, 1].
    - `power_density_w_per_mm2`, `footprint_mm2`: thermal limit of stacked logic (power
      per mm2 of footprint it may dissipate, and the footprint); ``inf`` for none.
    - `bandwidth_density_bytes_per_s_per_mm2`: custom 3D: bandwidth per mm2 of footprint
      of the vertical interface, added to ``bandwidth_multiple x`` the tier's bandwidth.
    - `capacity_penalty`: fraction of the tier's capacity given up to the logic (PIM puts
      units beside the banks and loses density; Ma & Patterson, Table 4), in [0, 1).
    - `price_multiplier`: the tier's $/GB over commodity memory (PIM loses commodity
      pricing; PNM keeps it: 1).
    - `logic_die`: 1 when the units are logic silicon of their own (an HBM4 base die's
      added logic, 3D-stacked dies): charged as area, die cost, bonding and embodied
      carbon (`logic_mm2`); 0 for PIM units inside the DRAM arrays, whose silicon is already
      charged as `capacity_penalty` and `price_multiplier`. Continuous in [0, 1].
    - `tier`: the memory tier it sits on (0 = main memory), static.
    """

    flop_per_s: Scalar = eqx.field(converter=_f)
    j_per_flop: Scalar = eqx.field(converter=_f)
    bandwidth_multiple: Scalar = eqx.field(converter=_f)
    j_per_byte: Scalar = eqx.field(converter=_f)
    shard_bytes: Scalar = eqx.field(converter=_f)
    offload_fraction: Scalar = eqx.field(converter=_f)
    power_density_w_per_mm2: Scalar = eqx.field(converter=_f, default=1e9)
    footprint_mm2: Scalar = eqx.field(converter=_f, default=1.0)
    bandwidth_density_bytes_per_s_per_mm2: Scalar = eqx.field(converter=_f, default=0.0)
    capacity_penalty: Scalar = eqx.field(converter=_f, default=0.0)
    price_multiplier: Scalar = eqx.field(converter=_f, default=1.0)
    logic_die: Scalar = eqx.field(converter=_f, default=1.0)
    tier: int = eqx.field(static=True, default=0)
    name: str = eqx.field(static=True, default="pnm")


def logic_mm2(nm: NearMemory, tech):
    """Silicon area of the near-memory logic (mm2): its FLOP/s at the host node's compute
    density, ``logic_die x flop_per_s x mm2 per FLOP/s`` (the logic is assumed built on
    the host's node, as a base die or stacked die is)."""
    return nm.logic_die * nm.flop_per_s * tech.compute_mm2_per_flop_per_s


def tier_bandwidth(hw, tier: int):
    if tier == 0:
        return hw.memory_bandwidth_bytes_per_s
    return hw.tiers[tier - 1].read_bandwidth_bytes_per_s


def internal_bandwidth(hw):
    """Bytes/s the near-memory units read inside their tier (sustained)."""
    nm = hw.near_memory
    return (
        nm.bandwidth_multiple * tier_bandwidth(hw, nm.tier) + nm.bandwidth_density_bytes_per_s_per_mm2 * nm.footprint_mm2
    ) * hw.profile.bandwidth_efficiency


def thermal_margin_w(hw):
    """The stacked logic's thermal budget (``density x footprint``) less its memory's
    power at full internal bandwidth, W. Below 0 the budget cannot even feed the memory
    it sits on: the design is thermally impossible as specified (its logic would run at
    ~0 FLOP/s and every offloaded step would take forever), so the value checks refuse it."""
    nm = hw.near_memory
    return nm.power_density_w_per_mm2 * nm.footprint_mm2 - internal_bandwidth(hw) * nm.j_per_byte


#: The smallest share of its peak FLOP/s the thermally capped logic is credited with.
#: Below a zero budget (`thermal_margin_w` < 0) the logic would get ~0 FLOP/s and every
#: offloaded step would take ~forever (a TPOT of 1e28 s in float32); the floor keeps
#: times finite and bounded (at most 1000x the uncapped compute time) while the margin
#: flags the design as thermally impossible. A numerical guard, not a physical rate.
THERMAL_FLOOR = 1e-3


def thermal_flop_per_s(nm: NearMemory, internal_bytes_per_s):
    """FLOP/s the stacked logic sustains under its thermal limit.

    The logic may dissipate ``P = density x footprint`` minus the power of its memory
    accesses; at full speed it would need ``flop_per_s x j_per_flop``. Under DVFS power
    goes as ``f^3``, so the sustained rate is ``peak x smooth_min(1, (P / P_peak)^(1/3))``,
    never below ``THERMAL_FLOOR x peak`` (smoothly: the floor's cube is added to the
    power ratio). A budget the memory alone exceeds is flagged by `thermal_margin_w`.
    """
    budget = nm.power_density_w_per_mm2 * nm.footprint_mm2 - internal_bytes_per_s * nm.j_per_byte
    need = nm.flop_per_s * nm.j_per_flop
    ratio = _smooth.softplus(budget / need, sharpness=1000.0) + THERMAL_FLOOR**3  # > 0 when memory eats the budget
    return nm.flop_per_s * _smooth.smooth_min(1.0, ratio ** (1.0 / 3.0))


def near_flop_per_s(hw):
    """FLOP/s the near-memory units of `hw` sustain: their peak under the thermal cap
    at full internal bandwidth (`thermal_flop_per_s`), as `offload` uses it."""
    return thermal_flop_per_s(hw.near_memory, internal_bandwidth(hw))


class Offload(eqx.Module):
    """One operator group split between the host and near-memory units (seconds, bytes)."""

    host_flops: Scalar
    host_extra_bytes: Scalar
    near_time_s: Scalar
    near_flops: Scalar
    near_bytes: Scalar
    shards: Scalar


def offload(hw, op, tau=_smooth.DEFAULT_TAU) -> Offload:
    """Split an `OpCost` between the host and `hw.near_memory`.

    Offloadable bytes are the op's weight, KV and context reads that sit in the unit's
    tier (placement fractions); their FLOPs go with them in proportion. The near side
    takes ``smooth_max(flops / FLOP/s, bytes / internal bandwidth)``; the host sends each
    shard the op's inputs and reads back one partial result per shard:
    ``shards x activation bytes`` where ``shards = offloaded resident bytes / shard_bytes``
    (at least one), i.e. ``(shards - 1) x activation bytes`` more than without. The ratio of that traffic to the weights, ``tokens x width / shard``,
    is why bank-sized PIM shards hurt at datacenter batch sizes and not at batch 1.
    """
    nm = hw.near_memory
    frac = _memory.fractions_of(hw)[:, nm.tier]
    reads, _ = op.reads_writes()
    in_tier = frac[0] * reads[0] + frac[1] * reads[1] + frac[2] * reads[2]
    memory_bound = reads[0] + reads[1] + reads[2]
    share = nm.offload_fraction * _smooth.safe_div(in_tier, memory_bound)
    near_bytes = nm.offload_fraction * in_tier
    near_flops = share * op.flops
    internal_bw = internal_bandwidth(hw)
    flops = near_flop_per_s(hw)
    shards = jnp.where(near_bytes > 0, _smooth.smooth_max(near_bytes / nm.shard_bytes, 1.0), 0.0)
    extra = (shards - 1.0) * op.act_bytes * share  # one shard's exchange is the op's own traffic
    near_time = _smooth.smooth_max(
        _smooth.safe_div(near_flops, flops), _smooth.safe_div(near_bytes, internal_bw), tau=tau
    )
    return Offload(op.flops - near_flops, extra, near_time, near_flops, near_bytes, shards)
