"""The relaxed search of `size` (its programs leave the value checks out: `size` checks
the designs at every variable's bounds first): an augmented Lagrangian minimised by Adam or L-BFGS from
several starts (one after another: a `lax.scan` over them, which traces in half the time
`vmap` took, each start told the best before it so that a losing start stops early), in
one jitted `lax.scan` per structure; and the exact
(``tau = 0``) re-evaluation of candidate designs under `vmap`."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ... import _smooth
from ..._evaluation._design import design_values, set_values
from ..._jit import filter_jit

#: L-BFGS: a step that moves every ``z`` by less than this has converged.
_XTOL = 1e-6
#: A start stops (its remaining steps are skipped, costing no evaluation) at a multiplier
#: update when it is settled: feasible, and its best feasible smooth objective (log,
#: relative to the baseline) improved by less than `_FLAT` (0.01%) over the last two
#: blocks of inner steps (one flat block is not enough: a multiplier update can unlock
#: more); or, from the `_MIN_BLOCKS`-th update on, when it is losing: its best feasible
#: objective more than `_PRUNE` (log: 5%) above the best of the starts before it.
#: Measured on benchmarks/sizing.py (a)-(f): the starts that end best settle within
#: 100-300 of 520 steps; on (f) the second start, 5% behind the first after two blocks,
#: led it after three and ended 6% ahead.
_FLAT = 1e-4
_PRUNE = 0.05
_MIN_BLOCKS = 3


def _margins(vals, bounds, limits, slack=0.0):
    """Dimensionless margins (>= 0 when met), one per bound: log of limit over value
    for positive metrics, the difference for signed ones."""
    out = []
    for j, (metric, sign, log) in enumerate(bounds):
        m = vals[metric]
        g = sign * (jnp.log(limits[j]) - _smooth.safe_log(m)) if log else sign * (limits[j] - m)
        out.append(g - slack)
    return jnp.stack(out) if out else jnp.zeros((0,))


def _objective(vals, terms):
    return sum(w * s * _smooth.safe_log(vals[n]) for n, w, s in terms)


@dataclasses.dataclass(frozen=True)
class _Spec:
    """The static structure of a sizing run (hashable: one compile per structure)."""

    variables: tuple  # ((paths, scale), ...)
    bounds: tuple  # ((metric, sign, log), ...)
    terms: tuple  # ((metric, weight, sense), ...)
    outer: int
    inner: int
    restore: int
    learning_rate: float
    penalty: float
    growth: float
    slack: float
    tau: float
    method: str = "adam"
    groups: tuple = ()  # `_Group`s of the designs
    stop: tuple = (_FLAT, _PRUNE, _MIN_BLOCKS)  # the stopping rule (flat, prune, min_blocks)

    @property
    def needed(self) -> tuple:
        """The metrics the search reads (objective terms and bounds): `design_values`
        computes only these where it can."""
        return tuple(sorted({m for m, _, _ in self.bounds} | {m for m, _, _ in self.terms}))


@dataclasses.dataclass(frozen=True)
class _Group:
    """Designs of a mix evaluated as one (static): their indices (`members`), and per
    slot (each variable that sets them, in order) its paths, whether it scales them and
    the variable's index for each member. Designs of one structure (the same model,
    pytree and static fields; only array values differ, e.g. one model's traffic classes)
    whose variables set the same paths are one group, traced once under `vmap`."""

    members: tuple
    slots: tuple  # ((paths, scale, (variable index per member, ...)), ...)


def _is_array(x):
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _structure(design):
    """A design's static structure (tree, static leaves, array shapes and dtypes), or
    None when it cannot be compared (an unhashable static leaf)."""
    leaves, tree = jax.tree_util.tree_flatten(design)
    key = (tree, tuple((np.shape(x), np.asarray(x).dtype.str) if _is_array(x) else x for x in leaves))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _groups(bases, var_spec, base_leaves):
    """The designs of a mix in `_Group`s, with each group's design and scaled leaves
    (the member's own for a group of one; stacked on a leading axis for several)."""
    by_key, order = {}, []
    for d, base in enumerate(bases):
        slots = [(i, paths, scale) for i, (paths, scale, w) in enumerate(var_spec) if w is None or w == d]
        structure = _structure(base)
        pattern = tuple((paths, scale, var_spec[i][2] is None) for i, paths, scale in slots)
        key = None if structure is None else (structure, pattern, tuple(sorted(base_leaves[d])))
        if key is None or key not in by_key:
            order.append([d])
            if key is not None:
                by_key[key] = order[-1]
        else:
            by_key[key].append(d)
    groups, g_bases, g_leaves = [], [], []
    for members in order:
        own = [[(i, paths, scale) for i, (paths, scale, w) in enumerate(var_spec) if w is None or w == m]
               for m in members]
        slots = tuple((paths, scale, tuple(slot[k][0] for slot in own)) for k, (_, paths, scale) in enumerate(own[0]))
        groups.append(_Group(tuple(members), slots))
        if len(members) == 1:
            g_bases.append(bases[members[0]])
            g_leaves.append(base_leaves[members[0]])
        else:
            # array leaves stacked (in NumPy: no program per leaf); any other leaf is equal
            # across the group (`_structure`) and kept
            g_bases.append(jax.tree_util.tree_map(
                lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs])) if _is_array(xs[0]) else xs[0],
                *(bases[m] for m in members)))
            g_leaves.append({p: jnp.asarray(np.stack([np.asarray(base_leaves[m][p]) for m in members]))
                             for p in base_leaves[members[0]]})
    return tuple(groups), tuple(g_bases), tuple(g_leaves)


def _values(groups, bases, base_leaves, x, tau, names=None):
    """Per group, the metrics of its designs with the variables at `x`: a dict of
    scalars for a group of one, of arrays over its members (one `vmap`) for several."""
    out = []
    for g, base, leaves in zip(groups, bases, base_leaves, strict=True):
        values = {}
        if len(g.members) == 1:
            for paths, scale, (i,) in g.slots:
                for p in paths:
                    values[p] = x[i] * leaves[p] if scale else x[i]
            out.append(design_values(set_values(base, values), tau, checked=False, names=names))
            continue
        for paths, scale, idx in g.slots:
            xi = x[jnp.asarray(idx)]
            for p in paths:
                values[p] = xi * leaves[p] if scale else xi
        out.append(jax.vmap(lambda b, v: design_values(set_values(b, v), tau, checked=False, names=names))(
            base, values))
    return tuple(out)


def _per_design(groups, vals, terms, bounds, limits, slack=0.0):
    """Every design's objective (log; one per design, None without `terms`) and margins
    (design after design) from `_values`, in the mix's order."""
    objs, margs, order = [], [], []
    for g, v in zip(groups, vals, strict=True):
        n = len(g.members)
        if terms:
            objs.append(jnp.reshape(_objective(v, terms), (n,)))
        m = _margins(v, bounds, limits, slack)
        margs.append(jnp.reshape(m, (len(bounds), n)).T if bounds else jnp.zeros((n, 0)))
        order += g.members
    obj = jnp.concatenate(objs) if terms else None
    marg = jnp.concatenate(margs)
    if order != sorted(order):
        inverse = np.argsort(order)
        obj = None if obj is None else obj[inverse]
        marg = marg[inverse]
    return obj, jnp.reshape(marg, (-1,))


@filter_jit
def _exact(groups, bases, bounds, base_leaves, limits, xs):
    """Exact (tau = 0) metrics (per group of designs, `_values`) and margins (all
    designs) of candidate designs, under `vmap`."""

    def one(x):
        vals = _values(groups, bases, base_leaves, x, 0)
        return vals, _per_design(groups, vals, (), bounds, limits)[1]

    return jax.vmap(one)(xs)


@filter_jit
def _search(bases, spec: _Spec, base_leaves, lo, hi, limits, f0, log_shares, z_starts):
    """The augmented-Lagrangian search from every start (see the module
    docstring). One flat `lax.scan` runs every phase through the same step (so the model
    and its gradient are compiled once): ``outer x inner`` Adam or L-BFGS steps on the augmented
    Lagrangian, with the multipliers updated and the penalty grown after each ``inner``
    steps, then ``restore`` steps of feasibility restoration (squared violations
    dominate, the objective only breaks ties, and a point that already meets every bound
    stays put). Returns the smooth objective (relative to the baseline, in log), the
    largest violation, the variables and the evaluations counted at every step, per
    start."""
    log_ratio = jnp.log(hi / lo)
    n_g = len(spec.bounds) * sum(len(g.members) for g in spec.groups)  # every design's margins
    # The step size decays by 0.7 per multiplier update: as the penalty stiffens, smaller
    # steps settle on the active bounds instead of bouncing across them.
    lbfgs = spec.method == "lbfgs"
    if lbfgs:
        # L-BFGS with a zoom (strong Wolfe) line search; its curvature memory is reset
        # whenever the Lagrangian changes (multiplier update, restoration).
        opt = optax.lbfgs(memory_size=10, linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=10, initial_guess_strategy="one"))
    else:
        opt = optax.adam(optax.exponential_decay(spec.learning_rate, spec.inner, 0.7, staircase=True,
                                                 end_value=spec.learning_rate * 0.02))
    n_al = spec.outer * spec.inner
    k = jnp.arange(n_al + spec.restore)
    update = (k < n_al) & ((k + 1) % spec.inner == 0)  # multipliers after this step
    # the Lagrangian changes after this step (multipliers, or restoration next)
    schedule = dict(update=update, restoring=k >= n_al, reset=update | (k == n_al - 1))

    def x_of(z):
        return lo * jnp.exp(log_ratio * jax.nn.sigmoid(z))

    def loss(z, lam, mu, w_f):
        vals = _values(spec.groups, bases, base_leaves, x_of(z), spec.tau, spec.needed)
        obj, g = _per_design(spec.groups, vals, spec.terms, spec.bounds, limits, spec.slack)
        f = jax.nn.logsumexp(obj + log_shares) - f0
        pen = jnp.sum(_smooth.exact_max(lam - mu * g, 0.0) ** 2 - lam**2) / (2.0 * mu)
        return w_f * f + pen, (f, g)

    def step(carry, sched):
        z, state, lam, mu, stay = carry
        restoring = sched["restoring"]
        # Restoration is the same Lagrangian with no multipliers, a stiff penalty
        # (1e3 x squared violation) and the objective weighted down by 1e-3.
        lam_k = jnp.where(restoring, 0.0, lam)
        mu_k = jnp.where(restoring, 2e3, mu)
        w_f = jnp.where(restoring, 1e-3, 1.0)
        (value, (f, g)), grad = jax.value_and_grad(loss, has_aux=True)(z, lam_k, mu_k, w_f)
        # Violation of "margin >= slack / 2": half the slack is kept as headroom for the
        # exact re-check of the continuous values.
        viol = jnp.max(_smooth.exact_max(-(g + spec.slack / 2), 0.0)) if n_g else jnp.zeros(())
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
        if lbfgs:

            def value_fn(zz):
                return loss(zz, lam_k, mu_k, w_f)[0]

            updates, new_state = opt.update(grad, state, z, value=value, grad=grad, value_fn=value_fn)
            # each line-search trial is one more evaluation with its gradient
            n_eval = 1.0 + optax.tree_utils.tree_get(new_state, "num_linesearch_steps").astype(float)
        else:
            updates, new_state = opt.update(grad, state)
            n_eval = jnp.ones(())
        z_new = optax.apply_updates(z, updates)
        z_new = jnp.where(jnp.all(jnp.isfinite(z_new)), z_new, z)
        z_next = jnp.where(restoring & (viol <= 0.0), z, z_new)
        if lbfgs:
            # Settled: the last step left z where it was (converged, or restoration
            # found it feasible) and the Lagrangian has not changed since, so this
            # step repeats the last evaluation: it keeps z and state and costs nothing.
            # (`lax.scan` runs a fixed number of steps; a loop that stopped early would
            # evaluate exactly the counted ones.)
            z_next = jnp.where(stay, z, z_next)
            new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(stay, a, b), state, new_state)
            n_eval = jnp.where(stay, 0.0, n_eval)
            fresh = opt.init(z_next)
            new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(sched["reset"], a, b), fresh, new_state)
            stay = (jnp.max(jnp.abs(z_next - z)) <= _XTOL) & ~sched["reset"]
        upd = sched["update"]
        lam = jnp.where(upd, _smooth.exact_max(lam - mu * g, 0.0), lam)
        mu = jnp.where(upd, mu * spec.growth, mu)
        return (z_next, new_state, lam, mu, stay), (f, viol, x_of(z), n_eval)

    def tracked(carry, sched):
        """`step`, and the stopping rule (the spec's `stop`, static: a program per rule;
        default `_FLAT`, `_PRUNE`, `_MIN_BLOCKS`): once a start has stopped,
        each remaining step repeats its last record and evaluates nothing."""
        inner, (done, best, marks, blocks, last), incumbent = carry
        flat, prune, min_blocks = spec.stop

        def live(_):
            new_inner, (f, viol, x, n_eval) = step(inner, sched)
            new_best = jnp.where(viol <= 0.0, _smooth.exact_min(best, f), best)
            at_update = sched["update"]
            n_blocks = blocks + at_update.astype(blocks.dtype)
            # marks: the best at the last two updates (inf before there were two)
            settled = (viol <= 0.0) & (marks[1] - new_best < flat)
            losing = (n_blocks >= min_blocks) & (new_best > incumbent + prune)
            stop = at_update & (settled | losing)
            new_marks = jnp.where(at_update, jnp.stack([new_best, marks[0]]), marks)
            return (new_inner, (stop, new_best, new_marks, n_blocks, (f, viol, x))), (f, viol, x, n_eval)

        def skip(_):
            f, viol, x = last
            return (inner, (done, best, marks, blocks, last)), (f, viol, x, jnp.zeros(()))

        new, out = jax.lax.cond(done, skip, live, None)
        return (*new, incumbent), out

    def run_one(incumbent, z0):
        inner = (z0, opt.init(z0), jnp.zeros((n_g,)), jnp.asarray(spec.penalty), jnp.asarray(False))
        first = (jnp.asarray(jnp.inf), jnp.asarray(jnp.inf), jnp.zeros_like(z0))
        track = (jnp.asarray(False), jnp.asarray(jnp.inf), jnp.full((2,), jnp.inf), jnp.asarray(0), first)
        (_, (_, best, _, _, _), _), hist = jax.lax.scan(tracked, (inner, track, incumbent), schedule)
        return _smooth.exact_min(incumbent, best), hist

    # starts one after another (a scan, as `lax.map` is), each told the best before it
    return jax.lax.scan(run_one, jnp.asarray(jnp.inf), z_starts)[1]
