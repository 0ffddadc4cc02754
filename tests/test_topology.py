"""Topologies, collectives on them, landing latency and stragglers (diffhw._hardware._topology, _collective_algorithms, _endpoints)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffhw._hardware import _collective_algorithms as algo
from diffhw._hardware import _endpoints as ends
from diffhw._hardware import _topology as topo
from diffhw._smooth import DEFAULT_TAU

# The worked example used throughout: NVLink-class numbers from PAPER.md section 4
# (small-message latency ~1 us, a cut-through hop 0.1-0.6 us) and an H100's 450 GB/s.
MB = 1e6
BW = 450e9
A = 1e-6  # message latency (s)
H = 0.5e-6  # hop latency (s)

DIRECT = ("ring", "torus2d", "torus3d", "torus_hd", "mesh")

# (collective, algorithm) for every collective and algorithm; alltoall has none.
COLLECTIVES = (
    [("allreduce", alg) for alg in algo.ALLREDUCE_ALGORITHMS]
    + [("allgather", alg) for alg in algo.GATHER_ALGORITHMS]
    + [("reduce_scatter", alg) for alg in algo.GATHER_ALGORITHMS]
    + [("broadcast", alg) for alg in algo.BROADCAST_ALGORITHMS]
    + [("alltoall", None)]
)
# Off a switched topology "in_network" is exactly its fallback (checked in the golden
# tests), so those cases are not repeated.
CASES = [
    (c, a, t)
    for c, a in COLLECTIVES
    for t in topo.TOPOLOGIES
    if a != "in_network" or t in topo.SWITCHED_TOPOLOGIES
]


def _f(x):
    return jnp.asarray(x, dtype=float)


def collective(name, algorithm, topology):
    """``f(message_bytes, p, bw, hop_latency, message_latency)`` for one case."""
    fn = {
        "allreduce": algo.allreduce_time,
        "allgather": algo.allgather_time,
        "reduce_scatter": algo.reduce_scatter_time,
        "broadcast": algo.broadcast_time,
        "alltoall": algo.alltoall_time,
    }[name]
    if algorithm is None:
        return lambda m, p, bw, h, a: fn(m, p, bw, h, a, topology)
    return lambda m, p, bw, h, a: fn(m, p, bw, h, a, topology, algorithm)


# --- geometry -------------------------------------------------------------------------


def _ring_mean_hops(p):
    return np.mean([min(d, p - d) for d in range(1, p)])


@pytest.mark.parametrize("p", [4, 6, 8, 16, 64, 100])
def test_ring_hops_exact_at_even_p(p):
    assert float(topo.average_hops("ring", float(p))) == pytest.approx(_ring_mean_hops(p), rel=1e-12)
    assert _ring_mean_hops(p) == pytest.approx(p**2 / (4 * (p - 1)))


@pytest.mark.parametrize("p", [3, 5, 7, 9])
def test_ring_hops_odd_p_documented_overestimate(p):
    got = float(topo.average_hops("ring", float(p)))
    assert got == pytest.approx(_ring_mean_hops(p) + 1 / (4 * (p - 1)), rel=1e-9)


def test_hops_golden_values():
    hops = lambda t, p, **kw: float(topo.average_hops(t, _f(p), **kw))
    assert hops("ring", 2.0) == pytest.approx(1.0, abs=1e-4)
    assert hops("ring", 1.0) == pytest.approx(1.0, abs=1e-4)
    # Torus with even side n: k n/4 * p/(p-1). A 4x4 torus: (0+1+2+1)/4 = 1 per dimension.
    assert hops("torus2d", 16.0) == pytest.approx(2 * 1.0 * 16 / 15, rel=1e-12)
    assert hops("torus2d", 64.0) == pytest.approx(2 * 8 / 4 * 64 / 63, rel=1e-12)
    assert hops("torus3d", 64.0) == pytest.approx(3 * 4 / 4 * 64 / 63, rel=1e-12)
    assert hops("torus_hd", 4096.0, dims=6.0) == pytest.approx(6 * 4 / 4 * 4096 / 4095, rel=1e-12)
    # 2x2 torus (n = 2): neighbours at 1, 1 and the opposite corner at 2: 4/3, within 0.3%.
    assert hops("torus2d", 4.0) == pytest.approx(4 / 3, rel=3e-3)
    assert hops("mesh", 8.0) == 1.0
    assert hops("switch", 8.0) == 2.0
    # Full fat trees of radix 64 hold 2 * 32**L chips: L = 2 at 2048 chips, 3 at 65536.
    assert hops("fat_tree", 2048.0) == pytest.approx(4.0, rel=1e-12)
    assert hops("fat_tree", 65536.0) == pytest.approx(6.0, rel=1e-12)
    assert hops("fat_tree", 8.0) == pytest.approx(2.0, rel=1e-12)
    # Dragonfly, radix 64: 16 chips per router, 512 per group.
    p = 1e5
    f_c, f_g = 15 / (p - 1), 511 / (p - 1)
    assert hops("dragonfly", p) == pytest.approx(5 - f_c - 2 * f_g, rel=1e-12)
    assert hops("dragonfly", 8.0) == pytest.approx(2.0, rel=1e-12)
    f_c = 15 / 255
    assert hops("dragonfly", 256.0) == pytest.approx(5 - f_c - 2, rel=1e-12)


def test_diameter_bisection_links_golden_values():
    d = lambda t, p: float(topo.diameter(t, _f(p)))
    b = lambda t, p: float(topo.bisection_links(t, _f(p)))
    n = lambda t, p: float(topo.links_per_chip(t, _f(p)))
    assert d("ring", 8.0) == pytest.approx(4.0, rel=1e-12)
    assert d("torus2d", 64.0) == pytest.approx(8.0, rel=1e-12)
    assert d("torus3d", 64.0) == pytest.approx(6.0, rel=1e-12)
    assert d("torus_hd", 4096.0) == pytest.approx(12.0, rel=1e-12)
    assert (d("mesh", 8.0), d("switch", 8.0)) == (1.0, 2.0)
    assert d("fat_tree", 2048.0) == pytest.approx(4.0, rel=1e-12)
    assert d("dragonfly", 1e6) == pytest.approx(5.0, rel=1e-9)
    assert d("dragonfly", 16.0) == pytest.approx(3.0, rel=2e-2)  # a full router
    assert d("dragonfly", 512.0) == pytest.approx(5.0, rel=2e-2)  # a full group

    assert b("ring", 64.0) == pytest.approx(2.0, rel=1e-12)
    assert b("torus2d", 64.0) == pytest.approx(16.0, rel=1e-12)
    assert b("torus3d", 64.0) == pytest.approx(32.0, rel=1e-12)
    assert b("torus_hd", 4096.0) == pytest.approx(2 * 4**5, rel=1e-12)
    assert b("mesh", 8.0) == pytest.approx(16.0, rel=1e-12)
    assert b("switch", 8.0) == pytest.approx(4.0, rel=1e-12)
    assert b("fat_tree", 8.0) == pytest.approx(4.0, rel=1e-12)
    assert b("dragonfly", 1e5) == pytest.approx(1e5 / 4 * (1 + 511 / (1e5 - 1)), rel=1e-12)
    assert b("dragonfly", 64.0) == pytest.approx(32.0, rel=1e-12)

    assert [n(t, 8.0) for t in topo.TOPOLOGIES] == [2.0, 4.0, 6.0, 12.0, 7.0, 1.0, 1.0, 1.0]


def test_high_dimensional_tori_need_fewer_hops():
    p = np.concatenate([[64.0, 100.0, 1000.0, 4096.0], np.random.default_rng(0).uniform(64, 1e5, 50)])
    hops = {
        t: _values(lambda q, t=t: topo.average_hops(t, q), p)
        for t in ("ring", "torus2d", "torus3d", "torus_hd")
    }
    assert np.all(hops["torus_hd"] < hops["torus2d"]) and np.all(hops["torus2d"] < hops["ring"])
    assert np.all(hops["torus3d"] < hops["torus2d"])
    # Diameter follows, and more hops per pair is never fewer links in the bisection.
    diameter = {t: _values(lambda q, t=t: topo.diameter(t, q), p) for t in ("torus_hd", "torus2d")}
    bisection = {t: _values(lambda q, t=t: topo.bisection_links(t, q), p) for t in ("torus_hd", "torus2d")}
    assert np.all(diameter["torus_hd"] < diameter["torus2d"])
    assert np.all(bisection["torus_hd"] > bisection["torus2d"])


@pytest.mark.parametrize("topology", topo.TOPOLOGIES)
def test_geometry_finite_monotone_and_differentiable(topology):
    p = np.linspace(1.0, 5000.0, 400)
    points = np.array([1.001, 1.5, 2.0, 3.0, 3.5, 8.0, 16.0, 64.0, 100.0, 1000.5, 2048.0, 65536.0])
    rel = 1e-6
    results = {}
    for fn in (topo.average_hops, topo.diameter, topo.bisection_links, topo.links_per_chip):
        f = lambda q, fn=fn: fn(topology, q)
        (v, base, *fd), (d,) = _run(
            f, [(p,), (points,), *_perturbed((points,), rel)], derivative_at=(points,)
        )
        assert np.all(np.isfinite(v))
        _assert_derivatives_match([d], (points,), base, fd, rel, 1e-5)
        _reverse_mode(f, (np.concatenate([[1.0], p]),))  # finite, at p == 1 too
        results[fn.__name__] = v
    # Distance grows with the number of chips (a ring's p <= 2 part is flat at 1 hop).
    hops = results["average_hops"]
    assert np.all(np.diff(hops) >= -1e-12)
    assert np.all(hops >= 1.0 - 1e-12)
    assert np.all(results["diameter"] >= hops * (1 - 2e-2))


# --- collectives: golden values -------------------------------------------------------


def test_allreduce_golden_values():
    ar = functools.partial(algo.allreduce_time, MB, 8.0, BW, H, A)
    # Ring on a ring: 2(p-1) = 14 steps of one hop, 2(p-1)/p * 1 MB = 1.75 MB sent.
    ring = 14 * (1e-6 + 0.5e-6) + 1.75e6 / 450e9
    assert ring == pytest.approx(24.888888889e-6)
    assert float(ar("ring", "ring")) == pytest.approx(ring, rel=1e-12)
    # Through a switch every ring step crosses 2 links.
    assert float(ar("switch", "ring")) == pytest.approx(14 * 2e-6 + 1.75e6 / 450e9, rel=1e-12)
    # Binomial tree: 2 log2 8 = 6 steps of 2 hops, 6 MB unpipelined.
    assert float(ar("switch", "tree")) == pytest.approx(6 * 2e-6 + 6e6 / 450e9, rel=1e-12)
    # Rabenseifner: 6 steps, 1.75 MB.
    rd = 6 * 2e-6 + 1.75e6 / 450e9
    assert float(ar("switch", "recursive_doubling")) == pytest.approx(rd, rel=1e-12)
    # SHARP: a message up and one down (2 us), 2 hops (1 us), 1 MB each way overlapped.
    innet = 2e-6 + 1e-6 + 1e6 / 450e9
    assert innet == pytest.approx(5.222222222e-6)
    assert float(ar("switch", "in_network")) == pytest.approx(innet, rel=1e-12)
    auto = float(ar("switch", "auto"))
    assert innet * 4 ** (-DEFAULT_TAU) <= auto <= innet * (1 + 1e-12)
    # No switch to reduce in: in_network falls back to recursive doubling.
    for t in DIRECT:
        assert float(ar(t, "in_network")) == float(ar(t, "recursive_doubling"))
    # Recursive doubling on a 64-chip 2D torus: 12 steps of 256/63 hops.
    rd64 = 12 * (1e-6 + 0.5e-6 * 256 / 63) + 2 * 63 / 64 * 1e6 / 450e9
    got = algo.allreduce_time(MB, 64.0, BW, H, A, "torus2d", "recursive_doubling")
    assert float(got) == pytest.approx(rd64, rel=1e-12)


def test_other_collectives_golden_values():
    args = (MB, 8.0, BW, H, A)
    sent = 7 / 8 * 1e6 / 450e9
    assert float(algo.allgather_time(*args, "ring", "ring")) == pytest.approx(7 * 1.5e-6 + sent, rel=1e-12)
    assert float(algo.allgather_time(*args, "switch", "recursive_doubling")) == pytest.approx(
        3 * 2e-6 + sent, rel=1e-12
    )
    # Multicast: one message of 2 hops; each chip receives 7/8 MB.
    assert float(algo.allgather_time(*args, "switch", "in_network")) == pytest.approx(
        1e-6 + 1e-6 + sent, rel=1e-12
    )
    assert float(algo.reduce_scatter_time(*args, "ring", "ring")) == pytest.approx(
        7 * 1.5e-6 + sent, rel=1e-12
    )
    # Switch reduction: up and down (2 messages), all of 1 MB sent up.
    assert float(algo.reduce_scatter_time(*args, "fat_tree", "in_network")) == pytest.approx(
        2e-6 + 1e-6 + 1e6 / 450e9, rel=1e-12
    )
    assert float(algo.broadcast_time(*args, "switch", "tree")) == pytest.approx(
        3 * (2e-6 + 1e6 / 450e9), rel=1e-12
    )
    assert float(algo.broadcast_time(*args, "switch", "scatter_allgather")) == pytest.approx(
        3 * 2e-6 + 7 * 2e-6 + 2 * sent, rel=1e-12
    )
    assert float(algo.broadcast_time(*args, "switch", "in_network")) == pytest.approx(
        2e-6 + 1e6 / 450e9, rel=1e-12
    )
    for t in DIRECT:
        assert float(algo.broadcast_time(*args, t, "in_network")) == float(
            algo.broadcast_time(*args, t, "tree")
        )
        for fn in (algo.allgather_time, algo.reduce_scatter_time):
            assert float(fn(*args, t, "in_network")) == float(fn(*args, t, "recursive_doubling"))
    # All-to-all on a ring of 8: 16/7 hops; the cut (2 links) carries 8 MB/4 each way,
    # 2.3x the injection bound (7/8 MB over 2 links), so it binds.
    ring_a2a = 1e-6 + 16 / 7 * 0.5e-6 + 2e6 / (2 * 450e9)
    assert float(algo.alltoall_time(*args, "ring")) == pytest.approx(ring_a2a, rel=1e-12)
    # Switch: injection (7/8 MB over 1 link) binds.
    assert float(algo.alltoall_time(*args, "switch")) == pytest.approx(1e-6 + 1e-6 + sent, rel=1e-12)
    # Full mesh: 1/8 MB over each of 7 links equals the bisection bound; the tie costs 2**tau.
    mesh = 1e-6 + 0.5e-6 + 2**DEFAULT_TAU * 1e6 / (8 * 450e9)
    assert float(algo.alltoall_time(*args, "mesh")) == pytest.approx(mesh, rel=1e-12)
    assert float(algo.p2p_time(MB, 3.0, BW, H, A)) == pytest.approx(1e-6 + 1.5e-6 + 1e6 / 450e9, rel=1e-12)


@pytest.mark.parametrize(
    "name,topology",
    [(c, t) for c in ("allreduce", "allgather", "reduce_scatter", "broadcast") for t in topo.TOPOLOGIES],
)
def test_auto_is_a_soft_minimum(name, topology):
    algorithms = {"allreduce": algo.ALLREDUCE_ALGORITHMS, "broadcast": algo.BROADCAST_ALGORITHMS}.get(
        name, algo.GATHER_ALGORITHMS
    )
    rng = np.random.default_rng(1)
    m, p = 10 ** rng.uniform(2, 10, 32), rng.uniform(2, 2048, 32)
    run = lambda alg: _values(lambda m, p: collective(name, alg, topology)(m, p, BW, H, A), m, p)
    times = [run(alg) for alg in algorithms if alg != "auto"]
    best, auto = np.min(times, axis=0), run("auto")
    assert np.all(auto <= best * (1 + 1e-12))
    assert np.all(auto >= best * len(times) ** (-DEFAULT_TAU) * (1 - 1e-12))


# --- collectives: properties ----------------------------------------------------------


def _random_inputs(seed, size=48):
    rng = np.random.default_rng(seed)
    p = rng.uniform(1.0, 4096.0, size)
    p[:8] = [1.0001, 1.5, 2.0, 3.0, 8.0, 64.0, 100.0, 4096.0]
    return (
        10 ** rng.uniform(2, 10, size),  # bytes
        p,
        10 ** rng.uniform(10, 12.5, size),  # B/s
        10 ** rng.uniform(-8, -6, size),  # hop latency (s)
        10 ** rng.uniform(-7, -5, size),  # message latency (s)
    )


# Every batched call below is padded to this length: eager JAX compiles each operation
# once per shape, so one shape for the whole file keeps the run short.
_BATCH = 512


def _columns(arg_sets):
    """Argument tuples -> one flat float64 numpy column per argument, and set sizes."""
    sets = [np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in s]) for s in arg_sets]
    columns = [np.concatenate([s[j].ravel() for s in sets]) for j in range(len(sets[0]))]
    return columns, [s[0].size for s in sets]


def _padded(columns):
    assert columns[0].size <= _BATCH
    return tuple(jnp.asarray(np.pad(c, (0, _BATCH - c.size), mode="edge")) for c in columns)


def _run(f, arg_sets, derivative_at=None):
    """One forward-mode call of the elementwise `f` (numpy in, numpy out).

    **Returns:** its values on each argument tuple of `arg_sets` and, at the tuple
    `derivative_at`, its derivative in each argument (a list, one array per argument).
    """
    sets = list(arg_sets)
    k = 0 if derivative_at is None else len(derivative_at)
    sets += [derivative_at] * k
    columns, sizes = _columns(sets)
    tangents = [np.zeros_like(c) for c in columns]
    start = sum(sizes[: len(arg_sets)])
    for i in range(k):
        size = sizes[len(arg_sets) + i]
        tangents[i][start + i * size : start + (i + 1) * size] = 1.0
    if k:
        out, tan = jax.jvp(f, _padded(columns), _padded(tangents))
    else:
        out = tan = f(*_padded(columns))
    splits = np.cumsum(sizes)[:-1]
    values = np.split(np.asarray(out)[: sum(sizes)], splits)
    derivatives = np.split(np.asarray(tan)[: sum(sizes)], splits)
    return values[: len(arg_sets)], derivatives[len(arg_sets) :]


def _values(f, *args):
    return _run(f, [args])[0][0]


def _reverse_mode(f, args):
    """Elementwise gradients by `jax.grad` (reverse mode, where a NaN in an unused
    `jnp.where` branch would show), as numpy arrays."""
    columns, (size,) = _columns([args])
    grads = jax.grad(lambda *xs: jnp.sum(f(*xs)), argnums=tuple(range(len(args))))(*_padded(columns))
    grads = [np.asarray(g)[:size] for g in grads]
    assert all(np.all(np.isfinite(g)) for g in grads)
    return grads


def _perturbed(args, rel):
    """``[+x0, -x0, +x1, -x1, ...]`` relative perturbations, one argument at a time."""
    args = np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in args])
    sets = []
    for i in range(len(args)):
        for sign in (1.0, -1.0):
            sets.append(tuple(x * (1 + sign * rel) if j == i else x for j, x in enumerate(args)))
    return sets


def _assert_derivatives_match(derivatives, args, base, perturbed, rel, rtol):
    scale = np.max(np.abs(base))
    args = np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in args])
    for i, (x, d) in enumerate(zip(args, derivatives)):
        assert np.all(np.isfinite(d))
        fd = (perturbed[2 * i] - perturbed[2 * i + 1]) / (2 * rel * x)
        # Compare in the unit of the result: d f / d ln x.
        np.testing.assert_allclose(d * x, fd * x, rtol=rtol, atol=1e-7 * scale)


def _assert_same(forward, reverse):
    for d, g in zip(forward, reverse):
        np.testing.assert_allclose(g, d, rtol=1e-9, atol=1e-12 * np.max(np.abs(d)))


def _check_grads_against_central_differences(f, args, rtol=1e-5, rel=1e-6):
    """Forward- and reverse-mode derivatives of `f` agree with central differences."""
    (base, *perturbed), derivatives = _run(f, [args, *_perturbed(args, rel)], args)
    _assert_derivatives_match(derivatives, args, base, perturbed, rel, rtol)
    grads = _reverse_mode(f, args)
    _assert_same(derivatives, grads)
    return grads


GRAD_P = [1.001, 1.5, 2.0, 3.0, 8.0, 64.0, 100.0, 1000.5]


def _grad_points():
    n = len(GRAD_P)
    return (
        np.geomspace(1e3, 1e9, n),
        np.array(GRAD_P),
        np.geomspace(5e10, 9e11, n),
        np.geomspace(1e-7, 6e-7, n),
        np.geomspace(3e-6, 5e-7, n),
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_collective_properties_and_gradients(case):
    """Zero at p == 1, finite, monotone in every input, derivatives = central differences."""
    f = collective(*case)
    m, p, bw, h, a = args = _random_inputs(2)
    rel = 1e-6
    points = _grad_points()
    values, derivatives = _run(
        f,
        [
            args,
            (m, p, bw * 1.7, h, a),
            (m, p, bw, h * 0.5, a),
            (m, p, bw, h, a * 0.5),
            (m * 2.0, p, bw, h, a),
            (m, p, bw, h * 1e3, a),
            (m, np.ones_like(p), bw, h, a),
            points,
            *_perturbed(points, rel),
        ],
        derivative_at=points,
    )
    t, faster_bw, faster_hops, cheaper_msgs, more_bytes, slow_hops, one_chip, *fd = values
    assert np.all(np.isfinite(t)) and np.all(t > 0)
    assert np.all(one_chip == 0.0)
    up = 1 + 1e-12
    assert np.all(faster_bw <= t * up)  # more bandwidth never slows
    assert np.all(faster_hops <= t * up)  # nor faster hops
    assert np.all(cheaper_msgs <= t * up)  # nor cheaper messages
    assert np.all(more_bytes >= t / up)  # more bytes never speed up
    assert np.all(slow_hops > t)  # hop latency always counts
    # Derivatives in every input equal central differences, near p = 1 and at integer p.
    _assert_derivatives_match(derivatives, points, fd[0], fd[1:], rel, 1e-5)
    # Reverse mode, at p == 1 exactly too. "auto" evaluates every algorithm of its
    # collective, so checking it covers them all (and saves eager reverse passes).
    if case[1] in (None, "auto"):
        at_one = tuple(np.concatenate([x[:1], x]) for x in points)
        at_one[1][0] = 1.0
        grads = _reverse_mode(f, at_one)
        _assert_same(derivatives, [g[1:] for g in grads])


def test_more_hops_never_faster():
    m, _, bw, h, a = _random_inputs(3)
    hops = np.random.default_rng(3).uniform(1, 100, m.shape)
    t, t_more = _run(lambda *xs: algo.p2p_time(*xs), [(m, hops, bw, h, a), (m, hops + 1.0, bw, h, a)])[0]
    assert np.all(t_more > t)
    # Across topologies: at equal links, a collective over more hops is never faster.
    p = np.random.default_rng(4).uniform(64, 4096, 32)
    times = {
        top: _values(lambda q, top=top: algo.allreduce_time(16e3, q, BW, H, A, top, "recursive_doubling"), p)
        for top in ("torus_hd", "torus2d", "ring")
    }
    assert np.all(times["torus_hd"] < times["torus2d"]) and np.all(times["torus2d"] < times["ring"])


@pytest.mark.parametrize("topology", topo.SWITCHED_TOPOLOGIES)
def test_in_network_beats_recursive_doubling_for_small_messages(topology):
    rng = np.random.default_rng(5)
    m, p = 10 ** rng.uniform(1, np.log10(64e3), 64), rng.uniform(2, 1e5, 64)
    innet, rd = (
        _values(lambda m, p, alg=alg: algo.allreduce_time(m, p, BW, H, A, topology, alg), m, p)
        for alg in ("in_network", "recursive_doubling")
    )
    assert np.all(innet <= rd)


def test_claim_9_latency_dominates_small_messages():
    """Ma & Patterson claim 9: decode-sized messages are latency-bound."""
    ring = functools.partial(
        algo.allreduce_time,
        p=64.0,
        link_bw_bytes_per_s=BW,
        hop_latency_s=H,
        message_latency_s=A,
        topology="ring",
        algorithm="ring",
    )
    latency = float(ring(0.0))  # no bytes: latency terms only
    assert latency == pytest.approx(2 * 63 * 1.5e-6, rel=1e-12)
    assert latency / float(ring(16e3)) > 0.8
    assert latency / float(ring(1e9)) < 0.2  # 1 GB: bandwidth dominates
    # Fewer hops (high radix, high dimension) and in-network reduction cut the time.
    auto = {t: float(algo.allreduce_time(16e3, 64.0, BW, H, A, t, "auto")) for t in topo.TOPOLOGIES}
    assert auto["switch"] < auto["torus_hd"] < auto["torus2d"] < auto["ring"]
    assert auto["fat_tree"] < auto["torus3d"] and auto["dragonfly"] < auto["torus3d"]
    assert auto["ring"] / auto["switch"] > 10


# --- gradients and tracing -----------------------------------------------------------


def test_jit_and_vmap_trace_p():
    f = jax.jit(jax.vmap(lambda p: algo.allreduce_time(16e3, p, BW, H, A, "fat_tree", "in_network")))
    p = _f([1.0, 2.0, 7.5, 4096.0])
    expected = algo.allreduce_time(16e3, p, BW, H, A, "fat_tree", "in_network")
    np.testing.assert_allclose(f(p), expected, rtol=1e-12)
    # (timeout_time runs under jit in the straggler tests below.)


# --- landing latency ------------------------------------------------------------------


def test_landing_latency_blends_tiers():
    assert float(ends.landing_latency_s(4096.0, 1.0, 50e-9, 400e-9)) == pytest.approx(50e-9)
    assert float(ends.landing_latency_s(4096.0, 0.0, 50e-9, 400e-9)) == pytest.approx(400e-9)
    assert float(ends.landing_latency_s(4096.0, 0.25, 50e-9, 400e-9)) == pytest.approx(312.5e-9)
    # With write bandwidths: 4096 B at 1 TB/s (SRAM) and 100 GB/s (DRAM).
    t = ends.landing_latency_s(4096.0, 0.5, 50e-9, 400e-9, 1e12, 100e9)
    assert float(t) == pytest.approx(0.5 * (50e-9 + 4.096e-9) + 0.5 * (400e-9 + 40.96e-9))
    # One landing per step: on a ring all-reduce of 8 chips, 14 landings.
    land = ends.landing_latency_s(16e3, 0.0, 50e-9, 400e-9)
    slow = algo.allreduce_time(16e3, 8.0, BW, H, A + land, "ring", "ring")
    fast = algo.allreduce_time(16e3, 8.0, BW, H, A, "ring", "ring")
    assert float(slow - fast) == pytest.approx(14 * 400e-9, rel=1e-9)
    g = jax.grad(ends.landing_latency_s, argnums=1)(_f(16e3), _f(0.3), _f(50e-9), _f(400e-9))
    assert float(g) == pytest.approx(-350e-9)


# --- stragglers -----------------------------------------------------------------------


def test_expected_max_of_n_golden_and_log_growth():
    mean, scale = 2e-3, 1e-4
    assert float(ends.expected_max_of_n(1.0, mean, scale)) == pytest.approx(mean + scale, rel=1e-12)
    assert float(ends.expected_max_of_n(2.0, mean, scale)) == pytest.approx(mean + 1.5 * scale, rel=1e-12)
    assert float(ends.expected_max_of_n(4.0, mean, scale)) == pytest.approx(
        mean + scale * (1 + 1 / 2 + 1 / 3 + 1 / 4), rel=1e-12
    )
    n = 1e6
    approx = math.log(n) + 0.5772156649 + 1 / (2 * n)
    assert float(ends.expected_max_of_n(n, 0.0, 1.0)) == pytest.approx(approx, rel=1e-9)
    # Doubling n adds scale * ln 2 in the limit.
    step = ends.expected_max_of_n(2 * n, 0.0, 1.0) - ends.expected_max_of_n(n, 0.0, 1.0)
    assert float(step) == pytest.approx(math.log(2), rel=1e-6)
    e = _values(lambda n: ends.expected_max_of_n(n, mean, scale), np.linspace(1.0, 1000.0, 500))
    assert np.all(np.diff(e) > 0)
    with pytest.raises(ValueError, match="distribution"):
        ends.expected_max_of_n(2.0, mean, scale, distribution="pareto")


# Jitted once: the quadrature is many small operations, cheaper compiled whole than eagerly.
_timeout_expected = jax.jit(lambda *xs: ends.timeout_time(*xs)[0])
_timeout_fraction = jax.jit(lambda *xs: ends.timeout_time(*xs)[1])


def _timeout_closed_form(n, mean, scale, timeout):
    """E[min(max, T)] for integer n: mean + scale * sum_k Y**k / k, Y = 1 - exp(-U/scale)."""
    u = timeout - mean
    if u <= 0:
        return timeout, 1.0
    y = 1 - math.exp(-u / scale)
    return mean + scale * sum(y**k / k for k in range(1, n + 1)), 1 - y**n


def test_timeout_time_matches_closed_form():
    mean, scale = 1e-3, 2e-5
    cases = [
        (n, mean + k * scale)
        for n in (1, 2, 3, 8, 64, 1000, 100000)
        for k in (-1.0, 0.05, 0.5, 2.0, 5.0, 12.0, 40.0, 1e4)
    ]
    n, timeout = (np.array(c) for c in zip(*cases))
    e = _values(_timeout_expected, n, mean, scale, timeout)
    frac = _values(_timeout_fraction, n, mean, scale, timeout)
    ref = np.array([_timeout_closed_form(int(k), mean, scale, t) for k, t in cases])
    # The waiting beyond `mean` (the integral) within 1e-6 of the closed form.
    np.testing.assert_allclose(e - mean, ref[:, 0] - mean, rtol=1e-6, atol=1e-18)
    np.testing.assert_allclose(frac, ref[:, 1], rtol=1e-9, atol=1e-15)
    assert frac[0] == 1.0 and e[0] == pytest.approx(mean - scale)  # T < mean


def _timeout(n, mean, scale, timeout):
    expected = _values(_timeout_expected, n, mean, scale, timeout)
    fraction = _values(_timeout_fraction, n, mean, scale, timeout)
    return expected, fraction


def test_timeout_properties():
    rng = np.random.default_rng(6)
    size = 200
    n = rng.uniform(1.0, 5000.0, size)
    mean = 10 ** rng.uniform(-5, -2, size)
    scale = mean * 10 ** rng.uniform(-3, 0, size)
    timeout = mean + scale * rng.uniform(-0.9, 15.0, size)
    e, frac = _timeout(n, mean, scale, timeout)
    no_timeout = _values(lambda *xs: ends.expected_max_of_n(*xs), n, mean, scale)
    assert np.all(np.isfinite(e)) and np.all(e <= no_timeout * (1 + 1e-9))
    assert np.all(e <= timeout * (1 + 1e-12)) and np.all(e >= np.minimum(mean, timeout))
    assert np.all((frac >= 0) & (frac <= 1))
    # Longer timeouts wait longer and time out less often, tending to the no-timeout time.
    e2, frac2 = _timeout(n, mean, scale, timeout + scale)
    assert np.all(e2 >= e) and np.all(frac2 <= frac)
    gaps = [
        np.max(np.abs(_timeout(n, mean, scale, mean + k * scale)[0] / no_timeout - 1))
        for k in (10.0, 20.0, 60.0)
    ]
    assert gaps[0] > gaps[2] and gaps[2] < 1e-6  # the rest is quadrature error (< 5e-7)


def test_timeout_gradients():
    n = np.array([1.0, 1.5, 7.3, 64.0, 900.0] * 3)
    mean = np.full_like(n, 1e-3)
    scale = np.full_like(n, 1e-4)
    timeout = mean + scale * np.array([0.5] * 5 + [3.0] * 5 + [8.0] * 5)
    args = (n, mean, scale, timeout)
    grads = _check_grads_against_central_differences(_timeout_expected, args, rtol=1e-4)
    # d E[min(M, T)] / dT = P(M > T): the timeout fraction.
    np.testing.assert_allclose(grads[3], _timeout(*args)[1], rtol=1e-5)
    g = jax.grad(lambda x: ends.expected_max_of_n(x, 0.0, 1.0))(_f(1.0))
    assert float(g) == pytest.approx(math.pi**2 / 6 - 1, rel=1e-9)  # d H_n / dn = psi'(n+1)


# --- bad input ------------------------------------------------------------------------


def test_bad_names_raise():
    with pytest.raises(ValueError, match="topology='hypercube'"):
        topo.average_hops("hypercube", 8.0)
    with pytest.raises(ValueError, match="algorithm='magic'"):
        algo.allreduce_time(MB, 8.0, BW, H, A, "ring", "magic")
    with pytest.raises(ValueError, match="algorithm='tree'"):
        algo.allgather_time(MB, 8.0, BW, H, A, "ring", "tree")
    with pytest.raises(ValueError, match="topology"):
        algo.alltoall_time(MB, 8.0, BW, H, A, "bus")


def test_timeout_without_a_tail_is_finite_with_finite_gradients():
    """A zero straggler scale (allowed in a hardware file) means no wait and no timeout,
    and no NaN in the gradient (issue 15, claim 13)."""
    n, mean, timeout = _f([1.0, 8.0, 64.0, 8.0]), _f([0.0, 1e-6, 1e-6, 1e-6]), _f([1.0, 1.0, 1e-5, 5e-7])
    scale = jnp.zeros_like(n)
    e, frac = _timeout(n, mean, scale, timeout)
    np.testing.assert_allclose(e, [0.0, 1e-6, 1e-6, 5e-7], rtol=1e-12, atol=0)
    np.testing.assert_allclose(frac, [0.0, 0.0, 0.0, 1.0])
    grads = jax.jacrev(lambda *xs: ends.timeout_time(*xs)[0], argnums=(0, 1, 2, 3))(n, mean, scale, timeout)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    # the right derivative in the scale: H_n while the timeout is not hit, 0 when it is
    h = [1.0, sum(1 / k for k in range(1, 9)), sum(1 / k for k in range(1, 65)), 0.0]
    np.testing.assert_allclose(jnp.diagonal(grads[2]), h, rtol=1e-9)
