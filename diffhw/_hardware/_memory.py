"""Memory tiers and the placement of data classes across them.

A chip's main memory (its HBM, GDDR or LPDDR, from the `Hardware` fields) is tier 0;
`Hardware.tiers` adds more (High Bandwidth Flash, DDR5 or CXL DRAM, SSD...). Each data
class (weights, KV cache, a read-only shared context, activations) is spread over the
tiers by continuous fractions (`Placement`), so placement is optimisable by gradient.
Tiers serve a step in parallel (smooth max of per-tier times) or one after another.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _smooth

Scalar = Float[Array, ""]

#: Data classes, in the row order of `Placement.fractions`.
DATA_CLASSES = ("weights", "kv_cache", "context", "activations")

#: Endurance of DRAM/SRAM ("unlimited"): large and finite, so no inf reaches a gradient.
UNLIMITED_CYCLES = 1e15


def _f(x):
    return jnp.asarray(x, dtype=float)


class MemoryTier(eqx.Module):
    """One extra memory tier of a chip (per chip, SI units).

    - `capacity_bytes`, `read_bandwidth_bytes_per_s`, `write_bandwidth_bytes_per_s`.
    - `read_latency_s`: time to first byte of a read.
    - `granularity_bytes`: bytes per device access; a smaller access still moves a
      whole unit (HBF and SSD read 4096-byte pages, HBM 32 bytes).
    - `prefetch_buffer_bytes`: on-chip buffer that keeps reads in flight; sustaining the
      bandwidth needs ``bandwidth x latency`` of it (Little's law, `needed_buffer_bytes`).
    - `read_j_per_byte`, `write_j_per_byte`: access energy.
    - `endurance_cycles`: program/erase cycles per cell (`UNLIMITED_CYCLES` for DRAM;
      NAND from ~1e3 (QLC, TLC) to ~1e5 (SLC, SanDisk's HBF): see ``memory.toml``).
    - `usd_per_byte`, `kgco2e_per_byte`: price and embodied carbon.
    - `phy_mm2`: area of the tier's interface (PHYs, controllers) on the logic die.
    - `buffered_append_fraction`: the write path, in [0, 1]: the fraction of small writes
      (Decode's one-token KV appends) gathered into whole `granularity_bytes` units in
      SRAM/HBM before they are programmed (1, the default: as a flash controller is built,
      no write amplification); the rest is programmed unbuffered, one unit per append
      (``granularity / append`` amplification). See `write_amplification`.
    - `name`: static label (``"hbf"``).
    """

    capacity_bytes: Scalar = eqx.field(converter=_f)
    read_bandwidth_bytes_per_s: Scalar = eqx.field(converter=_f)
    write_bandwidth_bytes_per_s: Scalar = eqx.field(converter=_f)
    read_latency_s: Scalar = eqx.field(converter=_f)
    granularity_bytes: Scalar = eqx.field(converter=_f)
    prefetch_buffer_bytes: Scalar = eqx.field(converter=_f)
    read_j_per_byte: Scalar = eqx.field(converter=_f)
    write_j_per_byte: Scalar = eqx.field(converter=_f)
    endurance_cycles: Scalar = eqx.field(converter=_f)
    usd_per_byte: Scalar = eqx.field(converter=_f)
    kgco2e_per_byte: Scalar = eqx.field(converter=_f)
    phy_mm2: Scalar = eqx.field(converter=_f, default=0.0)
    buffered_append_fraction: Scalar = eqx.field(converter=_f, default=1.0)
    name: str = eqx.field(static=True, default="tier")


class Placement(eqx.Module):
    """Fractions of each data class held in each tier: `fractions[c, t]`, rows (one per
    `DATA_CLASSES` entry) summing to 1, tier 0 being main memory. Build one from free
    logits with `placement_from_logits` to optimise it by gradient."""

    fractions: Float[Array, "4 tiers"] = eqx.field(converter=_f)


def placement_from_logits(logits) -> Placement:
    """``softmax`` over tiers of a ``(4, tiers)`` array of free logits."""
    return Placement(jax.nn.softmax(jnp.asarray(logits, dtype=float), axis=-1))


def placement(n_tiers: int, **classes) -> Placement:
    """A `Placement` from per-class fraction lists, e.g. ``placement(2, weights=[0.2, 0.8])``;
    classes not named stay in main memory."""
    rows = []
    for c in DATA_CLASSES:
        row = classes.get(c, [1.0] + [0.0] * (n_tiers - 1))
        rows.append(jnp.asarray(row, dtype=float))
    return Placement(jnp.stack(rows))


def fractions_of(hw):
    """The ``(4, 1 + len(hw.tiers))`` placement matrix, defaulting to main memory."""
    n = 1 + len(hw.tiers)
    if hw.placement is None:
        return jnp.zeros((len(DATA_CLASSES), n)).at[:, 0].set(1.0)
    return hw.placement.fractions


def _per_tier(fractions, by_class):
    """``fractions.T @ by_class`` as an elementwise sum (a tiny matmul vmaps badly)."""
    return jnp.sum(fractions * by_class[:, None], axis=0)


def items_that_fit(hw, fixed_by_class, per_item_by_class):
    """How many items (sequences, requests) fit in the tightest tier beside what is
    fixed, both given by data class (`DATA_CLASSES` order, bytes): per tier ``(capacity -
    fixed) / per item``, 0 where the fixed part alone overflows, inf where an item
    takes no room there."""
    frac = fractions_of(hw)
    fixed = _per_tier(frac, fixed_by_class)
    per = _per_tier(frac, per_item_by_class)
    caps = capacities(hw)
    room = _smooth.exact_max(caps - fixed, 0.0)
    n = jnp.where(per > 0.0, room / jnp.where(per > 0.0, per, 1.0), jnp.inf)
    return jnp.where(jnp.all(caps >= fixed), jnp.min(n), 0.0)


def access_efficiency(access_bytes, granularity_bytes):
    """Useful fraction of bytes moved when accesses of `access_bytes` hit a device that
    reads `granularity_bytes` at a time: ``access / smooth_max(access, granularity)``."""
    return access_bytes / _smooth.smooth_max(access_bytes, granularity_bytes)


def write_amplification(tier: MemoryTier, write_bytes):
    """Bytes a tier programs per byte written in accesses of `write_bytes` (>= 1).

    A write smaller than the tier's unit (a 576-byte KV append to a 4096-byte flash
    page) programs a whole unit when it goes straight to the device: amplification
    ``1 / access_efficiency(write, granularity)``. Appends buffered in SRAM/HBM until a
    whole unit is full are programmed once: amplification 1. With the tier's
    `buffered_append_fraction` ``f`` of appends buffered (smooth, linear in ``f``):
    ``1 + (1 - f) * (1 / access_efficiency - 1)``. Writes of a unit or more (Prefill's KV
    of a whole prompt) see about 1 whatever ``f``. The staging buffer this needs, about
    one unit per sequence, layer and KV head being appended to (16 MB for DeepSeek-V3 at
    batch 64), is small beside HBM and is not counted."""
    direct = 1.0 / access_efficiency(write_bytes, tier.granularity_bytes)
    return 1.0 + (1.0 - tier.buffered_append_fraction) * (direct - 1.0)


def written_in_runs(access, tokens):
    """`access` (``(read, write)`` sizes by data class, `diffhw._workload._operators.access_bytes`,
    whose KV writes are one token's appends) with the KV-cache and context writes made
    `tokens` tokens long: a Prefill pass writes each prompt's KV in one run."""
    reads, writes = access
    return reads, writes * jnp.stack([jnp.ones(()), tokens * jnp.ones(()), tokens * jnp.ones(()), jnp.ones(())])


def sustained_bandwidth(tier: MemoryTier):
    """Read bandwidth a tier sustains with its prefetch buffer: Little's law caps the
    bytes in flight at the buffer, ``smooth_min(BW, buffer / latency)``. It reaches the
    full bandwidth at ``buffer = BW x latency`` (`needed_buffer_bytes`)."""
    return _smooth.smooth_min(
        tier.read_bandwidth_bytes_per_s, _smooth.safe_div(tier.prefetch_buffer_bytes, tier.read_latency_s)
    )


def needed_buffer_bytes(tier: MemoryTier):
    """On-chip buffer that sustains the tier's full read bandwidth: ``bandwidth x
    latency`` (Little's law: bytes in flight = throughput x latency). This is the rule
    `sustained_bandwidth` (and so every step time) uses: more buffer than this does not
    make a step faster (8 HBF stacks at 2 us: 26 MB; SK hynix H3 provisions 40 MB, Ma &
    Patterson 2026). Double buffering (``2 x``) would matter only if data waited in the
    buffer for compute after arriving; the model streams it straight into the roofline,
    so it is not charged."""
    return tier.read_bandwidth_bytes_per_s * tier.read_latency_s


def tier_traffic(hw, by_class, access_by_class):
    """Bytes each extra tier really moves for `by_class` useful bytes read: accesses
    smaller than the tier's granularity move whole units (array over `hw.tiers`)."""
    frac = fractions_of(hw)
    moved = []
    for i, tier in enumerate(hw.tiers, start=1):
        useful = access_efficiency(access_by_class, tier.granularity_bytes)
        moved.append(jnp.sum(frac[:, i] * by_class / useful))
    return moved


def tier_write_traffic(hw, writes_by_class, access_by_class):
    """Bytes each extra tier programs for `writes_by_class` bytes written in accesses of
    `access_by_class` bytes: `write_amplification` under the tier's write path (list over
    `hw.tiers`)."""
    frac = fractions_of(hw)
    return [jnp.sum(frac[:, i] * writes_by_class * write_amplification(tier, access_by_class))
            for i, tier in enumerate(hw.tiers, start=1)]


def tier_times(hw, reads_by_class, writes_by_class, access):
    """Seconds each tier needs for a step's traffic (array, one entry per tier).

    Tier 0 (main memory) moves ``reads + writes`` at ``bandwidth x bandwidth_efficiency``
    (as without tiers). An extra tier moves its reads at its sustained bandwidth and its
    writes at its write bandwidth, reads inflated where accesses are smaller than its
    granularity, writes by its `write_amplification`.

    **Arguments:** arrays over `DATA_CLASSES` of bytes read and written, and `access`,
    the ``(read, write)`` access sizes of each class (`diffhw._workload._operators.access_bytes`).
    """
    frac = fractions_of(hw)
    eff = hw.profile.bandwidth_efficiency
    main = jnp.sum(frac[:, 0] * (reads_by_class + writes_by_class)) / (hw.memory_bandwidth_bytes_per_s * eff)
    reads = tier_traffic(hw, reads_by_class, access[0])
    writes = tier_write_traffic(hw, writes_by_class, access[1])
    times = [main] + [
        r / (sustained_bandwidth(t) * eff) + w / (t.write_bandwidth_bytes_per_s * eff)
        for t, r, w in zip(hw.tiers, reads, writes)
    ]
    return jnp.stack(times)


def memory_time(hw, reads_by_class, writes_by_class, access, tau):
    """A step's memory time over tiers: smooth max (tiers in parallel) or sum (serial)."""
    t = tier_times(hw, reads_by_class, writes_by_class, access)
    if len(hw.tiers) == 0:
        return t[0]
    if hw.tier_access == "serial":
        return jnp.sum(t)
    return _smooth.smooth_max(*[t[i] for i in range(t.shape[0])], tau=tau)


def raw_capacities(hw):
    """Capacity of each tier (bytes), less what near-memory logic takes from its tier."""
    caps = jnp.stack([hw.memory_capacity_bytes] + [t.capacity_bytes for t in hw.tiers])
    nm = hw.near_memory
    if nm is not None:
        caps = caps.at[nm.tier].multiply(1.0 - nm.capacity_penalty)
    return caps


def capacities(hw):
    """Usable capacity of each tier (bytes): capacity x memory_utilization."""
    return raw_capacities(hw) * hw.profile.memory_utilization


def endurances(hw):
    return jnp.stack([jnp.asarray(UNLIMITED_CYCLES)] + [t.endurance_cycles for t in hw.tiers])


class TierReport(eqx.Module):
    """Per-tier figures (arrays with one entry per tier, tier 0 = main memory).

    - `occupancy_bytes`, `capacity_bytes` (usable), `margin` (``capacity / occupancy - 1``).
    - `read_bytes_per_s`, `write_bytes_per_s`: traffic over a request's life (Prefill and
      Decode); writes are the bytes programmed, after `write_amplification`.
    - `lifetime_s`: wear-out time, ``capacity x endurance / write rate`` (writes spread
      over the whole tier by wear levelling).
    - `needed_buffer_bytes`: on-chip buffer to sustain the bandwidth, ``bandwidth x
      latency`` (0 for main memory; `needed_buffer_bytes`).
    """

    occupancy_bytes: Array
    capacity_bytes: Array
    margin: Array
    read_bytes_per_s: Array
    write_bytes_per_s: Array
    lifetime_s: Array
    needed_buffer_bytes: Array
    names: tuple = eqx.field(static=True)

    def lifetime_margin(self, required_s):
        """Dimensionless wear-out margin of every tier, ``lifetime / required - 1``
        (>= 0 when the tier lasts; e.g. ``required_s`` = 5 years for "HBF must last 5
        years")."""
        return self.lifetime_s / required_s - 1.0


def tier_report(hw, stored_by_class, reads_per_s_by_class, writes_per_s_by_class, access,
                more_writes=()) -> TierReport:
    """Occupancy, traffic and wear of every tier (see `TierReport`). Writes are charged
    the tier's `write_amplification` for their access size (``access[1]``); `more_writes`
    adds writes of other sizes as ``(writes_per_s_by_class, write_bytes_by_class)`` pairs
    (Prefill's KV of a whole prompt, written in one run, beside Decode's appends)."""
    frac = fractions_of(hw)
    occ = _per_tier(frac, stored_by_class)
    cap = capacities(hw)
    reads = jnp.stack([jnp.sum(frac[:, 0] * reads_per_s_by_class)] + tier_traffic(hw, reads_per_s_by_class, access[0]))
    pairs = ((writes_per_s_by_class, access[1]),) + tuple(more_writes)
    writes = jnp.stack([sum(jnp.sum(frac[:, 0] * w) for w, _ in pairs)]
                       + [sum(x) for x in zip(*(tier_write_traffic(hw, w, a) for w, a in pairs))])
    life = raw_capacities(hw) * endurances(hw) / _smooth.smooth_max(writes, 1.0)  # >= 1 B/s: finite
    buf = jnp.stack([jnp.zeros(())] + [needed_buffer_bytes(t) for t in hw.tiers])
    names = ("main",) + tuple(t.name for t in hw.tiers)
    return TierReport(occ, cap, cap / _smooth.smooth_max(occ, 1.0) - 1.0, reads, writes, life, buf, names)
