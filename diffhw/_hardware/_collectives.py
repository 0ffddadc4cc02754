"""Collectives of the model's parallelism, timed on the hardware's fabric.

Each collective is the topology-aware alpha-beta time of `diffhw._hardware._collective_algorithms` (message
latency plus hops x hop latency per step, bytes over link bandwidth), plus the serving
stack's fixed cost per collective call (`Profile.collective_latency_s`) and per peer step
(`Profile.collective_step_latency_s`: ``2 (p-1)`` steps per all-reduce, ``p-1`` per
all-to-all, one per send), plus, when the
hardware models stragglers, the expected wait for the slowest participant (or the
timeout after which stale data is used). Where packets land (on-chip SRAM or DRAM) adds
a per-step latency (`NetworkOptions`).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._smooth import smooth_min
from . import _collective_algorithms as _algorithms
from . import _endpoints, _topology

Scalar = Float[Array, ""]


def _f(x):
    return jnp.asarray(x, dtype=float)


class NetworkOptions(eqx.Module):
    """How collectives run on the fabric (part of `Hardware`).

    - `switch_radix`: ports per switch (fat tree, dragonfly), `torus_dims`: dimensions
      of a ``torus_hd``.
    - `packet_sram_fraction`: share of received messages that land in on-chip SRAM (the
      rest land in DRAM); `sram_landing_latency_s`, `dram_landing_latency_s`: the
      latency each adds to a message step (0 by default: already in `message_latency_s`).
    - `straggler_scale_s`: mean of the exponential tail of each participant's arrival;
      `straggler_timeout_s`: how long a collective waits before using stale data.
    - `algorithm`: all-reduce algorithm, ``"auto"`` (smooth minimum of ring, tree and
      recursive doubling, plus in-network reduction where enabled) or one of
      `diffhw._hardware._collective_algorithms.ALLREDUCE_ALGORITHMS` (static).
    - `in_network_reduction`: the switches reduce (NVLink SHARP class), static.
    - `stragglers`: model stragglers (static; off by default).
    """

    switch_radix: Scalar = eqx.field(converter=_f, default=64.0)
    torus_dims: Scalar = eqx.field(converter=_f, default=6.0)
    packet_sram_fraction: Scalar = eqx.field(converter=_f, default=0.0)
    sram_landing_latency_s: Scalar = eqx.field(converter=_f, default=0.0)
    dram_landing_latency_s: Scalar = eqx.field(converter=_f, default=0.0)
    straggler_scale_s: Scalar = eqx.field(converter=_f, default=0.0)
    straggler_timeout_s: Scalar = eqx.field(converter=_f, default=1.0)
    algorithm: str = eqx.field(static=True, default="auto")
    in_network_reduction: bool = eqx.field(static=True, default=False)
    stragglers: bool = eqx.field(static=True, default=False)


def _topo(hw):
    return "switch" if hw.topology == "none" else hw.topology


def _kw(hw):
    return dict(radix=hw.network.switch_radix, dims=hw.network.torus_dims)


def _bandwidth(hw):
    return hw.link_bandwidth_bytes_per_s * hw.profile.network_efficiency


def _step_latency(hw, message_bytes):
    n = hw.network
    land = _endpoints.landing_latency_s(
        message_bytes, n.packet_sram_fraction, n.sram_landing_latency_s, n.dram_landing_latency_s
    )
    return hw.message_latency_s + land


def _extra(hw, chips, t, steps):
    """Per-call and per-step software cost (`steps` peer steps) and, when modelled, the
    wait for the slowest of `chips`."""
    n = hw.network
    out = hw.profile.collective_latency_s + steps * hw.profile.collective_step_latency_s + t
    if n.stragglers:
        wait, _ = _endpoints.timeout_time(chips, 0.0, n.straggler_scale_s, n.straggler_timeout_s)
        out = out + wait
    return jnp.where(jnp.asarray(chips, dtype=float) > 1.0, out, 0.0)


def allreduce_bytes(message_bytes, chips):
    """Bytes each chip sends in a bandwidth-optimal all-reduce: ``2 (p-1)/p * bytes``
    (``bytes`` once each way with in-network reduction; the energy model uses this
    bound)."""
    p = jnp.asarray(chips, dtype=float)
    return 2.0 * (p - 1.0) / p * message_bytes


def alltoall_bytes(message_bytes, chips):
    """Bytes each chip sends in an all-to-all: the ``(p-1)/p`` that leave the chip."""
    p = jnp.asarray(chips, dtype=float)
    return (p - 1.0) / p * message_bytes


def allreduce_time(hw, message_bytes, chips):
    """All-reduce of `message_bytes` (per chip) among `chips` chips (seconds).

    ``"auto"`` takes the smooth minimum of ring, tree and recursive doubling, and of
    in-network reduction when the hardware's switches reduce.
    """
    topo, a = _topo(hw), _step_latency(hw, message_bytes)
    args = (message_bytes, chips, _bandwidth(hw), hw.link_latency_s, a, topo)
    algo = hw.network.algorithm
    if algo == "auto":
        names = ["ring", "tree", "recursive_doubling"]
        if hw.network.in_network_reduction and topo in _topology.SWITCHED_TOPOLOGIES:
            names.append("in_network")
        t = smooth_min(*[_algorithms.allreduce_time(*args, name, **_kw(hw)) for name in names])
    else:
        t = _algorithms.allreduce_time(*args, algo, **_kw(hw))
    return _extra(hw, chips, t, 2.0 * (jnp.asarray(chips, dtype=float) - 1.0))


def alltoall_time(hw, message_bytes, chips):
    """All-to-all where each chip sends `message_bytes` in total (seconds): one step of
    average hops, bytes bounded by injection and by the bisection."""
    a = _step_latency(hw, message_bytes)
    t = _algorithms.alltoall_time(message_bytes, chips, _bandwidth(hw), hw.link_latency_s, a, _topo(hw), **_kw(hw))
    return _extra(hw, chips, t, jnp.asarray(chips, dtype=float) - 1.0)


def p2p_time(hw, message_bytes):
    """One point-to-point send of `message_bytes` to a neighbour (pipeline stage to stage)."""
    hops = _topology.neighbour_hops(_topo(hw))
    a = _step_latency(hw, message_bytes)
    p = hw.profile
    return p.collective_latency_s + p.collective_step_latency_s + _algorithms.p2p_time(
        message_bytes, hops, _bandwidth(hw), hw.link_latency_s, a
    )
