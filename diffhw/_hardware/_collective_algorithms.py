"""Collective algorithms on an interconnect topology (all-reduce, all-gather,
reduce-scatter, broadcast, all-to-all, point to point), in seconds.

Everything here is a pure function of float arrays. The chip count ``p`` is a continuous
leaf (relaxed), so each formula is smooth in ``p``, finite for ``p >= 1`` and exact at the
integer ``p`` its docstring names. Topology and algorithm names are static strings.
The graph quantities they use (hops, bisection) are in `diffhw._hardware._topology`;
endpoint costs (landing latency, stragglers) in `diffhw._hardware._endpoints`.

**Conventions.**

- *Hops* count links crossed between two chips, including a chip's own link to a switch
  or router: through one switch a message crosses 2 links (chip -> switch -> chip).
  ``hop_latency_s`` is paid once per link (wire, SerDes and the switch or router behind
  it, cut-through).
- ``link_bw_bytes_per_s`` is the bandwidth of one link in one direction; links are full
  duplex. The step-by-step algorithms (ring, tree, halving/doubling) are single-port: a
  chip sends on one link at a time (Hockney's model as used by Thakur et al.). A schedule
  that drives several links at once (bidirectional or multi-dimensional rings on a torus)
  is modelled by passing the aggregate bandwidth it drives.
- A collective of ``steps`` sequential message steps, each crossing ``hops`` links and
  each chip moving ``bytes`` in total, takes (Hockney's alpha-beta model)

  ``t = steps * (message_latency_s + hops * hop_latency_s) + bytes / link_bw_bytes_per_s``.

  ``message_latency_s`` is the fixed cost of one message step (software, NIC/DMA set-up,
  synchronisation). Small packets landing in DRAM instead of on-chip SRAM cost more per
  step: add :func:`landing_latency_s` to ``message_latency_s`` (one landing per message
  step).
- Every collective is exactly ``0`` at ``p == 1`` (a mask, not the limit ``p -> 1+``:
  algorithms with a fixed number of steps, such as in-network reduction, jump there).

**Sources.** R. W. Hockney, "The communication challenge for MPP: Intel Paragon and Meiko
CS-2", Parallel Computing 20(3), 1994 (alpha-beta model); R. Thakur, R. Rabenseifner and
W. Gropp, "Optimization of collective communication operations in MPICH", IJHPCA 19(1),
2005 (ring, binomial tree, recursive doubling/halving, Rabenseifner all-reduce, scatter +
all-gather broadcast); P. Patarasuk and X. Yuan, "Bandwidth optimal all-reduce algorithms
for clusters of workstations", JPDC 69(2), 2009 (ring); R. L. Graham et al., "Scalable
Hierarchical Aggregation Protocol (SHArP)", COMHPC 2016, and A. Ishii and R. Wells, "The
NVLink-Network Switch" (NVLink SHARP), Hot Chips 34, 2022 (in-network reduction);
W. J. Dally and B. Towles, "Principles and Practices of Interconnection Networks", 2004
(torus distances and bisection); M. Al-Fares, A. Loukissas and A. Vahdat, "A scalable,
commodity data center network architecture", SIGCOMM 2008 (fat tree); J. Kim, W. J. Dally,
S. Scott and D. Abts, "Technology-driven, highly-scalable dragonfly topology", ISCA 2008;
H. A. David and H. N. Nagaraja, "Order Statistics", 3rd ed., 2003 (maximum of
exponentials); J. Dean and L. A. Barroso, "The tail at scale", CACM 56(2), 2013
(stragglers). Motivation: X. Ma and D. Patterson, arXiv 2601.05047, section 4 and claim 9.
"""

import jax.numpy as jnp

from .._smooth import DEFAULT_TAU, safe_div, smooth_max, smooth_min
from ._topology import (
    SWITCHED_TOPOLOGIES,
    TOPOLOGIES,
    average_hops,
    bisection_links,
    check_choice,
    links_per_chip,
    neighbour_hops,
)


def _f(x):
    return jnp.asarray(x, dtype=float)


#: All-reduce algorithms; "auto" is the smooth minimum of the valid ones.
ALLREDUCE_ALGORITHMS = ("ring", "tree", "recursive_doubling", "in_network", "auto")

#: All-gather / reduce-scatter algorithms.
GATHER_ALGORITHMS = ("ring", "recursive_doubling", "in_network", "auto")

#: Broadcast algorithms.
BROADCAST_ALGORITHMS = ("tree", "scatter_allgather", "in_network", "auto")



def _alpha(steps, hops, hop_latency_s, message_latency_s):
    return steps * (message_latency_s + hops * hop_latency_s)


def _only_if_several(p, t):
    # A mask, not a relaxation: one chip communicates with nobody.
    return jnp.where(p > 1.0, t, 0.0)


def _pick(algorithm, candidates, tau):
    if algorithm == "auto":
        return smooth_min(*candidates.values(), tau=tau)
    return candidates[algorithm]


def p2p_time(message_bytes, hops, link_bw_bytes_per_s, hop_latency_s, message_latency_s):
    """One point-to-point message (for example pipeline stage to stage), in seconds.

    ``t = message_latency_s + hops * hop_latency_s + message_bytes / link_bw_bytes_per_s``
    (Hockney 1994).

    **Arguments:**

    - `message_bytes`: bytes sent (bytes).
    - `hops`: links crossed (dimensionless, continuous; e.g. :func:`average_hops`).
    - `link_bw_bytes_per_s`: link bandwidth, one direction (bytes/s).
    - `hop_latency_s`: latency per link crossed (s).
    - `message_latency_s`: fixed latency per message (s).

    **Returns:** time (s).
    """
    return _f(message_latency_s) + _f(hops) * _f(hop_latency_s) + _f(message_bytes) / _f(link_bw_bytes_per_s)


def allreduce_time(
    message_bytes,
    p,
    link_bw_bytes_per_s,
    hop_latency_s,
    message_latency_s,
    topology,
    algorithm,
    *,
    radix=64.0,
    dims=6.0,
    tau=DEFAULT_TAU,
):
    """All-reduce of a `message_bytes` vector held by each of `p` chips, in seconds.

    With ``M`` the message, ``B`` the link bandwidth, ``a`` the message latency, ``h``
    the hop latency, ``H`` = :func:`average_hops` and ``h_n`` the hops between ring
    neighbours (1 on ring, torus and mesh; 2 through a switch, fat tree or dragonfly):

    - ``ring`` (reduce-scatter + all-gather around a ring; Patarasuk & Yuan 2009):
      ``2 (p-1) (a + h_n h) + 2 (p-1)/p M/B``.
    - ``tree`` (binomial reduce, then binomial broadcast, unpipelined; Thakur et al.
      2005): ``2 log2(p) (a + H h) + 2 log2(p) M/B``.
    - ``recursive_doubling`` (Rabenseifner: recursive-halving reduce-scatter, then
      recursive-doubling all-gather; Thakur et al. 2005):
      ``2 log2(p) (a + H h) + 2 (p-1)/p M/B``. Exact for powers of two; other ``p`` cost
      real MPI two extra steps, which the relaxation leaves out.
    - ``in_network`` (switch reduction, NVIDIA SHARP / NVLink SHARP; Graham et al. 2016,
      Ishii & Wells 2022): one message up to the root switch, reduced in the switches, and
      one down; the up and down streams overlap (full duplex), so each chip's link
      carries ``M`` once each way: ``2 a + H h + M/B``. Only on ``switch``, ``fat_tree``
      and ``dragonfly``; on other topologies it falls back to ``recursive_doubling``.
    - ``auto``: ``smooth_min`` of the valid algorithms above (a differentiable stand-in
      for a library that picks the fastest). Within ``2**-tau`` of the true minimum.

    Zero for ``p == 1``.

    **Arguments:**

    - `message_bytes`: bytes of the vector on each chip (bytes).
    - `p`: chips taking part (dimensionless, continuous, ``>= 1``).
    - `link_bw_bytes_per_s`: link bandwidth, one direction (bytes/s).
    - `hop_latency_s`: latency per link crossed (s).
    - `message_latency_s`: fixed latency per message step (s); add
      :func:`landing_latency_s` here to charge where packets land.
    - `topology`: one of `TOPOLOGIES` (static).
    - `algorithm`: one of `ALLREDUCE_ALGORITHMS` (static).
    - `radix`, `dims`: see :func:`average_hops`.
    - `tau`: temperature of the smooth minimum for ``auto``.

    **Returns:** time (s).
    """
    check_choice("algorithm", algorithm, ALLREDUCE_ALGORITHMS)
    candidates = allreduce_candidates(message_bytes, p, link_bw_bytes_per_s, hop_latency_s, message_latency_s,
                                      topology, radix=radix, dims=dims)
    if topology not in SWITCHED_TOPOLOGIES and algorithm == "in_network":
        algorithm = "recursive_doubling"
    return _only_if_several(_f(p), _pick(algorithm, candidates, tau))


def allreduce_candidates(message_bytes, p, link_bw_bytes_per_s, hop_latency_s, message_latency_s, topology, *,
                         radix=64.0, dims=6.0):
    """The time of each all-reduce algorithm `topology` allows (`allreduce_time`'s
    formulas, before its zero for ``p == 1``), by name in `ALLREDUCE_ALGORITHMS` order:
    one trace of what they share (hops, ``log2 p``) for a caller that combines several."""
    check_choice("topology", topology, TOPOLOGIES)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    hops = average_hops(topology, p, radix, dims)
    lg = jnp.log2(p)
    frac = (p - 1.0) / p
    candidates = {
        "ring": _alpha(2.0 * (p - 1.0), neighbour_hops(topology), h, a) + 2.0 * frac * m / bw,
        "tree": _alpha(2.0 * lg, hops, h, a) + 2.0 * lg * m / bw,
        "recursive_doubling": _alpha(2.0 * lg, hops, h, a) + 2.0 * frac * m / bw,
    }
    if topology in SWITCHED_TOPOLOGIES:
        candidates["in_network"] = 2.0 * a + hops * h + m / bw
    return candidates


def _gather_candidates(m, p, bw, h, a, topology, radix, dims, innet_bytes, innet_steps):
    hops = average_hops(topology, p, radix, dims)
    frac = (p - 1.0) / p
    candidates = {
        "ring": _alpha(p - 1.0, neighbour_hops(topology), h, a) + frac * m / bw,
        "recursive_doubling": _alpha(jnp.log2(p), hops, h, a) + frac * m / bw,
    }
    if topology in SWITCHED_TOPOLOGIES:
        candidates["in_network"] = innet_steps * a + hops * h + innet_bytes / bw
    return candidates


def allgather_time(
    message_bytes,
    p,
    link_bw_bytes_per_s,
    hop_latency_s,
    message_latency_s,
    topology,
    algorithm,
    *,
    radix=64.0,
    dims=6.0,
    tau=DEFAULT_TAU,
):
    """All-gather: each of `p` chips ends with the whole `message_bytes` (``M``), having
    started with ``M/p`` of it, in seconds.

    Notation as in :func:`allreduce_time` (Thakur et al. 2005):

    - ``ring``: ``(p-1) (a + h_n h) + (p-1)/p M/B``.
    - ``recursive_doubling``: ``log2(p) (a + H h) + (p-1)/p M/B``.
    - ``in_network`` (switch multicast, NVLink SHARP): each chip sends its ``M/p`` once
      and the switches replicate it in flight, one message step:
      ``a + H h + (p-1)/p M/B`` (the bytes each chip receives). Switched topologies only;
      elsewhere it falls back to ``recursive_doubling``.
    - ``auto``: ``smooth_min`` of the valid algorithms.

    Zero for ``p == 1``.

    **Arguments:** as :func:`allreduce_time`, with `message_bytes` the gathered size on
    each chip (bytes) and `algorithm` one of `GATHER_ALGORITHMS`.

    **Returns:** time (s).
    """
    check_choice("topology", topology, TOPOLOGIES)
    check_choice("algorithm", algorithm, GATHER_ALGORITHMS)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    candidates = _gather_candidates(m, p, bw, h, a, topology, radix, dims, (p - 1.0) / p * m, 1.0)
    if algorithm == "in_network" and "in_network" not in candidates:
        algorithm = "recursive_doubling"
    return _only_if_several(p, _pick(algorithm, candidates, tau))


def reduce_scatter_time(
    message_bytes,
    p,
    link_bw_bytes_per_s,
    hop_latency_s,
    message_latency_s,
    topology,
    algorithm,
    *,
    radix=64.0,
    dims=6.0,
    tau=DEFAULT_TAU,
):
    """Reduce-scatter: each of `p` chips holds a `message_bytes` vector (``M``) and ends
    with its reduced ``M/p`` share, in seconds.

    Notation as in :func:`allreduce_time` (Thakur et al. 2005):

    - ``ring``: ``(p-1) (a + h_n h) + (p-1)/p M/B``.
    - ``recursive_doubling`` (recursive halving): ``log2(p) (a + H h) + (p-1)/p M/B``.
    - ``in_network`` (switch reduction, SHARP): each chip sends all of ``M`` up (its own
      share must be reduced too), the switches reduce and deliver each share to its owner:
      one message up and one down, ``2 a + H h + M/B``. Switched topologies only;
      elsewhere it falls back to ``recursive_doubling``. It saves latency, not bytes.
    - ``auto``: ``smooth_min`` of the valid algorithms.

    Zero for ``p == 1``.

    **Arguments:** as :func:`allreduce_time`, with `message_bytes` the input vector on
    each chip (bytes) and `algorithm` one of `GATHER_ALGORITHMS`.

    **Returns:** time (s).
    """
    check_choice("topology", topology, TOPOLOGIES)
    check_choice("algorithm", algorithm, GATHER_ALGORITHMS)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    candidates = _gather_candidates(m, p, bw, h, a, topology, radix, dims, m, 2.0)
    if algorithm == "in_network" and "in_network" not in candidates:
        algorithm = "recursive_doubling"
    return _only_if_several(p, _pick(algorithm, candidates, tau))


def broadcast_time(
    message_bytes,
    p,
    link_bw_bytes_per_s,
    hop_latency_s,
    message_latency_s,
    topology,
    algorithm,
    *,
    radix=64.0,
    dims=6.0,
    tau=DEFAULT_TAU,
):
    """Broadcast of `message_bytes` (``M``) from one chip to the other ``p - 1``, in
    seconds.

    Notation as in :func:`allreduce_time` (Thakur et al. 2005):

    - ``tree`` (binomial, unpipelined; best for short messages):
      ``log2(p) (a + H h + M/B)``.
    - ``scatter_allgather`` (van de Geijn: binomial scatter, then ring all-gather; best
      for long messages): ``log2(p) (a + H h) + (p-1) (a + h_n h) + 2 (p-1)/p M/B``.
    - ``in_network`` (switch multicast): one message, replicated in flight:
      ``a + H h + M/B``. Switched topologies only; elsewhere it falls back to ``tree``.
    - ``auto``: ``smooth_min`` of the valid algorithms.

    Zero for ``p == 1``.

    **Arguments:** as :func:`allreduce_time`, with `algorithm` one of
    `BROADCAST_ALGORITHMS`.

    **Returns:** time (s).
    """
    check_choice("topology", topology, TOPOLOGIES)
    check_choice("algorithm", algorithm, BROADCAST_ALGORITHMS)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    hops = average_hops(topology, p, radix, dims)
    lg = jnp.log2(p)
    candidates = {
        "tree": _alpha(lg, hops, h, a) + lg * m / bw,
        "scatter_allgather": _alpha(lg, hops, h, a)
        + _alpha(p - 1.0, neighbour_hops(topology), h, a)
        + 2.0 * (p - 1.0) / p * m / bw,
    }
    if topology in SWITCHED_TOPOLOGIES:
        candidates["in_network"] = a + hops * h + m / bw
    elif algorithm == "in_network":
        algorithm = "tree"
    return _only_if_several(p, _pick(algorithm, candidates, tau))


def alltoall_time(
    message_bytes,
    p,
    link_bw_bytes_per_s,
    hop_latency_s,
    message_latency_s,
    topology,
    *,
    radix=64.0,
    dims=6.0,
    tau=DEFAULT_TAU,
):
    """All-to-all (MoE dispatch/collect): each chip sends `message_bytes` (``M``) in
    total, ``M/p`` to each chip (itself included), in seconds.

    All ``p - 1`` messages go at once, in one step of average hops (cut-through):

    ``t = a + H h + smooth_max(injection, bisection)`` with

    - ``injection = (p-1)/p M / (L B)``: the bytes that leave a chip over its
      ``L`` = :func:`links_per_chip` links (a chip of a direct network drives all its
      links at once; behind a switch it has one);
    - ``bisection = (p M/4) / (X B)``: under uniform traffic ``p/2`` chips each send
      ``M/2`` across a balanced cut of ``X`` = :func:`bisection_links` full-duplex links.

    The bisection binds on rings and tori; on a full mesh the two bounds are equal and
    ``smooth_max`` overestimates by ``2**tau`` (1.4% at the default), as on a switch at
    ``p = 2`` and on a large dragonfly. Zero for ``p == 1``.

    **Arguments:** as :func:`allreduce_time` (no `algorithm`), with `tau` the temperature
    of the smooth maximum.

    **Returns:** time (s).
    """
    check_choice("topology", topology, TOPOLOGIES)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    hops = average_hops(topology, p, radix, dims)
    injection = safe_div((p - 1.0) / p * m, links_per_chip(topology, p, radix, dims) * bw)
    bisection = p * m / 4.0 / (bisection_links(topology, p, radix, dims) * bw)
    t = a + hops * h + smooth_max(injection, bisection, tau=tau)
    return _only_if_several(p, t)


