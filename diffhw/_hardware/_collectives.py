"""Collectives of the model's parallelism, timed on the hardware's fabric.

Each collective is the topology-aware alpha-beta time of `diffhw._hardware._collective_algorithms` (message
latency plus hops x hop latency per step, bytes over link bandwidth), plus the serving
stack's fixed cost per collective call (`Profile.collective_latency_s`) and per peer step
(`Profile.collective_step_latency_s`: ``2 (p-1)`` steps per all-reduce, ``p-1`` per
all-to-all, one per send), plus, when the
hardware models stragglers, the expected wait for the slowest participant (or the
timeout after which stale data is used). Where packets land (on-chip SRAM or DRAM) adds
a per-step latency (`NetworkOptions`).

Multi-node systems (`ScaleOut`): a system of many chips is built of scale-up domains
(an 8-GPU NVLink node, a 72-GPU NVL72 rack, a TPU slice) joined by a slower scale-out
network (InfiniBand or RoCE, one NIC per chip). Chips are numbered tensor-parallel rank
first, then data-parallel replica, then pipeline stage, and a domain holds
`ScaleOut.domain_chips` consecutive chips, so a group of ``p`` consecutive chips has
``m = min(p, S)`` members in each chip's own domain and spans ``p / m`` domains. The
part of a collective that leaves the domain runs on the scale-out network: an
all-reduce hierarchically (inside the domain, then among the domains on ``M / m`` per
chip, each chip driving its own NIC), an all-to-all with the ``(p - m) / p`` of each
chip's bytes bound for other domains over its NIC while the rest crosses the scale-up
fabric at the same time. A group inside one domain (``p <= S``) is timed exactly as
without a `ScaleOut`.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._smooth import exact_clip, exact_min, smooth_max, smooth_min, where
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


class ScaleOut(eqx.Module):
    """The scale-out network between the scale-up domains of a multi-node system (part
    of `Hardware`; None: every chip in one domain).

    - `domain_chips`: chips in one scale-up domain (8 on an HGX/DGX node, 72 in a GB200
      NVL72 rack).
    - `bandwidth_bytes_per_s`: scale-out bandwidth per chip, one direction (its NIC:
      400 Gb/s ConnectX-7 = 50e9 B/s on a DGX H100).
    - `latency_s`: latency of one message between domains (NIC, switches, RDMA),
      in place of the scale-up fabric's hop and message latencies.

    The scale-out fabric is taken as non-blocking (a rail-optimised fat tree): each
    chip's NIC binds. The profile's `network_efficiency` applies to it too.
    """

    domain_chips: Scalar = eqx.field(converter=_f)
    bandwidth_bytes_per_s: Scalar = eqx.field(converter=_f)
    latency_s: Scalar = eqx.field(converter=_f)


def domain_members(hw, chips):
    """Members of a group of `chips` consecutive chips inside one scale-up domain:
    ``min(chips, domain_chips)`` (`chips` without a `ScaleOut`)."""
    p = jnp.asarray(chips, dtype=float)
    return p if hw.scale_out is None else exact_min(p, hw.scale_out.domain_chips)


def _out_bandwidth(hw):
    return hw.scale_out.bandwidth_bytes_per_s * hw.profile.network_efficiency


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

    Across scale-up domains (`ScaleOut`, a group wider than a domain): hierarchical, the
    all-reduce inside each domain's ``m`` chips plus one among the ``n = p / m`` domains
    on ``M / m`` bytes per chip over the scale-out network (each of the ``m`` chips
    drives its own NIC) as a ring: ``2 (n-1) (a_out + M / (m n B_out))``.
    """
    topo, a = _topo(hw), _step_latency(hw, message_bytes)
    m = domain_members(hw, chips)
    args = (message_bytes, m, _bandwidth(hw), hw.link_latency_s, a, topo)
    algo = hw.network.algorithm
    if algo == "auto":
        names = ["ring", "tree", "recursive_doubling"]
        if hw.network.in_network_reduction and topo in _topology.SWITCHED_TOPOLOGIES:
            names.append("in_network")
        # every algorithm from one trace of what they share, each zero on one chip
        candidates = _algorithms.allreduce_candidates(*args, **_kw(hw))
        several = m > 1.0
        t = smooth_min(*[jnp.where(several, candidates[name], 0.0) for name in names])
    else:
        t = _algorithms.allreduce_time(*args, algo, **_kw(hw))
    steps = 2.0 * (m - 1.0)
    if hw.scale_out is not None:
        n = jnp.asarray(chips, dtype=float) / m  # domains spanned (1.0 exactly inside one; m >= 1)
        # a ring among the domains: 2 (n-1) steps of the scale-out latency, 2 (n-1)/n of M/m
        t_out = 2.0 * (n - 1.0) * (hw.scale_out.latency_s + message_bytes / (m * n * _out_bandwidth(hw)))
        t = t + t_out
        steps = steps + 2.0 * (n - 1.0)
    return _extra(hw, chips, t, steps)


def alltoall_time(hw, message_bytes, chips, fanout=1.0):
    """All-to-all where each chip sends `message_bytes` in total (seconds): one step of
    average hops, bytes bounded by injection and by the bisection.

    Across scale-up domains (`ScaleOut`): of the ``M/p`` a chip sends to each of the
    ``p`` chips, the ``m`` of its own domain get theirs over the scale-up fabric (an
    all-to-all among ``m`` chips of ``M m / p``) while the ``(p - m) M / p`` for other
    domains leave through its NIC at the same time (DeepEP's internode kernels send
    RDMA and NVLink traffic concurrently); the slower of the two, smoothly, sets the time.

    `fanout`: copies of each item in `message_bytes` (an MoE dispatch sends each token to
    ``k`` experts). Across domains an item goes once to each other domain that one of
    its copies is bound for, and is forwarded inside that domain over the scale-up
    fabric (DeepEP's internode kernels: one RDMA send per destination node, NVLink
    forwarding there; github.com/deepseek-ai/DeepEP README): with the copies' chips
    uniform over the ``D = p / m`` domains, ``(D - 1) (1 - (1 - 1/D)^k)`` sends per item
    instead of ``k (D - 1) / D`` (the same at ``k = 1``).
    """
    p = jnp.asarray(chips, dtype=float)
    m = domain_members(hw, p)
    share = 1.0 if hw.scale_out is None else m / p  # 1.0 exactly inside one domain (p >= 1)
    a = _step_latency(hw, message_bytes * share)
    t = _algorithms.alltoall_time(message_bytes * share, m, _bandwidth(hw), hw.link_latency_s, a, _topo(hw),
                                  **_kw(hw))
    if hw.scale_out is not None:
        # the latency ramps in over the first chip beyond the domain (exact at whole
        # chips), so the time is continuous in a relaxed chip or domain count
        ramp = exact_clip(p - m, 0.0, 1.0)
        out = message_bytes / fanout * (1.0 / share - 1.0) * (1.0 - (1.0 - share) ** fanout)
        t_out = ramp * hw.scale_out.latency_s + out / _out_bandwidth(hw)
        t = where(p > m, smooth_max(t, t_out), t)
    return _extra(hw, chips, t, p - 1.0)


def p2p_time(hw, message_bytes):
    """One point-to-point send of `message_bytes` to a neighbour (pipeline stage to stage)."""
    hops = _topology.neighbour_hops(_topo(hw))
    a = _step_latency(hw, message_bytes)
    p = hw.profile
    return p.collective_latency_s + p.collective_step_latency_s + _algorithms.p2p_time(
        message_bytes, hops, _bandwidth(hw), hw.link_latency_s, a
    )


def p2p_out_time(hw, message_bytes):
    """One send of `message_bytes` from one chip to a chip in another scale-up domain,
    over the scale-out network (`ScaleOut`; needs one)."""
    p = hw.profile
    return p.collective_latency_s + p.collective_step_latency_s + hw.scale_out.latency_s + (
        message_bytes / _out_bandwidth(hw))
