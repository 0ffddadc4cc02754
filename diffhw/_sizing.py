"""Gradient-based sizing: choose hardware (and parallelism, batch) that minimises an
objective under budgets, by Optax on the smooth model, then round and re-check exactly.

The method, in four steps:

1. **Bounded log-space variables.** Each `Variable` maps a free real ``z`` to
   ``lower * (upper / lower) ** sigmoid(z)``, so every iterate is inside its bounds and
   steps are relative (a factor, not an amount).
2. **Augmented Lagrangian.** Constraints are dimensionless margins ``g >= 0`` (log of
   limit over value for positive metrics, the value itself for signed margins); the
   Powell-Hestenes-Rockafellar term ``((max(0, lam - mu g))^2 - lam^2) / (2 mu)`` is
   added to the objective's log, an inner `lax.scan` of Adam (or L-BFGS) steps minimises it, the
   outer scan updates ``lam`` and grows ``mu``. Several starts run at once under `vmap`.
3. **Rounding.** Whole-number variables (chips, parallel degrees, batch) take the two
   nearest allowed values on each side of the relaxed optimum; every combination is
   re-evaluated *exactly* (``tau = 0``: hard max and min) and checked against every
   budget.
4. **Report.** The relaxed optimum, the chosen integer design, every constraint margin,
   feasibility, and the optimisation history (`SizingResult`).
"""

import dataclasses
import itertools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _smooth
from ._design import Design, anonymous, check_path, design_values, get_value, metric_names, set_values
from ._errors import InputError

#: Metrics where more is better (an objective on them is maximised unless told otherwise).
HIGHER_IS_BETTER = frozenset({
    "output_tokens_per_s", "decode_tokens_per_s", "per_user_tokens_per_s", "tokens_per_s_per_watt",
    "tokens_per_s_per_usd", "tokens_per_kgco2e", "max_batch", "memory_margin", "tier_lifetime_margin",
    "min_tier_lifetime_s", "die_yield",
})

#: Metrics that may be negative (margins): constrained by difference, not by log ratio.
SIGNED = frozenset({"memory_margin", "tier_lifetime_margin"})

#: Short names for common design variables: the paths they set, and whether they scale
#: the baseline values (``scale=True``: the variable is a factor on every path) or set
#: them (``False``: the variable is the value itself, SI units).
ALIASES = {
    "compute": (("hardware.flop_per_s_fp32", "hardware.flop_per_s_bf16", "hardware.flop_per_s_fp8",
                 "hardware.flop_per_s_int8", "hardware.flop_per_s_fp4"), True),
    "memory_bandwidth": (("hardware.memory_bandwidth_bytes_per_s",), False),
    "memory_capacity": (("hardware.memory_capacity_bytes",), False),
    "sram": (("hardware.sram_bytes",), False),
    "link_bandwidth": (("hardware.link_bandwidth_bytes_per_s",), False),
    "link_latency": (("hardware.link_latency_s",), False),
    # Whole memory devices (HBM stacks, DRAM channels): capacity and bandwidth scale
    # together, from the baseline's per-device share (needs a technology).
    "memory_stacks": (("hardware.memory_capacity_bytes", "hardware.memory_bandwidth_bytes_per_s"), True),
    "tp": (("parallelism.tp",), False),
    "pp": (("parallelism.pp",), False),
    "dp": (("parallelism.dp",), False),
    "ep": (("parallelism.ep",), False),
    "batch": (("workload.batch",), False),
}

#: Inner optimisers of `size`: Adam steps, or L-BFGS with a line search.
METHODS = ("adam", "lbfgs")
#: The baseline start is kept this far (a share of each log range) inside the bounds.
START_INSIDE = 0.05
#: L-BFGS: a step that moves every ``z`` by less than this has converged.
_XTOL = 1e-6

_INTEGER_PREFIXES = ("parallelism.", "workload.batch")
_COUNTS = ("memory_stacks",)
_MAX_COMBINATIONS = 4096


@dataclasses.dataclass(frozen=True)
class Variable:
    """One design variable.

    - `name`: how results name it (an alias such as ``"compute"`` or a path).
    - `paths`: the leaves it sets (all to the same value, or all scaled by it).
    - `lower`, `upper`: bounds, ``0 < lower < upper`` (a factor when `scale`).
    - `scale`: the variable multiplies the baseline value of every path.
    - `integer`: rounded to whole numbers (from `choices` if given) before the exact
      re-check; default for parallel degrees and the batch.
    - `choices`: allowed whole values (e.g. divisors of the head count), or None.
    - `count`: a count of units (``memory_stacks``): every path is its baseline value
      per unit times the variable (whole numbers).
    """

    name: str
    paths: tuple
    lower: float
    upper: float
    scale: bool = False
    integer: bool = False
    choices: tuple | None = None
    count: bool = False


def variable(name, lower, upper, integer=None, choices=None, paths=None, scale=None) -> Variable:
    """A `Variable` from an alias (`ALIASES`) or a dotted path, checked.

    ``variable("memory_bandwidth", 1e12, 2e13)``, ``variable("compute", 0.25, 4)`` (a
    factor on every FLOP/s column), ``variable("parallelism.tp", 1, 64)`` (whole numbers),
    ``variable("chips", 8, 64, paths=("parallelism.tp", "parallelism.ep"))`` (tied).
    """
    if paths is None:
        paths, default_scale = ALIASES.get(name, ((name,), False))
    else:
        paths, default_scale = tuple(paths), False
    scale = default_scale if scale is None else bool(scale)
    try:
        lo, hi = float(lower), float(upper)
    except (TypeError, ValueError):
        raise InputError(f"variable {name}: bounds", (lower, upper), "two numbers") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise InputError(f"variable {name}: bounds", f"{lower}:{upper}", "finite numbers with 0 < lower < upper")
    count = name in _COUNTS and paths == ALIASES[name][0]
    if integer is None:
        integer = count or (not scale and all(p.startswith(_INTEGER_PREFIXES) for p in paths))
    if choices is not None:
        choices = tuple(sorted(float(c) for c in choices if lo <= float(c) <= hi))
        if not choices:
            raise InputError(f"variable {name}: choices", choices, f"at least one value within [{lo:g}, {hi:g}]")
    return Variable(name, tuple(paths), lo, hi, scale, bool(integer), choices, count)


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``metric <= upper`` and/or ``metric >= lower`` (SI units, metric names as in the
    CLI's JSON, e.g. ``Constraint("peak_power_w", upper=1000)``)."""

    metric: str
    upper: float | None = None
    lower: float | None = None

    @property
    def label(self):
        parts = []
        if self.lower is not None:
            parts.append(f"{self.metric} >= {self.lower:g}")
        if self.upper is not None:
            parts.append(f"{self.metric} <= {self.upper:g}")
        return " and ".join(parts)


def constraint(spec) -> Constraint:
    """Parse ``"peak_power_w<=1000"`` or ``"memory_margin>=0"`` (a `Constraint` passes
    through)."""
    if isinstance(spec, Constraint):
        return spec
    s = str(spec).replace(" ", "")
    for op in ("<=", ">="):
        if op in s:
            name, _, value = s.partition(op)
            try:
                v = float(value)
            except ValueError:
                raise InputError("constraint", spec, "METRIC<=NUMBER or METRIC>=NUMBER") from None
            if not np.isfinite(v):
                raise InputError("constraint", spec, "a finite limit")
            return Constraint(name, upper=v) if op == "<=" else Constraint(name, lower=v)
    raise InputError("constraint", spec, "METRIC<=NUMBER or METRIC>=NUMBER (e.g. peak_power_w<=1000)")


def objective_terms(objective) -> tuple:
    """``((metric, weight, sense), ...)`` from ``"usd_per_million_tokens"``,
    ``"tokens_per_s_per_watt:max"`` or ``{"tpot_s": 1, "usd_per_million_tokens": 1}``.

    A weighted combination is a weighted sum of logs (a weighted geometric mean), so it
    does not depend on units; ``sense`` is +1 to minimise, -1 to maximise (default: by
    `HIGHER_IS_BETTER`)."""
    items = objective.items() if isinstance(objective, dict) else [(objective, 1.0)]
    out = []
    for spec, weight in items:
        name, _, sense = str(spec).partition(":")
        if sense not in ("", "min", "max"):
            raise InputError("objective", spec, "METRIC, METRIC:min or METRIC:max")
        if name in SIGNED:
            raise InputError("objective", name, "a positive metric (margins belong in constraints)")
        s = (-1.0 if name in HIGHER_IS_BETTER else 1.0) if sense == "" else (1.0 if sense == "min" else -1.0)
        w = float(weight)
        if not (np.isfinite(w) and w > 0):
            raise InputError(f"objective weight of {name}", weight, "a positive number")
        out.append((name, w, s))
    if not out:
        raise InputError("objective", objective, "at least one metric")
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class SizingResult:
    """What `size` found.

    - `variables`: the `Variable`s, in order.
    - `baseline`, `relaxed`, `chosen`: variable values (dicts name -> float) of the
      starting design, the best relaxed (continuous) optimum and the chosen integer design.
    - `objective_baseline`, `objective_relaxed`, `objective`: the objective (a weighted
      geometric mean of its metrics, their unit when it is one metric) at each; the last
      two are exact (``tau = 0``) re-evaluations.
    - `margins`: constraint label -> margin of the chosen design (``>= 0`` is met;
      relative for positive metrics: ``0.1`` = 10% headroom).
    - `feasible`: whether the chosen design meets every constraint exactly.
    - `violations`: for an infeasible result, a line per unmet constraint saying by how
      much the best design found misses it.
    - `design`: the chosen `Design`; `metrics`, `baseline_metrics`: its and the
      baseline's metric values (exact).
    - `history`: arrays over ``(start, step)``: ``objective`` (smooth), ``violation`` (the
      largest constraint violation) and ``values`` (variables, a last axis); and the
      phases: ``multiplier_updates`` (the steps after which the multipliers were
      updated) and ``restoration_start`` (first step of feasibility restoration).
    - `evaluations`: model evaluations (each with its gradient) the search used, over
      every start (Adam: one per step; L-BFGS: one per step plus its line-search
      trials, none while settled); `seconds`: wall time.
    """

    variables: tuple
    constraints: tuple
    objective_spec: tuple
    baseline: dict
    relaxed: dict
    chosen: dict
    objective_baseline: float
    objective_relaxed: float
    objective: float
    margins: dict
    feasible: bool
    violations: tuple
    metrics: dict
    baseline_metrics: dict
    history: dict
    evaluations: int
    candidates: int
    seconds: float
    design: Design


def _check_metric(design, name, what):
    names = metric_names(design)
    if name not in names:
        from ._config import _close

        extra = "" if design.technology is not None else " (economics metrics need a technology)"
        raise InputError(what, name, "a metric: " + ", ".join(names) + extra, _close(name, names))


def _units(design, v: Variable):
    """Baseline count of a `count` variable: memory devices the bandwidth needs."""
    if design.technology is None:
        raise InputError(f"variable {v.name}", v.name, "a design with a technology (it sets the device bandwidth)")
    per_device = float(design.technology.device_bandwidth_bytes_per_s)
    if per_device <= 0:
        raise InputError(f"variable {v.name}", v.name, "a memory technology with a device bandwidth (not on-die SRAM)")
    return max(round(float(design.hardware.memory_bandwidth_bytes_per_s) / per_device), 1)


def _baseline_value(design, v: Variable):
    if v.count:
        return float(_units(design, v))
    if v.scale:
        return 1.0
    return float(get_value(design, v.paths[0]))


def _base_leaves(design, variables):
    """Baseline value of every path a scaling variable multiplies (per unit for counts)."""
    return {p: get_value(design, p) / (_units(design, v) if v.count else 1.0)
            for v in variables if v.scale for p in v.paths}


def _apply(design, variables, x, base_leaves):
    """Set every variable's paths from the value vector `x` (outside `jit`)."""
    return _set(design, tuple((v.paths, v.scale) for v in variables), base_leaves, x)


def _bounds(constraints):
    """Static structure of the constraints: ``(metric, sign, log)`` per bound (sign +1
    for an upper bound), and their limits (a separate list, so that new limits reuse
    the compiled search)."""
    spec, limits = [], []
    for c in constraints:
        for bound, sign in ((c.upper, 1.0), (c.lower, -1.0)):
            if bound is not None:
                spec.append((c.metric, sign, c.metric not in SIGNED and bound > 0))
                limits.append(float(bound))
    return tuple(spec), limits


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


def _allowed(design, v: Variable, base_leaves):
    """Whole values a variable may take: its choices, else the integers in its bounds that
    make a valid design (parallel degrees are checked against the model)."""

    values = v.choices or tuple(float(k) for k in range(int(np.ceil(v.lower)), int(np.floor(v.upper)) + 1))
    if not values:
        raise InputError(f"variable {v.name}: bounds", f"{v.lower:g}:{v.upper:g}", "a range holding a whole number")
    if any(p.startswith("parallelism.") for p in v.paths) and len(values) <= 4096:
        ok = [k for k in values if _valid(design, (v,), [k], base_leaves)]
        if not ok:
            raise InputError(f"variable {v.name}", f"{v.lower:g}:{v.upper:g}",
                             "bounds that hold a parallel degree valid for the model")
        values = tuple(ok)
    return np.asarray(values, dtype=float)


def _neighbours(x, allowed, k=2):
    """Up to `k` allowed values on each side of `x`."""
    below = allowed[allowed <= x][-k:]
    above = allowed[allowed > x][:k]
    return np.concatenate([below, above])


def _rounding_candidates(x, allowed, n_vars, wide=12, spread=0.35):
    """Whole-number designs near a relaxed point `x`: every combination of the two
    allowed values on either side of each whole-number variable, plus, one variable at
    a time, up to `wide` allowed values within ``x * (1 +- spread)`` (so when rounding
    one variable tightens a budget, another can give back more than two steps, e.g. a
    smaller batch for one HBM stack fewer). Continuous variables keep their values."""
    near = [_neighbours(x[i], allowed[i]) if i in allowed else np.asarray([x[i]]) for i in range(n_vars)]
    if int(np.prod([len(o) for o in near])) > _MAX_COMBINATIONS:
        near = [_neighbours(x[i], allowed[i], k=1) if i in allowed else o for i, o in enumerate(near)]
    out = list(itertools.product(*near))
    for i in allowed:
        a = allowed[i]
        band = a[(a >= x[i] * (1 - spread)) & (a <= x[i] * (1 + spread))]
        if len(band) > wide:
            band = band[np.unique(np.linspace(0, len(band) - 1, wide).round().astype(int))]
        options = [*near[:i], band, *near[i + 1:]]
        if len(band) and int(np.prod([len(o) for o in options])) <= _MAX_COMBINATIONS:
            out.extend(itertools.product(*options))
    return out


def size(
    design: Design,
    variables,
    objective="usd_per_million_tokens",
    constraints=(),
    *,
    starts: int = 8,
    outer_steps: int = 8,
    inner_steps: int = 120,
    learning_rate: float = 0.08,
    penalty: float = 100.0,
    penalty_growth: float = 2.0,
    slack: float = 2e-3,
    seed: int = 0,
    tau: float = _smooth.DEFAULT_TAU,
    method: str = "adam",
) -> SizingResult:
    """Size a design by gradient descent under constraints (see the module docstring).

    **Arguments:**

    - `design`: the baseline `Design` (e.g. `diffhw.from_presets(...)`); every leaf not
      named by a variable keeps its value.
    - `variables`: `Variable`s (see `variable`), or ``(name, lower, upper)`` tuples.
    - `objective`: a metric name, ``"name:max"``, or a dict of weights (see
      `objective_terms`).
    - `constraints`: `Constraint`s or strings like ``"chip_area_mm2<=858"``; ``memory fits``
      (``memory_margin >= 0``) is always added.
    - `starts`: optimisations run at once under `vmap` (the first starts from the
      baseline, clipped into bounds; the others at random).
    - `outer_steps`, `inner_steps`, `learning_rate`: multiplier updates, Adam steps per
      update, Adam's step size (in the unbounded ``z`` space).
    - `penalty`, `penalty_growth`: the augmented Lagrangian's initial ``mu`` and its
      growth per outer step; `slack`: margin the relaxed problem keeps from each bound
      (so rounding starts feasible).
    - `seed`: random starts; `tau`: smoothing of the relaxed model.
    - `method`: the inner optimiser, ``"adam"`` (default; `learning_rate` applies) or
      ``"lbfgs"`` (L-BFGS with a zoom line search; its memory restarts at every
      multiplier update; a start that stops moving is settled until the Lagrangian
      changes). `SizingResult.evaluations` counts every line-search trial. Fewer steps
      but a longer compile (the line search's loops): see ``benchmarks/sizing.py``.

    **Returns:** a `SizingResult`. It says `feasible=False` (with `violations`) rather
    than raising when no design meets the budgets.
    """
    t0 = time.perf_counter()
    variables = tuple(v if isinstance(v, Variable) else variable(*v) for v in variables)
    if not variables:
        raise InputError("variables", "()", "at least one design variable")
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        raise InputError("variables", names, "distinct names")
    for v in variables:
        for p in v.paths:
            check_path(design, p)
    constraints = tuple(constraint(c) for c in constraints)
    if not any(c.metric == "memory_margin" for c in constraints):
        constraints = (Constraint("memory_margin", lower=0.0), *constraints)
    for c in constraints:
        _check_metric(design, c.metric, "constraint metric")
    terms = objective_terms(objective)
    for n, _, _ in terms:
        _check_metric(design, n, "objective metric")
    if method not in METHODS:
        raise InputError("method", method, " or ".join(METHODS))
    for name, value in (("starts", starts), ("outer_steps", outer_steps), ("inner_steps", inner_steps)):
        if int(value) != value or value < 1:
            raise InputError(name, value, "a whole number >= 1")

    base = anonymous(design)
    base_leaves = _base_leaves(base, variables)
    var_spec = tuple((v.paths, v.scale) for v in variables)
    bounds, limits = _bounds(constraints)
    spec = _Spec(var_spec, bounds, terms, int(outer_steps), int(inner_steps), max(int(inner_steps) // 2, 20),
                 float(learning_rate), float(penalty), float(penalty_growth), float(slack), tau, method)
    # Exact (tau = 0) metrics of the baseline: the objective's scale and the report.
    lo = np.asarray([v.lower for v in variables])
    hi = np.asarray([v.upper for v in variables])
    limits = jnp.asarray(limits)

    baseline_x = np.asarray([_baseline_value(design, v) for v in variables])
    base_vals = _values(base, var_spec, base_leaves, jnp.asarray(baseline_x), 0)
    f0 = float(_objective(base_vals, terms))
    if not np.isfinite(f0):
        raise InputError("objective", objective, "a metric that is finite and positive at the baseline")

    # Starts: the baseline and random points, in z space. The baseline is moved at least
    # START_INSIDE of each log range inside its bounds: at a bound, sigmoid(z) is flat
    # and a start there would barely move (e.g. SRAM 0 or a placement share of 1).
    u0 = np.log(np.clip(baseline_x, lo, hi) / lo) / np.log(hi / lo)
    u0 = np.clip(u0, START_INSIDE, 1.0 - START_INSIDE)
    z_base = np.log(u0) - np.log1p(-u0)
    rng = np.random.default_rng(seed)
    z_starts = np.concatenate([z_base[None], rng.uniform(-2.5, 2.5, (starts - 1, len(variables)))])
    with jax.numpy_dtype_promotion("standard"):  # Optax mixes its int step count with floats
        f_hist, viol_hist, x_hist, n_hist = _search(base, spec, base_leaves, jnp.asarray(lo), jnp.asarray(hi), limits,
                                            jnp.asarray(f0), jnp.asarray(z_starts))
    f_hist, viol_hist, x_hist = np.asarray(f_hist), np.asarray(viol_hist), np.asarray(x_hist)
    n_evaluations = int(round(float(np.sum(n_hist))))

    # The best relaxed point of each start: feasible (within the slack) first, lowest
    # objective next; if a start never got feasible, its least violating point.
    tol = 1e-4
    best_idx = []
    for s in range(starts):
        ok = viol_hist[s] <= tol
        best_idx.append(int(np.argmin(np.where(ok, f_hist[s], np.inf))) if ok.any() else int(np.argmin(viol_hist[s])))
    order = sorted(range(starts), key=lambda s: (viol_hist[s, best_idx[s]] > tol, f_hist[s, best_idx[s]]))
    relaxed_x = x_hist[order[0], best_idx[order[0]]]

    # Rounding: neighbourhoods of the best few distinct starts, re-evaluated exactly.
    allowed = {i: _allowed(design, v, base_leaves) for i, v in enumerate(variables) if v.integer}
    cands = []
    for s in order[: min(3, starts)]:
        cands.extend(_rounding_candidates(x_hist[s, best_idx[s]], allowed, len(variables)))
    cands = np.unique(np.asarray(cands, dtype=float), axis=0)
    cands = _valid_candidates(design, variables, cands, base_leaves)
    # Evaluate in buckets of a power-of-two size so the exact check compiles rarely.
    n = len(cands)
    padded = np.concatenate([cands, np.repeat(cands[:1], (1 << max(n - 1, 1).bit_length()) - n, axis=0)])
    cand_vals, cand_margins = _exact(base, var_spec, bounds, base_leaves, limits, jnp.asarray(padded))
    cand_vals = {k: v[:n] for k, v in cand_vals.items()}
    cand_margins = cand_margins[:n]
    cand_vals = {k: np.asarray(v) for k, v in cand_vals.items()}
    cand_margins = np.asarray(cand_margins)
    cand_obj = np.asarray(sum(w * s * np.log(np.maximum(cand_vals[n], 1e-300)) for n, w, s in terms))
    feasible = np.all(cand_margins >= 0.0, axis=1) & np.isfinite(cand_obj)
    if feasible.any():
        pick = int(np.argmin(np.where(feasible, cand_obj, np.inf)))
    else:  # the least violating candidate
        pick = int(np.argmin(np.sum(np.maximum(-cand_margins, 0.0), axis=1)))
    chosen_x = cands[pick]
    chosen_vals = {k: float(v[pick]) for k, v in cand_vals.items()}
    relaxed_vals = _values(base, var_spec, base_leaves, jnp.asarray(relaxed_x), 0)

    labels = [_label(metric, sign, limit) for (metric, sign, _), limit in zip(bounds, limits.tolist(), strict=True)]
    margins = dict(zip(labels, map(float, cand_margins[pick]), strict=True))
    violations = ()
    if not feasible.any():
        # Per bound, the best margin any candidate reached; if each bound alone is met
        # by some candidate, the chosen (least violating) one's misses.
        best = cand_margins.max(axis=0)
        shown = best if (best < 0).any() else cand_margins[pick]
        violations = tuple(_violation_line(labels[j], bounds[j][2], shown[j]) for j in np.flatnonzero(shown < 0))

    def reported(f_log):
        """The objective in the metric's unit for one term; else the weighted geometric
        mean ``exp(sum(w s log m) / sum(w))`` (lower is better)."""
        scale = terms[0][1] * terms[0][2] if len(terms) == 1 else sum(w for _, w, _ in terms)
        return np.exp(np.asarray(f_log, dtype=float) / scale)

    chosen_design = _apply(design, variables, jnp.asarray(chosen_x), _base_leaves(design, variables))
    return SizingResult(
        variables=variables,
        constraints=constraints,
        objective_spec=terms,
        baseline=dict(zip(names, map(float, baseline_x), strict=True)),
        relaxed=dict(zip(names, map(float, relaxed_x), strict=True)),
        chosen=dict(zip(names, map(float, chosen_x), strict=True)),
        objective_baseline=float(reported(f0)),
        objective_relaxed=float(reported(_objective(relaxed_vals, terms))),
        objective=float(reported(cand_obj[pick])),
        margins=margins,
        feasible=bool(feasible[pick]),
        violations=violations,
        metrics=chosen_vals,
        baseline_metrics={k: float(v) for k, v in base_vals.items()},
        history={"objective": reported(f_hist + f0), "violation": viol_hist, "values": x_hist,
                 "multiplier_updates": [(k + 1) * int(inner_steps) for k in range(int(outer_steps))],
                 "restoration_start": int(outer_steps) * int(inner_steps)},
        evaluations=n_evaluations,
        candidates=int(len(cands)),
        seconds=time.perf_counter() - t0,
        design=chosen_design,
    )


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


def _set(base, var_spec, base_leaves, x):
    values = {}
    for i, (paths, scale) in enumerate(var_spec):
        for p in paths:
            values[p] = x[i] * base_leaves[p] if scale else x[i]
    return set_values(base, values)


@eqx.filter_jit
def _values(base, var_spec, base_leaves, x, tau):
    return design_values(_set(base, var_spec, base_leaves, x), tau)


@eqx.filter_jit
def _exact(base, var_spec, bounds, base_leaves, limits, xs):
    """Exact (tau = 0) metrics and margins of candidate designs, under `vmap`."""

    def one(x):
        vals = design_values(_set(base, var_spec, base_leaves, x), 0)
        return vals, _margins(vals, bounds, limits)

    return jax.vmap(one)(xs)


@eqx.filter_jit
def _search(base, spec: _Spec, base_leaves, lo, hi, limits, f0, z_starts):
    """The augmented-Lagrangian search from every start at once (see the module
    docstring). One flat `lax.scan` runs every phase through the same step (so the model
    and its gradient are compiled once): ``outer x inner`` Adam or L-BFGS steps on the augmented
    Lagrangian, with the multipliers updated and the penalty grown after each ``inner``
    steps, then ``restore`` steps of feasibility restoration (squared violations
    dominate, the objective only breaks ties, and a point that already meets every bound
    stays put). Returns the smooth objective (relative to the baseline, in log), the
    largest violation, the variables and the evaluations counted at every step, per
    start."""
    log_ratio = jnp.log(hi / lo)
    n_g = len(spec.bounds)
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
        vals = design_values(_set(base, spec.variables, base_leaves, x_of(z)), spec.tau)
        f = _objective(vals, spec.terms) - f0
        g = _margins(vals, spec.bounds, limits, spec.slack)
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

    def run_one(z0):
        carry = (z0, opt.init(z0), jnp.zeros((n_g,)), jnp.asarray(spec.penalty), jnp.asarray(False))
        _, hist = jax.lax.scan(step, carry, schedule)
        return hist

    return jax.vmap(run_one)(z_starts)


def _label(metric, sign, limit):
    return f"{metric} {'<=' if sign > 0 else '>='} {limit:g}"


def _violation_line(label, log, margin):
    how = f"misses by {np.expm1(-margin) * 100:.1f}%" if log else f"misses by {-margin:.3g}"
    return f"{label}: the best design found {how}"


def _valid(design, variables, x, base_leaves):
    """Whether the parallel degrees of `design` with `variables` at `x` fit the model."""
    from ._workload import validate_parallelism

    try:
        validate_parallelism(design.model, _apply(design, variables, x, base_leaves).parallelism)
    except InputError:
        return False
    return True


def _valid_candidates(design, variables, cands, base_leaves):
    """Drop rounded designs whose parallel degrees do not fit the model together."""
    if not any(p.startswith("parallelism.") for v in variables for p in v.paths):
        return cands
    keep = [row for row in cands if _valid(design, variables, row, base_leaves)]
    if not keep:
        raise InputError("variables", [v.name for v in variables],
                         "bounds whose whole values give a valid parallelism for the model")
    return np.asarray(keep)
