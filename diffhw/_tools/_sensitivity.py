"""Sensitivity of every metric to every hardware and technology leaf: jacobians as
elasticities, a tornado chart, which resource binds and where that changes, and
second-order terms by Hessian-vector products.

An elasticity is ``d log(metric) / d log(parameter)``: +1 means the metric grows in
proportion to the parameter, -0.5 that doubling the parameter cuts the metric by
``1 - 2**-0.5 = 29%``. Margins (which may be negative) get ``d metric / d log(parameter)``
instead. Elasticities are unit-free, so a bandwidth and a price compare directly.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._evaluation._design import (
    Design,
    anonymous,
    check_design,
    check_path,
    design_values,
    evaluate_design,
    get_value,
    metric_names,
    metric_values,
    set_values,
)
from .._evaluation._evaluate import _is_traced
from .._io._plot import figure
from .._jit import filter_jit
from .._timing._latency import COMPONENTS
from ._sizing._problem import ALIASES, SIGNED


def leaf_paths(design: Design, parts=("hardware", "technology")) -> tuple:
    """Paths of every scalar float leaf under `parts` of `design` (arrays such as the
    placement matrix are left out: address their entries with ``[i,j]``)."""
    out = []

    def walk(node, prefix):
        if node is None or isinstance(node, (str, bool, int, float)):
            return
        if isinstance(node, tuple):
            for i, item in enumerate(node):
                walk(item, f"{prefix}[{i}]")
            return
        if hasattr(node, "dtype"):
            if jnp.ndim(node) == 0 and jnp.issubdtype(jnp.asarray(node).dtype, jnp.floating):
                out.append(prefix)
            return
        if dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                if not f.metadata.get("static", False):
                    walk(getattr(node, f.name), f"{prefix}.{f.name}")

    for part in parts:
        if part not in ("hardware", "model", "workload", "parallelism", "technology"):
            raise InputError("sensitivity parts", part, "hardware, technology, workload, parallelism or model")
        walk(getattr(design, part), part)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """Elasticities of metrics (rows) to parameters (columns) at one design.

    - `metrics`, `params`: row and column names; `values`: metric values;
      `param_values`: parameter values.
    - `elasticity`: ``(metrics, params)`` array, ``d log m / d log p`` (for the signed
      margins in `SIGNED`: ``d m / d log p``).
    - `bound`: the resource binding the Decode step (one of `COMPONENTS`), and
      `bound_shares`: each resource's share of the Decode step time (None and empty
      when computed with ``breakdown=False``).
    """

    metrics: tuple
    params: tuple
    values: np.ndarray
    param_values: np.ndarray
    elasticity: np.ndarray
    bound: str
    bound_shares: dict

    def of(self, metric) -> dict:
        """Elasticities of one metric, largest in magnitude first."""
        if metric not in self.metrics:
            raise InputError("metric", metric, "one of " + ", ".join(self.metrics))
        row = self.elasticity[self.metrics.index(metric)]
        order = np.argsort(-np.abs(row), kind="stable")
        return {self.params[j]: float(row[j]) for j in order}

    def top(self, metric, k=10, threshold=1e-6) -> dict:
        """The `k` largest elasticities of `metric` (smaller than `threshold` dropped)."""
        return {p: e for p, e in list(self.of(metric).items())[:k] if abs(e) > threshold}


#: Leaves that are fractions in (0, 1]: a tornado's "+step" side stops at 1.
FRACTIONS = frozenset({
    "bandwidth_efficiency", "compute_efficiency", "network_efficiency", "memory_utilization",
    "offload_fraction", "capacity_penalty", "packet_sram_fraction", "static_fraction", "on_interposer",
    "memory_on_die", "matmul_efficiency",
})


def _scaled(design, paths, u):
    """`design` with every leaf at `paths` multiplied by ``exp(u)``."""
    return set_values(design, {p: get_value(design, p) * jnp.exp(u[i]) for i, p in enumerate(paths)})


def sensitivity(design: Design, metrics=None, params=None, tau=None, breakdown=True) -> Sensitivity:
    """Jacobian of `metrics` (default: all of `metric_names`) with respect to `params`
    (default: every scalar leaf of hardware and technology, `leaf_paths`), as
    elasticities, by forward-mode autodiff in log space (one `jax.jacfwd`).

    ``breakdown=False`` leaves out the static Decode step's breakdown (`bound` is None,
    `bound_shares` empty): where every metric asked for comes from the chip alone or the
    serving goal (e.g. ``serving_usd_per_million_tokens``), the workload's static batch
    is then not timed at all, and the program is about half the size."""
    args = _jacobian_args(design, metrics, params, tau, breakdown)
    design, metrics, params = args[:3]
    check_design(design)  # once here: the compiled Jacobian leaves the value checks out
    jac, values, shares = (np.asarray(a) for a in _jacobian(*args))
    jac = np.where(np.isfinite(jac), jac, 0.0)
    pvals = np.asarray([float(get_value(design, p)) for p in params])
    if not breakdown:
        return Sensitivity(metrics, params, values, pvals, jac, None, {})
    shares = dict(zip(COMPONENTS, map(float, shares), strict=True))
    return Sensitivity(metrics, params, values, pvals, jac, max(shares, key=shares.get), shares)


def _jacobian_args(design, metrics, params, tau, breakdown):
    design = anonymous(design)
    metrics = tuple(metric_names(design) if metrics is None else metrics)
    allowed = metric_names(design)
    for m in metrics:
        if m not in allowed:
            raise InputError("metric", m, "one of " + ", ".join(allowed))
    params = tuple(leaf_paths(design) if params is None else params)
    for p in params:
        check_path(design, p)
    return design, metrics, params, tau, bool(breakdown)


def prepare_sensitivity(design: Design, metrics=None, params=None, tau=None, breakdown=True) -> None:
    """Start compiling `sensitivity`'s program for designs of this structure in the
    background (while the program cache is on: the command line), so a later
    `sensitivity` call waits less."""
    _jacobian.prepare(*_jacobian_args(design, metrics, params, tau, breakdown))


def crossovers(design: Design, params=None, span=64.0, points=97, tau=None) -> dict:
    """For each parameter, the factors (below and above its value) at which the resource
    binding the Decode step changes, found on a log grid over ``[1/span, span]`` and
    refined between grid points. Default parameters: compute (every FLOP/s column),
    memory bandwidth, link bandwidth and the batch.

    **Returns:** ``{name: {"bound": now, "below": (factor, new bound) or None,
    "above": ...}}``.
    """

    design, names, union, masks = _crossover_setup(design, params)
    # The kernel leaves the value checks out: each parameter at both ends of the grid
    # here (each checked field scales monotonically, so the points between pass too).
    _check_scaled(design, union, [m * e for m in np.asarray(masks) for e in (-np.log(span), np.log(span))])

    out = {}
    grid = np.linspace(-np.log(span), np.log(span), points)
    for k, name in enumerate(names):
        b = np.asarray(_bounds_at(design, tuple(union), tau, masks[k], jnp.asarray(grid)))
        now = int(np.asarray(_bounds_at(design, tuple(union), tau, masks[k], jnp.zeros(points)))[0])
        entry = {"bound": COMPONENTS[now], "below": None, "above": None}
        mid = int(np.searchsorted(grid, 0.0))
        for side, idx in (("above", range(mid, points)), ("below", range(mid - 1, -1, -1))):
            prev = 0.0
            for i in idx:
                if b[i] != now:
                    fine = np.linspace(prev, grid[i], points)
                    bf = np.asarray(_bounds_at(design, tuple(union), tau, masks[k], jnp.asarray(fine)))
                    j = int(np.argmax(bf != now))
                    entry[side] = (float(np.exp(fine[j])), COMPONENTS[int(bf[j])])
                    break
                prev = grid[i]
        out[name] = entry
    return out


def _crossover_setup(design, params):
    """`crossovers`' design (anonymous), parameter names, the union of their paths and
    one mask row per name over that union."""
    design = anonymous(design)
    if params is None:
        params = {"compute": ALIASES["compute"][0],
                  "memory_bandwidth": ALIASES["memory_bandwidth"][0],
                  "link_bandwidth": ALIASES["link_bandwidth"][0],
                  "batch": ("workload.batch",)}
    params = {k: ((v,) if isinstance(v, str) else tuple(v)) for k, v in params.items()}
    for paths in params.values():
        for p in paths:
            check_path(design, p)
    names = list(params)
    union = sorted({p for paths in params.values() for p in paths})
    masks = jnp.asarray([[1.0 if p in params[n] else 0.0 for p in union] for n in names])
    return design, names, union, masks


def prepare_crossovers(design: Design, params=None, points=97, tau=None) -> None:
    """Start compiling `crossovers`' program for designs of this structure in the
    background (while the program cache is on: the command line)."""
    design, _, union, masks = _crossover_setup(design, params)
    _bounds_at.prepare(design, tuple(union), tau, masks[0], jnp.zeros(points))


def tornado(design: Design, metric, params=None, step=0.2, top=12, tau=None, sens=None) -> list:
    """A tornado chart's rows: for the `top` parameters with the largest elasticity of
    `metric`, the metric's relative change when each is multiplied by ``1 - step`` and
    by ``1 + step`` (evaluated, not linearised), largest swing first.

    `sens`: a `Sensitivity` of this design that includes `metric` (saves computing it).

    **Returns:** a list of ``(param, value, change_low, change_high)``.
    """
    if not 0 < step < 1:
        raise InputError("step", step, "a fraction in (0, 1)")
    s = sens if sens is not None and metric in sens.metrics else sensitivity(design, (metric,), params, tau)
    chosen = list(s.top(metric, top))
    if not chosen:
        return []
    d = anonymous(design)

    base = float(s.values[s.metrics.index(metric)])
    # Fractions (efficiencies, utilisation) may not pass 1: their high side stops there.
    up = jnp.asarray([np.log1p(step) if p.rsplit(".", 1)[-1] not in FRACTIONS
                      else min(np.log1p(step), -np.log(float(get_value(d, p)))) for p in chosen])
    low = jnp.full(len(chosen), np.log1p(-step))
    _check_scaled(d, chosen, np.concatenate([np.diag(np.asarray(low)), np.diag(np.asarray(up))]))
    lo = np.asarray(_swing(d, tuple(chosen), metric, tau, low))
    hi = np.asarray(_swing(d, tuple(chosen), metric, tau, up))
    rows = [(p, float(get_value(d, p)), float(lo[i] / base - 1), float(hi[i] / base - 1)) for i, p in enumerate(chosen)]
    return sorted(rows, key=lambda r: -max(abs(r[2]), abs(r[3])))


def plot_tornado(rows, metric, path=None, step=0.2):
    """A tornado chart of `tornado`'s rows: written to `path` (PNG, SVG or PDF; returns
    the path), or returned as a `matplotlib.figure.Figure` when `path` is None (a
    notebook shows it). Never switches the caller's matplotlib backend."""

    if not rows:
        raise InputError("tornado", metric, "a metric that some parameter changes")
    labels = [r[0].replace("hardware.", "").replace("technology.", "tech.") for r in rows][::-1]
    lo = np.asarray([r[2] for r in rows][::-1]) * 100
    hi = np.asarray([r[3] for r in rows][::-1]) * 100
    fig, ax = figure(figsize=(8, 0.4 * len(rows) + 1.5))
    y = np.arange(len(rows))
    ax.barh(y, lo, color="#4C72B0", label=f"parameter x {1 - step:g}")
    ax.barh(y, hi, color="#DD8452", label=f"parameter x {1 + step:g}")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(f"change of {metric} (%)")
    ax.set_title(f"Sensitivity of {metric}: each parameter {-step:+.0%} / {step:+.0%}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=120)
    return path


def hessian_vector_product(design: Design, metric, params, vector, tau=None):
    """Second-order term: ``H v`` where ``H`` is the Hessian of ``log metric`` in the log
    of `params` (forward-over-reverse; no Hessian is formed)."""
    design = anonymous(design)
    params = tuple(params)
    v = jnp.asarray(vector, dtype=float)
    if v.shape != (len(params),):
        raise InputError("vector", v.shape, f"shape ({len(params)},), one entry per parameter")
    if _is_traced(design):  # inside a user's transformation: the checks in the program
        return _hvp_impl(design, params, metric, tau, v, checked=True)
    check_design(design)  # once here: the compiled product leaves the value checks out
    return _hvp(design, params, metric, tau, v)


def curvature(design: Design, metric, params, tau=None) -> dict:
    """Diagonal second-order elasticities ``d2 log m / d(log p)2`` for `params` (second
    directional derivatives, forward over forward, under `vmap`)."""
    design = anonymous(design)
    check_design(design)  # once here: the compiled derivatives leave the value checks out
    params = tuple(params)

    diag = _second_directional(design, params, metric, tau, jnp.eye(len(params)))
    return {p: float(diag[i]) for i, p in enumerate(params)}


def _check_scaled(design, paths, log_factors):
    """`check_design` on `design` with the leaves at `paths` scaled by ``exp(u)``, for
    each row `u` of `log_factors` (the value checks the kernels below leave out: a
    check's host callback would make their programs uncacheable, so the command line
    compiled them afresh on every run). In NumPy: JAX op by op compiled ~16 small
    programs here (0.5 s cold)."""
    base = {p: np.asarray(get_value(design, p)) for p in paths}
    for u in np.asarray(log_factors, dtype=float):
        check_design(set_values(design, {p: base[p] * np.exp(u[i]) for i, p in enumerate(paths)}))


# Compiled kernels, one per structure (design pytree, metric and parameter names, tau),
# without the value checks (``checked=False``): their callers check on the host first.


def _log_metric(design, params, metric, tau, u, checked=False):
    val = design_values(_scaled(design, params, u), tau, checked=checked)[metric]
    return val if metric in SIGNED else jnp.log(val)


@filter_jit
def _jacobian(design, metrics, params, tau, breakdown=True):
    def log_metrics(u):
        scaled = _scaled(design, params, u)
        if breakdown:
            m = evaluate_design(scaled, tau, checked=False)
            vals = metric_values(m, scaled, tau)
            d = m.decode
            parts = jnp.stack([d.compute_s, d.memory_s, d.communication_s, d.overhead_s])
        else:
            vals, parts = design_values(scaled, tau, checked=False, names=metrics), jnp.ones(len(COMPONENTS))
        return jnp.stack([vals[k] if k in SIGNED else jnp.log(vals[k]) for k in metrics]), (vals, parts)

    # Forward mode even for one metric: `jax.jacrev` traced and compiled slower here
    # (benchmarks/compile.py). One evaluation gives the metrics and the Decode parts.
    jac, (vals, parts) = jax.jacfwd(log_metrics, has_aux=True)(jnp.zeros(len(params)))
    return jac, jnp.stack([vals[k] for k in metrics]), parts / jnp.sum(parts)


@filter_jit
def _bounds_at(design, union, tau, mask, log_f):
    """Index into `COMPONENTS` of the Decode step's binding resource, with the leaves in
    `union` scaled by ``exp(mask * f)`` for every `f` in `log_f`."""

    def one(lf):
        s = evaluate_design(_scaled(design, union, mask * lf), tau, checked=False).decode
        return jnp.argmax(jnp.stack([s.compute_s, s.memory_s, s.communication_s, s.overhead_s]))

    return jax.vmap(one)(log_f)


@filter_jit
def _swing(design, params, metric, tau, log_f):
    """`metric` with each of `params` alone scaled by ``exp(log_f[i])``."""

    def one(i, lf):
        u = jnp.zeros(len(params)).at[i].set(lf)
        return design_values(_scaled(design, params, u), tau, checked=False)[metric]

    return jax.vmap(one)(jnp.arange(len(params)), log_f)


def _hvp_impl(design, params, metric, tau, v, checked=False):
    u0 = jnp.zeros(len(params))
    return jax.jvp(jax.grad(lambda u: _log_metric(design, params, metric, tau, u, checked)), (u0,), (v,))[1]


_hvp = filter_jit(_hvp_impl)  # forward over reverse: one product, any vector


@filter_jit
def _second_directional(design, params, metric, tau, vs):
    """``v^T H v`` for every row ``v`` of `vs`, forward over forward (cheaper to compile
    than a vmapped Hessian-vector product when only the diagonal is wanted)."""
    u0 = jnp.zeros(len(params))

    def f(u):
        return _log_metric(design, params, metric, tau, u)

    def one(v):
        return jax.jvp(lambda u: jax.jvp(f, (u,), (v,))[1], (u0,), (v,))[1]

    return jax.vmap(one)(vs)
