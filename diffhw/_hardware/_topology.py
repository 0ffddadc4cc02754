"""Interconnect topologies as graphs: hops between chips, diameter, bisection and links
per chip, in closed form.

Pure functions of float arrays. The chip count ``p`` is a continuous leaf (relaxed), so
each formula is smooth in ``p``, finite for ``p >= 1`` and exact at the integer ``p`` its
docstring names. Topology names are static strings. *Hops* count links crossed between
two chips, including a chip's own link to a switch or router: through one switch a
message crosses 2 links (chip -> switch -> chip). The collectives that run on these
graphs are in `diffhw._hardware._collective_algorithms`.

**Sources.** W. J. Dally and B. Towles, "Principles and Practices of Interconnection
Networks", 2004 (torus distances and bisection); M. Al-Fares, A. Loukissas and A.
Vahdat, "A scalable, commodity data center network architecture", SIGCOMM 2008 (fat
tree); J. Kim, W. J. Dally, S. Scott and D. Abts, "Technology-driven, highly-scalable
dragonfly topology", ISCA 2008.
"""

import jax.numpy as jnp

from .._smooth import safe_log, smooth_max, smooth_min, softplus

#: Topology names understood by every function here.
TOPOLOGIES = ("ring", "torus2d", "torus3d", "torus_hd", "mesh", "switch", "fat_tree", "dragonfly")

#: Topologies whose switches can reduce and multicast in the network (SHARP).
SWITCHED_TOPOLOGIES = ("switch", "fat_tree", "dragonfly")


# Sharpness (per unit of torus side length) of the softplus that keeps a torus side at
# least 2 chips long. At side 2 it adds ln(2)/50 = 0.014 chips (a ring's mean hops do not
# move to first order, a 6D torus's grow by 0.6%); from side 3 on it adds under 1e-21.
_SIDE_SHARPNESS = 50.0



def _f(x):
    return jnp.asarray(x, dtype=float)


def check_choice(name, value, allowed):
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
    check_choice("topology", topology, TOPOLOGIES)
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
    check_choice("topology", topology, TOPOLOGIES)
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
    check_choice("topology", topology, TOPOLOGIES)
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
    check_choice("topology", topology, TOPOLOGIES)
    p, dims = _f(p), _f(dims)
    ones = jnp.ones_like(p)
    if topology in ("ring", "torus2d", "torus3d", "torus_hd"):
        return 2.0 * _torus_dims(topology, dims) * ones
    if topology == "mesh":
        return p - 1.0
    return ones


def neighbour_hops(topology):
    """Hops between ring neighbours: 1 on a direct network (the ring is embedded in the
    torus or mesh), 2 through a switch (neighbours in rank order share a leaf switch or
    router, so the occasional longer step of a fat tree or dragonfly is neglected)."""
    return 2.0 if topology in SWITCHED_TOPOLOGIES else 1.0

