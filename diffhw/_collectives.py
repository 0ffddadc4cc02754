"""Collectives timed with an alpha-beta model on the scale-up fabric.

Each collective is ``steps * (message_latency + hops * link_latency)`` plus the bytes
each chip must move over its link bandwidth (Hockney's alpha-beta model; Thakur,
Rabenseifner and Gropp, "Optimization of collective communication operations in
MPICH", IJHPCA 2005). Richer topologies come with the interconnect work.
"""

import jax.numpy as jnp

from ._hardware import hops_per_step


def _alpha(hw, steps):
    """Latency of a collective of `steps` sequential steps, plus the software's fixed
    cost per call (`Profile.collective_latency_s`)."""
    per_step = hw.message_latency_s + hops_per_step(hw.topology, None) * hw.link_latency_s
    return hw.profile.collective_latency_s + steps * per_step


def _bandwidth(hw):
    return hw.link_bandwidth_bytes_per_s * hw.profile.network_efficiency


def allreduce_bytes(message_bytes, chips):
    """Bytes each chip sends in a bandwidth-optimal all-reduce: ``2 (p-1)/p * bytes``."""
    p = jnp.asarray(chips, dtype=float)
    return 2.0 * (p - 1.0) / p * message_bytes


def alltoall_bytes(message_bytes, chips):
    """Bytes each chip sends in an all-to-all: the ``(p-1)/p`` that leave the chip."""
    p = jnp.asarray(chips, dtype=float)
    return (p - 1.0) / p * message_bytes


def allreduce_time(hw, message_bytes, chips):
    """All-reduce of `message_bytes` (per chip) among `chips` chips, in seconds.

    Bandwidth term of the ring/reduce-scatter+all-gather algorithm,
    ``2 (p-1)/p * bytes / BW``. Latency: a ring takes ``2 (p-1)`` steps; through a switch
    (or a full mesh) recursive halving/doubling takes ``2 log2 p`` steps.
    Zero for one chip.
    """
    p = jnp.asarray(chips, dtype=float)
    if hw.topology in ("switch", "mesh"):
        steps = 2.0 * jnp.log2(p)
    else:
        steps = 2.0 * (p - 1.0)
    t = _alpha(hw, steps) + allreduce_bytes(message_bytes, p) / _bandwidth(hw)
    return jnp.where(p > 1.0, t, 0.0)


def alltoall_time(hw, message_bytes, chips):
    """All-to-all where each chip sends `message_bytes` in total, spread over the others.

    Through a switch or full mesh the ``p-1`` sends go at once (one latency step); on a
    ring they take ``p/2`` steps on average. ``(p-1)/p`` of the bytes leave the chip.
    """
    p = jnp.asarray(chips, dtype=float)
    steps = 1.0 if hw.topology in ("switch", "mesh") else p / 2.0
    t = _alpha(hw, steps) + alltoall_bytes(message_bytes, p) / _bandwidth(hw)
    return jnp.where(p > 1.0, t, 0.0)


def p2p_time(hw, message_bytes):
    """One point-to-point send of `message_bytes` (pipeline stage to stage)."""
    return _alpha(hw, 1.0) + message_bytes / _bandwidth(hw)
