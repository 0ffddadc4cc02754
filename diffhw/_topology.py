"""Interconnect topologies and the collectives that run on them, in seconds.

Everything here is a pure function of float arrays. The chip count ``p`` is a continuous
leaf (relaxed), so each formula is smooth in ``p``, finite for ``p >= 1`` and exact at the
integer ``p`` its docstring names. Topology and algorithm names are static strings.

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
import numpy as np
from jax.scipy.special import digamma

from ._smooth import DEFAULT_TAU, safe_div, safe_log, smooth_max, smooth_min, softplus

#: Topology names understood by every function here.
TOPOLOGIES = ("ring", "torus2d", "torus3d", "torus_hd", "mesh", "switch", "fat_tree", "dragonfly")

#: Topologies whose switches can reduce and multicast in the network (SHARP).
SWITCHED_TOPOLOGIES = ("switch", "fat_tree", "dragonfly")

#: All-reduce algorithms; "auto" is the smooth minimum of the valid ones.
ALLREDUCE_ALGORITHMS = ("ring", "tree", "recursive_doubling", "in_network", "auto")

#: All-gather / reduce-scatter algorithms.
GATHER_ALGORITHMS = ("ring", "recursive_doubling", "in_network", "auto")

#: Broadcast algorithms.
BROADCAST_ALGORITHMS = ("tree", "scatter_allgather", "in_network", "auto")

#: Straggler tail distributions.
DISTRIBUTIONS = ("exponential",)

# Sharpness (per unit of torus side length) of the softplus that keeps a torus side at
# least 2 chips long. At side 2 it adds ln(2)/50 = 0.014 chips (a ring's mean hops do not
# move to first order, a 6D torus's grow by 0.6%); from side 3 on it adds under 1e-21.
_SIDE_SHARPNESS = 50.0

# Gauss-Legendre nodes and weights on [0, 1] for the straggler-timeout integral. 16 nodes
# keep it within 5e-7 (relative) of the closed form for n up to 1e5 participants and any
# timeout (12 nodes: 2e-5).
_GL_NODES = 16
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_NODES)
_GL_X = (_GL_X + 1.0) / 2.0
_GL_W = _GL_W / 2.0

_EULER_GAMMA = float(np.euler_gamma)


def _f(x):
    return jnp.asarray(x, dtype=float)


def _check(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {allowed}")


def _torus_dims(topology, dims):
    return {"ring": 1.0, "torus2d": 2.0, "torus3d": 3.0, "torus_hd": dims}[topology]


def _torus_side(p, k):
    """Side length ``n = p**(1/k)``, kept at least 2 by a sharp softplus."""
    n = p ** (1.0 / k)
    return 2.0 + softplus(n - 2.0, sharpness=_SIDE_SHARPNESS)


def _fat_tree_levels(p, radix):
    """Relaxed number of switch levels: ``max(1, ln(p/2) / ln(radix/2))``.

    A full ``L``-level fat tree of ``radix``-port switches connects ``2 (radix/2)**L``
    chips (Al-Fares et al. 2008: ``k**3/4`` at three levels), so ``L`` is exact whenever
    the tree is full; in between it relaxes ``ceil`` continuously in ``log p``.
    """
    return smooth_max(1.0, safe_log(p / 2.0) / jnp.log(radix / 2.0))


def _dragonfly_sizes(radix):
    """Chips per router ``radix/4`` and per group ``radix**2/8`` (balanced dragonfly).

    Kim et al. 2008 balance a router of radix ``k = c + (a - 1) + h`` with ``a = 2c = 2h``
    (``c`` chips, ``a`` routers per group, ``h`` global links), so ``c ~ k/4`` and a group
    holds ``a c ~ k**2/8`` chips.
    """
    return radix / 4.0, radix**2 / 8.0


def _fraction_within(p, capacity):
    """Fraction of the other ``p - 1`` chips that share a unit of ``capacity`` chips:
    ``min(1, (capacity - 1)/(p - 1))``, smoothed, and 1 at ``p = 1``."""
    return 1.0 / smooth_max(1.0, (p - 1.0) / (capacity - 1.0))


def _log_ramp(p, lo, hi):
    """Smooth ``clip(ln(p/lo) / ln(hi/lo), 0, 1)``: 0 up to ``lo`` chips, 1 from ``hi``."""
    return smooth_min(1.0, safe_log(smooth_max(1.0, p / lo)) / jnp.log(hi / lo))


def average_hops(topology, p, radix=64.0, dims=6.0):
    """Mean number of links crossed between two distinct chips, under minimal routing.

    - ``ring``, ``torus2d``, ``torus3d``, ``torus_hd`` (a ``k``-D torus, ``k`` = 1, 2, 3,
      ``dims``, with side ``n = p**(1/k)``): ``k n/4 * p/(p - 1)``. ``k n/4`` is the mean
      distance over all pairs including a chip to itself, exact for even ``n``
      (Dally & Towles 2004, section 3.3); the factor ``p/(p - 1)`` drops the self-pairs.
      The ring is exact at every even ``p`` (``p**2 / (4 (p - 1))``) and overestimates odd
      ``p`` by ``1/(4 (p - 1))``. ``n`` is kept at least 2 by a sharp softplus, so the
      formula is finite down to ``p = 1`` (a ring of ``p <= 2`` gives 1 hop); at ``n = 2``
      it is high by 5e-5 hop for a ring, 0.2% for a 2D and 0.6% for a 6D torus. A ``k``-D
      torus needs ``p >= 2**k`` chips; below that it reports the ``2**k``-chip hypercube
      (choose ``dims <= log2 p``).
    - ``mesh`` (full mesh, a link per pair): 1.
    - ``switch`` (one crossbar switch): 2 (chip -> switch -> chip).
    - ``fat_tree`` of ``radix``-port switches: ``2 L`` with
      ``L = smooth_max(1, ln(p/2) / ln(radix/2))`` switch levels (up to the top and down).
      It counts every message as crossing the top level: in a full tree only the
      ``radix/2 - 1`` chips under one's own leaf are closer (1% of 2048 chips at radix
      64); between full trees the continuous ``L`` undercounts the integer levels (3.6
      hops at 1024 chips, against 3.94 for the real two-level tree).
    - ``dragonfly`` (Kim et al. 2008, balanced, minimal routing): ``c = radix/4`` chips per
      router, ``g = radix**2/8`` per group. Same router: 2 links; same group: 3 (one local
      link); other group: 5 (local-global-local, counting the worst case for the local
      links). With ``f_c = (c - 1)/(p - 1)`` and ``f_g = (g - 1)/(p - 1)`` the fractions
      of other chips on the same router and group (each at most 1, smoothed):
      ``5 - f_c - 2 f_g``.

    **Arguments:**

    - `topology`: one of `TOPOLOGIES` (static).
    - `p`: number of chips (dimensionless, continuous, ``>= 1``).
    - `radix`: switch/router ports, for ``fat_tree`` and ``dragonfly``.
    - `dims`: number of torus dimensions for ``torus_hd`` (continuous).

    **Returns:** mean hops (dimensionless), shaped like `p`.
    """
    _check("topology", topology, TOPOLOGIES)
    p, radix, dims = _f(p), _f(radix), _f(dims)
    ones = jnp.ones_like(p)
    if topology in ("ring", "torus2d", "torus3d", "torus_hd"):
        k = _torus_dims(topology, dims)
        n = _torus_side(p, k)
        q = n**k
        return k * n / 4.0 * q / (q - 1.0)
    if topology == "mesh":
        return ones
    if topology == "switch":
        return 2.0 * ones
    if topology == "fat_tree":
        return 2.0 * _fat_tree_levels(p, radix)
    c, g = _dragonfly_sizes(radix)
    return 5.0 - _fraction_within(p, c) - 2.0 * _fraction_within(p, g)


def diameter(topology, p, radix=64.0, dims=6.0):
    """Largest number of links between two chips, under minimal routing.

    - tori (``k`` dims, side ``n = p**(1/k)`` kept at least 2 as in :func:`average_hops`):
      ``k n/2``, exact for even ``n`` (``k floor(n/2)``); a ring of ``p`` chips: ``p/2``.
    - ``mesh``: 1. ``switch``: 2. ``fat_tree``: ``2 L`` (levels as in
      :func:`average_hops`).
    - ``dragonfly``: 2 within a router, 3 within a group, 5 across groups. The steps are
      relaxed as ramps in ``log p`` that are exact when a router (``radix/4`` chips) or a
      group (``radix**2/8`` chips) is full, as the fat tree's levels are:
      ``2 + ramp(1 -> radix/4) + 2 ramp(radix/4 -> radix**2/8)``.

    **Arguments:** as :func:`average_hops`.

    **Returns:** the diameter in hops (dimensionless), shaped like `p`.
    """
    _check("topology", topology, TOPOLOGIES)
    p, radix, dims = _f(p), _f(radix), _f(dims)
    ones = jnp.ones_like(p)
    if topology in ("ring", "torus2d", "torus3d", "torus_hd"):
        k = _torus_dims(topology, dims)
        return k * _torus_side(p, k) / 2.0
    if topology == "mesh":
        return ones
    if topology == "switch":
        return 2.0 * ones
    if topology == "fat_tree":
        return 2.0 * _fat_tree_levels(p, radix)
    c, g = _dragonfly_sizes(radix)
    return 2.0 + _log_ramp(p, 1.0, c) + 2.0 * _log_ramp(p, c, g)


def bisection_links(topology, p, radix=64.0, dims=6.0):
    """Links cut by a balanced bisection of the chips (each full duplex).

    - ``ring``: 2. ``k``-D torus (side ``n = p**(1/k)``): ``2 n**(k-1)``, i.e.
      ``2 sqrt(p)`` in 2D and ``2 p**(2/3)`` in 3D (cutting one dimension crosses each of
      its ``n**(k-1)`` rings twice; Dally & Towles 2004, section 3.3). Assumes side
      ``n >= 3``; at side 2 the two links of a 2-ring are counted twice.
    - ``mesh``: ``p**2/4`` (exact for even ``p``; odd: ``(p**2 - 1)/4``).
    - ``switch``, ``fat_tree``: ``p/2`` (full bisection, non-blocking).
    - ``dragonfly``: ``p/2`` within one group (a full mesh of routers), ``p/4`` across
      many groups (balanced: one global link per chip, half of them cross the cut;
      Kim et al. 2008); in between ``p/4 (1 + f_g)`` with ``f_g`` as in
      :func:`average_hops`.

    **Arguments:** as :func:`average_hops`.

    **Returns:** number of links (dimensionless), shaped like `p`.
    """
    _check("topology", topology, TOPOLOGIES)
    p, radix, dims = _f(p), _f(radix), _f(dims)
    if topology in ("ring", "torus2d", "torus3d", "torus_hd"):
        k = _torus_dims(topology, dims)
        return 2.0 * p ** ((k - 1.0) / k)
    if topology == "mesh":
        return p**2 / 4.0
    if topology in ("switch", "fat_tree"):
        return p / 2.0
    _, g = _dragonfly_sizes(radix)
    return p / 4.0 * (1.0 + _fraction_within(p, g))


def links_per_chip(topology, p, radix=64.0, dims=6.0):
    """Network links (ports) on each chip.

    ``ring`` 2; ``k``-D torus ``2 k`` (``torus_hd``: ``2 dims``); ``mesh`` ``p - 1``;
    ``switch``, ``fat_tree``, ``dragonfly`` 1 (the chip's link to its switch or router;
    the router's local and global links belong to the network).

    **Arguments:** as :func:`average_hops`.

    **Returns:** number of links (dimensionless), shaped like `p`.
    """
    _check("topology", topology, TOPOLOGIES)
    p, dims = _f(p), _f(dims)
    ones = jnp.ones_like(p)
    if topology in ("ring", "torus2d", "torus3d", "torus_hd"):
        return 2.0 * _torus_dims(topology, dims) * ones
    if topology == "mesh":
        return p - 1.0
    return ones


def _neighbour_hops(topology):
    """Hops between ring neighbours: 1 on a direct network (the ring is embedded in the
    torus or mesh), 2 through a switch (neighbours in rank order share a leaf switch or
    router, so the occasional longer step of a fat tree or dragonfly is neglected)."""
    return 2.0 if topology in SWITCHED_TOPOLOGIES else 1.0


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
    _check("topology", topology, TOPOLOGIES)
    _check("algorithm", algorithm, ALLREDUCE_ALGORITHMS)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    hops = average_hops(topology, p, radix, dims)
    lg = jnp.log2(p)
    frac = (p - 1.0) / p
    candidates = {
        "ring": _alpha(2.0 * (p - 1.0), _neighbour_hops(topology), h, a) + 2.0 * frac * m / bw,
        "tree": _alpha(2.0 * lg, hops, h, a) + 2.0 * lg * m / bw,
        "recursive_doubling": _alpha(2.0 * lg, hops, h, a) + 2.0 * frac * m / bw,
    }
    if topology in SWITCHED_TOPOLOGIES:
        candidates["in_network"] = 2.0 * a + hops * h + m / bw
    elif algorithm == "in_network":
        algorithm = "recursive_doubling"
    return _only_if_several(p, _pick(algorithm, candidates, tau))


def _gather_candidates(m, p, bw, h, a, topology, radix, dims, innet_bytes, innet_steps):
    hops = average_hops(topology, p, radix, dims)
    frac = (p - 1.0) / p
    candidates = {
        "ring": _alpha(p - 1.0, _neighbour_hops(topology), h, a) + frac * m / bw,
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
    _check("topology", topology, TOPOLOGIES)
    _check("algorithm", algorithm, GATHER_ALGORITHMS)
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
    _check("topology", topology, TOPOLOGIES)
    _check("algorithm", algorithm, GATHER_ALGORITHMS)
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
    _check("topology", topology, TOPOLOGIES)
    _check("algorithm", algorithm, BROADCAST_ALGORITHMS)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    hops = average_hops(topology, p, radix, dims)
    lg = jnp.log2(p)
    candidates = {
        "tree": _alpha(lg, hops, h, a) + lg * m / bw,
        "scatter_allgather": _alpha(lg, hops, h, a)
        + _alpha(p - 1.0, _neighbour_hops(topology), h, a)
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
    _check("topology", topology, TOPOLOGIES)
    m, p, bw = _f(message_bytes), _f(p), _f(link_bw_bytes_per_s)
    h, a = _f(hop_latency_s), _f(message_latency_s)
    hops = average_hops(topology, p, radix, dims)
    injection = safe_div((p - 1.0) / p * m, links_per_chip(topology, p, radix, dims) * bw)
    bisection = p * m / 4.0 / (bisection_links(topology, p, radix, dims) * bw)
    t = a + hops * h + smooth_max(injection, bisection, tau=tau)
    return _only_if_several(p, t)


def landing_latency_s(
    message_bytes,
    in_sram,
    sram_latency_s,
    dram_latency_s,
    sram_bw_bytes_per_s=None,
    dram_bw_bytes_per_s=None,
):
    """Latency of landing one received message in on-chip SRAM or in DRAM, in seconds.

    ``t = s (l_sram + M/B_sram) + (1 - s) (l_dram + M/B_dram)`` with ``s`` = `in_sram`, the
    continuous fraction of messages (or probability a message) that lands in SRAM; the
    bandwidth terms are left out when the bandwidths are not given. Ma & Patterson
    (section 4) propose landing small packets in SRAM, next to the network port, to cut
    this per-message cost.

    A collective pays one landing per message step: pass
    ``message_latency_s = base + landing_latency_s(...)`` to the collectives here, which
    multiply it by their number of steps.

    **Arguments:**

    - `message_bytes`: bytes of one message (bytes).
    - `in_sram`: fraction in ``[0, 1]`` (dimensionless).
    - `sram_latency_s`, `dram_latency_s`: write latency of each tier (s).
    - `sram_bw_bytes_per_s`, `dram_bw_bytes_per_s`: optional write bandwidths (bytes/s).

    **Returns:** time (s), shaped like the broadcast inputs.
    """
    m, s = _f(message_bytes), _f(in_sram)
    sram = _f(sram_latency_s) + jnp.zeros_like(m)
    dram = _f(dram_latency_s) + jnp.zeros_like(m)
    if sram_bw_bytes_per_s is not None:
        sram = sram + m / _f(sram_bw_bytes_per_s)
    if dram_bw_bytes_per_s is not None:
        dram = dram + m / _f(dram_bw_bytes_per_s)
    return s * sram + (1.0 - s) * dram


def harmonic_number(n):
    """Continuous harmonic number ``H_n = digamma(n + 1) + gamma`` (Euler's constant).

    Exact at every integer (``H_1 = 1``, ``H_2 = 1.5``) and smooth in between; for large
    ``n``, ``H_n ~ ln n + 0.5772 + 1/(2n)``.

    **Arguments:** `n` (dimensionless, ``> -1``).

    **Returns:** ``H_n`` (dimensionless).
    """
    return digamma(_f(n) + 1.0) + _EULER_GAMMA


def expected_max_of_n(n, mean_s, tail_scale_s, distribution="exponential"):
    """Expected time of the slowest of `n` participants (a collective waits for it).

    Each participant takes ``mean_s + X`` with ``X ~ Exponential(tail_scale_s)``
    independent, so ``E[max] = mean_s + tail_scale_s * H_n`` (Rényi's representation of
    exponential order statistics; David & Nagaraja 2003), with the continuous harmonic
    number :func:`harmonic_number`. It grows like ``ln n`` (Dean & Barroso 2013).

    **Arguments:**

    - `n`: participants (dimensionless, continuous, ``>= 1``).
    - `mean_s`: the deterministic part of each participant's time (s); a participant's
      own mean is ``mean_s + tail_scale_s``.
    - `tail_scale_s`: mean of the exponential tail (s).
    - `distribution`: one of `DISTRIBUTIONS` (static; only ``"exponential"`` so far).

    **Returns:** expected time (s).
    """
    _check("distribution", distribution, DISTRIBUTIONS)
    return _f(mean_s) + _f(tail_scale_s) * harmonic_number(n)


def _survival_of_max(t, n, scale):
    """``1 - F(t)`` for the max of ``n`` exponentials: ``1 - (1 - exp(-t/scale))**n``."""
    log_cdf_one = safe_log(-jnp.expm1(-t / scale))
    return -jnp.expm1(n * log_cdf_one)


def _gl_integral(f, lo, hi):
    """``integral_lo^hi f(x) dx`` with the fixed Gauss-Legendre rule (batched)."""
    x = jnp.asarray(_GL_X, dtype=lo.dtype)
    w = jnp.asarray(_GL_W, dtype=lo.dtype)
    width = (hi - lo)[..., None]
    return jnp.sum(w * f(lo[..., None] + width * x), axis=-1) * width[..., 0]


def timeout_time(n, mean_s, tail_scale_s, timeout_s):
    """Expected time of a collective that waits for stragglers at most until `timeout_s`
    (then goes on with stale or stand-in data), and how often it times out.

    With ``M`` the slowest of `n` participants as in :func:`expected_max_of_n`,
    ``F(t) = (1 - exp(-(t - mean_s)/scale))**n`` its CDF for ``t >= mean_s`` and
    ``U = timeout_s - mean_s``:

    ``E[min(M, T)] = mean_s + integral_0^U (1 - F(mean_s + u)) du`` and
    ``P(M > T) = 1 - F(T)``.

    For ``U <= 0`` every step times out: ``E = timeout_s``, fraction 1. The integral is
    split at ``c = smooth_min(U, scale ln n)``, near the typical maximum: ``[0, c]`` is
    integrated in ``u`` and ``[c, U]`` in ``v = exp(-(u - c)/scale)``, where the
    integrand is a smooth bounded function on ``(0, 1]``, so a fixed 16-node
    Gauss-Legendre rule on each part stays within ``5e-7`` (relative) for any timeout and
    ``n`` up to ``1e5``, and smooth in every input. As ``timeout_s -> inf`` it
    tends to :func:`expected_max_of_n`; its derivative in ``timeout_s`` is the timeout
    fraction. (For integer ``n`` the integral is ``scale * sum_k Y**k/k`` with
    ``Y = 1 - exp(-U/scale)``.)

    **Arguments:**

    - `n`: participants (dimensionless, continuous, ``>= 1``).
    - `mean_s`: deterministic part of each participant's time (s).
    - `tail_scale_s`: mean of the exponential tail (s, ``> 0``).
    - `timeout_s`: the deadline, measured like `mean_s` from the step's start (s).

    **Returns:** ``(expected_s, timeout_fraction)``: expected time (s) and the fraction of
    steps that hit the timeout, in ``[0, 1]``.
    """
    n, mean, scale, timeout = jnp.broadcast_arrays(_f(n), _f(mean_s), _f(tail_scale_s), _f(timeout_s))
    u = timeout - mean
    late = u > 0.0
    u_pos = jnp.where(late, u, 1.0)
    split = smooth_min(u_pos, scale * safe_log(n))
    head = _gl_integral(lambda t: _survival_of_max(t, n[..., None], scale[..., None]), 0.0 * split, split)
    # In v = exp(-(t - c)/scale): dt = -scale dv / v.
    v_lo = jnp.exp(-(u_pos - split) / scale)

    def tail_integrand(v):
        t = split[..., None] - scale[..., None] * jnp.log(v)
        return _survival_of_max(t, n[..., None], scale[..., None]) / v

    tail = scale * _gl_integral(tail_integrand, v_lo, jnp.ones_like(v_lo))
    expected = jnp.where(late, mean + head + tail, timeout)
    fraction = jnp.where(late, _survival_of_max(u_pos, n, scale), 1.0)
    return expected, fraction
