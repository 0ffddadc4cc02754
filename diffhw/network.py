"""The interconnect model, in public: topologies as graphs, collective algorithms in
Hockney's alpha-beta model, endpoint costs (landing latency, stragglers and timeouts),
and the collectives as `diffhw.evaluate` times them on a `Hardware`'s fabric.

Every function is a pure, smooth function of float arrays (broadcasting), in SI units;
topology and algorithm names are static strings. The formulas, their exactness and
their sources are documented on each function (``help(diffhw.network.allreduce_time)``).

- Graphs (`diffhw._hardware._topology`): :func:`average_hops`, :func:`diameter`,
  :func:`bisection_links`, :func:`links_per_chip`, :func:`neighbour_hops`.
- Algorithms (`diffhw._hardware._collective_algorithms`): :func:`allreduce_time`,
  :func:`allgather_time`, :func:`reduce_scatter_time`, :func:`broadcast_time`,
  :func:`alltoall_time`, :func:`p2p_time`, given link bandwidth and latencies.
- Endpoints (`diffhw._hardware._endpoints`): :func:`landing_latency_s`,
  :func:`harmonic_number`, :func:`expected_max_of_n`, :func:`timeout_time`.
- On a `Hardware` (`diffhw._hardware._collectives`): :func:`collective_time`, the time
  `diffhw.evaluate` charges for one collective (fabric, where packets land, the serving
  stack's per-call and per-step cost, and stragglers when the hardware models them).
"""

from ._hardware import _collectives
from ._hardware._collective_algorithms import (
    ALLREDUCE_ALGORITHMS,
    BROADCAST_ALGORITHMS,
    GATHER_ALGORITHMS,
    allgather_time,
    allreduce_time,
    alltoall_time,
    broadcast_time,
    p2p_time,
    reduce_scatter_time,
)
from ._hardware._collectives import NetworkOptions
from ._hardware._endpoints import (
    DISTRIBUTIONS,
    expected_max_of_n,
    harmonic_number,
    landing_latency_s,
    timeout_time,
)
from ._hardware._topology import (
    SWITCHED_TOPOLOGIES,
    TOPOLOGIES,
    average_hops,
    bisection_links,
    diameter,
    links_per_chip,
    neighbour_hops,
)

#: Collectives :func:`collective_time` knows.
COLLECTIVES = ("allreduce", "alltoall", "p2p")


def collective_time(hardware, collective, message_bytes, chips=2.0):
    """Time of one collective on `hardware`'s fabric, as `diffhw.evaluate` charges it
    (seconds).

    - ``"allreduce"``: all-reduce of `message_bytes` held by each of `chips` chips, with
      the hardware's algorithm (``network.algorithm``; ``"auto"``: smooth minimum of
      ring, tree, recursive doubling and, where the switches reduce, in-network
      reduction).
    - ``"alltoall"``: each chip sends `message_bytes` in total.
    - ``"p2p"``: one send of `message_bytes` to a neighbour (`chips` is ignored).

    Each adds the serving stack's per-call and per-step cost
    (``profile.collective_latency_s``, ``profile.collective_step_latency_s``), the
    latency of landing packets (``network.packet_sram_fraction``) and, when
    ``network.stragglers`` is on, the expected wait for the slowest of `chips`
    (:func:`timeout_time`, capped by ``network.straggler_timeout_s``). Zero for one chip
    (all-reduce, all-to-all).

    **Arguments:**

    - `hardware`: a `diffhw.Hardware`.
    - `collective`: one of `COLLECTIVES` (static).
    - `message_bytes`: bytes per chip (bytes; array, broadcasts with `chips`).
    - `chips`: participants (dimensionless, continuous, ``>= 1``).

    **Returns:** time (s), shaped like the broadcast inputs.
    """
    if collective == "allreduce":
        return _collectives.allreduce_time(hardware, message_bytes, chips)
    if collective == "alltoall":
        return _collectives.alltoall_time(hardware, message_bytes, chips)
    if collective == "p2p":
        return _collectives.p2p_time(hardware, message_bytes)
    raise ValueError(f"collective={collective!r} is not one of {COLLECTIVES}")


__all__ = [
    "ALLREDUCE_ALGORITHMS",
    "BROADCAST_ALGORITHMS",
    "COLLECTIVES",
    "DISTRIBUTIONS",
    "GATHER_ALGORITHMS",
    "SWITCHED_TOPOLOGIES",
    "TOPOLOGIES",
    "NetworkOptions",
    "allgather_time",
    "allreduce_time",
    "alltoall_time",
    "average_hops",
    "bisection_links",
    "broadcast_time",
    "collective_time",
    "diameter",
    "expected_max_of_n",
    "harmonic_number",
    "landing_latency_s",
    "links_per_chip",
    "neighbour_hops",
    "p2p_time",
    "reduce_scatter_time",
    "timeout_time",
]
