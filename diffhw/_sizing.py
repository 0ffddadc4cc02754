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

**Mixes.** Given several designs (workloads served by one hardware design), the shared
variables set every design and a variable with a `workload` index sets one (its batch,
its chips); the objective is the share-weighted mean of the designs' objectives (fleet
$ per token for token shares), every constraint holds for every design, and rounding
uses the structure: a design's own whole-number variables change only its metrics, so
each design's candidates are evaluated side by side and each keeps its best.
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
from ._errors import InputError, did_you_mean
from ._evaluation._design import (
    Design,
    anonymous,
    check_path,
    design_values,
    get_value,
    metric_names,
    set_values,
)

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
#: A mix's per-design rounding also tries whole values up to this factor from the
#: relaxed one (cheap there: the designs' candidates are evaluated side by side).
_FAR = 4.0


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
    - `workload`: in a mix (`size` given several designs), the index of the one design
      it sets (e.g. that workload's batch or chips); None sets it in every design (the
      shared hardware).
    """

    name: str
    paths: tuple
    lower: float
    upper: float
    scale: bool = False
    integer: bool = False
    choices: tuple | None = None
    count: bool = False
    workload: int | None = None


def variable(name, lower, upper, integer=None, choices=None, paths=None, scale=None, workload=None) -> Variable:
    """A `Variable` from an alias (`ALIASES`) or a dotted path, checked.

    ``variable("memory_bandwidth", 1e12, 2e13)``, ``variable("compute", 0.25, 4)`` (a
    factor on every FLOP/s column), ``variable("parallelism.tp", 1, 64)`` (whole numbers),
    ``variable("chips", 8, 64, paths=("parallelism.tp", "parallelism.ep"))`` (tied),
    ``variable("batch", 1, 256, workload=2)`` (only the third design of a mix; results
    name it ``"batch@2"``).
    """
    key = name.rpartition("@")[0] if workload is not None and name.endswith(f"@{workload}") else name
    if paths is None:
        paths, default_scale = ALIASES.get(key, ((key,), False))
    else:
        paths, default_scale = tuple(paths), False
    scale = default_scale if scale is None else bool(scale)
    try:
        lo, hi = float(lower), float(upper)
    except (TypeError, ValueError):
        raise InputError(f"variable {name}: bounds", (lower, upper), "two numbers") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise InputError(f"variable {name}: bounds", f"{lower}:{upper}", "finite numbers with 0 < lower < upper")
    count = key in _COUNTS and paths == ALIASES[key][0]
    if integer is None:
        integer = count or (not scale and all(p.startswith(_INTEGER_PREFIXES) for p in paths))
    if choices is not None:
        choices = tuple(sorted(float(c) for c in choices if lo <= float(c) <= hi))
        if not choices:
            raise InputError(f"variable {name}: choices", choices, f"at least one value within [{lo:g}, {hi:g}]")
    if workload is not None:
        if isinstance(workload, bool) or not isinstance(workload, (int, np.integer)) or workload < 0:
            raise InputError(f"variable {name}: workload", workload, "None (every design) or a design index >= 0")
        workload = int(workload)
        name = name if name.endswith(f"@{workload}") else f"{name}@{workload}"
    return Variable(name, tuple(paths), lo, hi, scale, bool(integer), choices, count, workload)


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
      baseline's metric values (exact). For a mix these are the first design's;
      `designs`, `workload_metrics` and `baseline_workload_metrics` hold every design's
      (one entry for a single design), and `margins` labels end with ``[@i]``.
    - `shares`: the normalised weights of the designs in the objective (``(1.0,)`` for
      a single design).
    - `history`: arrays over ``(start, step)``: ``objective`` (smooth), ``violation`` (the
      largest constraint violation) and ``values`` (variables, a last axis); and the
      phases: ``multiplier_updates`` (the steps after which the multipliers were
      updated) and ``restoration_start`` (first step of feasibility restoration).
    - `evaluations`: model evaluations (each with its gradient) the search used, over
      every start (Adam: one per step; L-BFGS: one per step plus its line-search
      trials, none while settled); `candidates`: exact evaluations of rounded designs;
      `seconds`: wall time. For a mix, one evaluation covers every design.
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
    designs: tuple = ()
    workload_metrics: tuple = ()
    baseline_workload_metrics: tuple = ()
    shares: tuple = (1.0,)


def _check_metric(design, name, what):
    names = metric_names(design)
    if name not in names:
        extra = "" if design.technology is not None else " (economics metrics need a technology)"
        raise InputError(what, name, "a metric: " + ", ".join(names) + extra, did_you_mean(name, names))


def _units(design, v: Variable):
    """Baseline count of a `count` variable: memory devices the bandwidth needs."""
    if design.technology is None:
        raise InputError(f"variable {v.name}", v.name, "a design with a technology (it sets the device bandwidth)")
    per_device = float(design.technology.device_bandwidth_bytes_per_s)
    if per_device <= 0:
        raise InputError(f"variable {v.name}", v.name, "a memory technology with a device bandwidth (not on-die SRAM)")
    return max(round(float(design.hardware.memory_bandwidth_bytes_per_s) / per_device), 1)


def _applies(v, i):
    """Whether variable `v` sets design `i` of a mix."""
    return v.workload is None or v.workload == i


def _baseline_value(designs, v: Variable):
    """A variable's baseline: from its design (the first design for a shared one)."""
    design = designs[v.workload or 0]
    if v.count:
        return float(_units(design, v))
    if v.scale:
        return 1.0
    return float(get_value(design, v.paths[0]))


def _base_leaves(designs, variables):
    """Per design: the baseline value of every path a scaling variable multiplies (per
    unit for counts)."""
    return tuple({p: get_value(d, p) / (_units(d, v) if v.count else 1.0)
                  for v in variables if v.scale and _applies(v, i) for p in v.paths}
                 for i, d in enumerate(designs))


def _apply(designs, variables, x, base_leaves):
    """Every design with its variables set from the value vector `x` (outside `jit`)."""
    return _set(designs, tuple((v.paths, v.scale, v.workload) for v in variables), base_leaves, x)


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


def _mix(vals, terms, log_shares):
    """The objective of a mix (in log): ``log sum_i p_i exp(L_i)`` over its designs'
    objectives ``L_i`` (a share-weighted mean, e.g. fleet $/token for token shares);
    ``L_0`` for one design (``p_0 = 1``)."""
    return jax.nn.logsumexp(jnp.stack([_objective(v, terms) for v in vals]) + log_shares)


def _mix_margins(vals, bounds, limits, slack=0.0):
    """Every design's margins, design after design."""
    return jnp.concatenate([_margins(v, bounds, limits, slack) for v in vals])


def _allowed(designs, v: Variable, base_leaves):
    """Whole values a variable may take: its choices, else the integers in its bounds that
    make a valid design (parallel degrees are checked against each model it sets)."""
    values = v.choices or tuple(float(k) for k in range(int(np.ceil(v.lower)), int(np.floor(v.upper)) + 1))
    if not values:
        raise InputError(f"variable {v.name}: bounds", f"{v.lower:g}:{v.upper:g}", "a range holding a whole number")
    if any(p.startswith("parallelism.") for p in v.paths) and len(values) <= 4096:
        ok = [k for k in values if all(_valid(d, i, (v,), [k], base_leaves) for i, d in enumerate(designs)
                                       if _applies(v, i))]
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


def _rounding_candidates(x, allowed, n_vars, wide=12, spread=0.35, far=None):
    """Whole-number designs near a relaxed point `x`: every combination of the two
    allowed values on either side of each whole-number variable, plus, one variable at
    a time, up to `wide` allowed values within ``x * (1 +- spread)`` (so when rounding
    one variable tightens a budget, another can give back more than two steps, e.g. a
    smaller batch for one HBM stack fewer) and, given `far`, up to `wide` more spaced
    evenly in log from ``x / far`` to ``x * far`` (e.g. the batch that suits a
    neighbouring chip count). Continuous variables keep their values."""
    near = [_neighbours(x[i], allowed[i]) if i in allowed else np.asarray([x[i]]) for i in range(n_vars)]
    if int(np.prod([len(o) for o in near])) > _MAX_COMBINATIONS:
        near = [_neighbours(x[i], allowed[i], k=1) if i in allowed else o for i, o in enumerate(near)]
    out = list(itertools.product(*near))
    for i in allowed:
        a = allowed[i]
        band = a[(a >= x[i] * (1 - spread)) & (a <= x[i] * (1 + spread))]
        if len(band) > wide:
            band = band[np.unique(np.linspace(0, len(band) - 1, wide).round().astype(int))]
        if far is not None:
            targets = x[i] * np.geomspace(1.0 / far, far, wide)
            band = np.union1d(band, a[np.abs(np.log(a[None, :] / targets[:, None])).argmin(axis=1)])
        options = [*near[:i], band, *near[i + 1:]]
        if len(band) and int(np.prod([len(o) for o in options])) <= _MAX_COMBINATIONS:
            out.extend(itertools.product(*options))
    return out


def size(
    design,
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
    shares=None,
) -> SizingResult:
    """Size a design by gradient descent under constraints (see the module docstring).

    **Arguments:**

    - `design`: the baseline `Design` (e.g. `diffhw.from_presets(...)`); every leaf not
      named by a variable keeps its value. Or a *mix*: a list of designs (workloads
      served by the same hardware), sized together: variables without a `workload` set
      every design (the shared hardware), the others one design each (its batch, its
      chips); every constraint must hold for every design.
    - `variables`: `Variable`s (see `variable`), or ``(name, lower, upper)`` tuples.
    - `objective`: a metric name, ``"name:max"``, or a dict of weights (see
      `objective_terms`). For a mix: the `shares`-weighted mean over its designs of
      each design's objective (of ``1 / metric`` for a maximised one), so with token
      shares ``usd_per_million_tokens`` is the fleet's $ per token and
      ``tokens_per_s_per_watt`` its tokens per joule.
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
    - `shares`: for a mix, each design's weight in the objective (e.g. its share of the
      tokens served; normalised); default equal.

    **Returns:** a `SizingResult`. It says `feasible=False` (with `violations`) rather
    than raising when no design meets the budgets.
    """
    t0 = time.perf_counter()
    designs = tuple(design) if isinstance(design, (list, tuple)) else (design,)
    if not designs or not all(isinstance(d, Design) for d in designs):
        raise InputError("design", type(design).__name__, "a Design or a non-empty list of Designs")
    n_d = len(designs)
    if shares is None:
        shares = np.full(n_d, 1.0 / n_d)
    else:
        try:
            shares = np.asarray(shares, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise InputError("shares", shares, f"{n_d} positive numbers, one per design") from None
        if len(shares) != n_d or not np.all(np.isfinite(shares) & (shares > 0)):
            raise InputError("shares", shares.tolist(), f"{n_d} positive numbers, one per design")
        shares = shares / shares.sum()
    variables = tuple(v if isinstance(v, Variable) else variable(*v) for v in variables)
    if not variables:
        raise InputError("variables", "()", "at least one design variable")
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        raise InputError("variables", names, "distinct names")
    for v in variables:
        if v.workload is not None and v.workload >= n_d:
            raise InputError(f"variable {v.name}: workload", v.workload, f"a design index from 0 to {n_d - 1}")
        for i, d in enumerate(designs):
            if _applies(v, i):
                for p in v.paths:
                    check_path(d, p)
    constraints = tuple(constraint(c) for c in constraints)
    if not any(c.metric == "memory_margin" for c in constraints):
        constraints = (Constraint("memory_margin", lower=0.0), *constraints)
    terms = objective_terms(objective)
    for d in designs:
        for c in constraints:
            _check_metric(d, c.metric, "constraint metric")
        for n, _, _ in terms:
            _check_metric(d, n, "objective metric")
    if method not in METHODS:
        raise InputError("method", method, " or ".join(METHODS))
    for name, value in (("starts", starts), ("outer_steps", outer_steps), ("inner_steps", inner_steps)):
        if int(value) != value or value < 1:
            raise InputError(name, value, "a whole number >= 1")

    bases = tuple(anonymous(d) for d in designs)
    base_leaves = _base_leaves(bases, variables)
    var_spec = tuple((v.paths, v.scale, v.workload) for v in variables)
    bounds, limits = _bounds(constraints)
    spec = _Spec(var_spec, bounds, terms, int(outer_steps), int(inner_steps), max(int(inner_steps) // 2, 20),
                 float(learning_rate), float(penalty), float(penalty_growth), float(slack), tau, method)
    lo = np.asarray([v.lower for v in variables])
    hi = np.asarray([v.upper for v in variables])
    limits = jnp.asarray(limits)
    log_shares = jnp.asarray(np.log(shares))

    # Exact (tau = 0) metrics of the baseline: the objective's scale and the report.
    baseline_x = np.asarray([_baseline_value(designs, v) for v in variables])
    base_vals = _values(bases, var_spec, base_leaves, jnp.asarray(baseline_x), 0)
    f0 = float(_mix(base_vals, terms, log_shares))
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
        f_hist, viol_hist, x_hist, n_hist = _search(bases, spec, base_leaves, jnp.asarray(lo), jnp.asarray(hi),
                                                    limits, jnp.asarray(f0), log_shares, jnp.asarray(z_starts))
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
    check = _Checker(designs, bases, variables, var_spec, bounds, base_leaves, limits, terms, np.log(shares))
    cands, cand_vals, cand_margins, cand_obj = check.round([x_hist[s, best_idx[s]] for s in order[:3]])
    feasible = np.all(cand_margins >= 0.0, axis=1) & np.isfinite(cand_obj)
    if feasible.any():
        pick = int(np.argmin(np.where(feasible, cand_obj, np.inf)))
    else:  # the least violating candidate
        pick = int(np.argmin(np.sum(np.maximum(-cand_margins, 0.0), axis=1)))
    chosen_x = cands[pick]
    chosen_vals = [{k: float(v[pick]) for k, v in vals.items()} for vals in cand_vals]
    relaxed_vals = _values(bases, var_spec, base_leaves, jnp.asarray(relaxed_x), 0)

    labels = [_label(metric, sign, limit) for (metric, sign, _), limit in zip(bounds, limits.tolist(), strict=True)]
    if n_d > 1:
        labels = [f"{label} [@{i}]" for i in range(n_d) for label in labels]
    logs = [log for _ in range(n_d) for _, _, log in bounds]
    margins = dict(zip(labels, map(float, cand_margins[pick]), strict=True))
    violations = ()
    if not feasible.any():
        # Per bound, the best margin any candidate reached; if each bound alone is met
        # by some candidate, the chosen (least violating) one's misses.
        best = cand_margins.max(axis=0)
        shown = best if (best < 0).any() else cand_margins[pick]
        violations = tuple(_violation_line(labels[j], logs[j], shown[j]) for j in np.flatnonzero(shown < 0))

    def reported(f_log):
        """The objective in the metric's unit for one term; else the weighted geometric
        mean ``exp(sum(w s log m) / sum(w))`` (lower is better)."""
        scale = terms[0][1] * terms[0][2] if len(terms) == 1 else sum(w for _, w, _ in terms)
        return np.exp(np.asarray(f_log, dtype=float) / scale)

    chosen_designs = _apply(designs, variables, jnp.asarray(chosen_x), base_leaves)
    baseline_metrics = [{k: float(v) for k, v in vals.items()} for vals in base_vals]
    return SizingResult(
        variables=variables,
        constraints=constraints,
        objective_spec=terms,
        baseline=dict(zip(names, map(float, baseline_x), strict=True)),
        relaxed=dict(zip(names, map(float, relaxed_x), strict=True)),
        chosen=dict(zip(names, map(float, chosen_x), strict=True)),
        objective_baseline=float(reported(f0)),
        objective_relaxed=float(reported(_mix(relaxed_vals, terms, log_shares))),
        objective=float(reported(cand_obj[pick])),
        margins=margins,
        feasible=bool(feasible[pick]),
        violations=violations,
        metrics=chosen_vals[0],
        baseline_metrics=baseline_metrics[0],
        history={"objective": reported(f_hist + f0), "violation": viol_hist, "values": x_hist,
                 "multiplier_updates": [(k + 1) * int(inner_steps) for k in range(int(outer_steps))],
                 "restoration_start": int(outer_steps) * int(inner_steps)},
        evaluations=n_evaluations,
        candidates=check.evaluated,
        seconds=time.perf_counter() - t0,
        design=chosen_designs[0],
        designs=chosen_designs,
        workload_metrics=tuple(chosen_vals),
        baseline_workload_metrics=tuple(baseline_metrics),
        shares=tuple(float(p) for p in shares),
    )


class _Checker:
    """Rounds relaxed points to whole-number designs and evaluates them exactly.

    One design (or a mix whose whole-number variables are all shared): every
    combination near the relaxed point (`_rounding_candidates`). A mix with per-design
    whole-number variables: each design's own candidates only change that design's
    metrics, so they are evaluated side by side (row ``j`` holds every design's ``j``-th
    candidate), each design keeps its best (feasible first), and the combinations that
    result, one per candidate of the shared variables, are evaluated once more; the
    count of evaluated rows is `evaluated`."""

    def __init__(self, designs, bases, variables, var_spec, bounds, base_leaves, limits, terms, log_shares):
        self.designs, self.bases, self.variables, self.var_spec = designs, bases, variables, var_spec
        self.bounds, self.base_leaves, self.limits, self.terms = bounds, base_leaves, limits, terms
        self.log_shares, self.evaluated = log_shares, 0
        self.allowed = {i: _allowed(designs, v, base_leaves) for i, v in enumerate(variables) if v.integer}
        self.shared = {i: a for i, a in self.allowed.items() if variables[i].workload is None}
        self.own = [{i: a for i, a in self.allowed.items() if variables[i].workload == w}
                    for w in range(len(designs))]

    def valid(self, rows):
        """(rows, designs): whether each design's parallel degrees fit its model."""
        if not any(p.startswith("parallelism.") for v in self.variables for p in v.paths):
            return np.ones((len(rows), len(self.designs)), dtype=bool)
        return np.asarray([[_valid(d, i, self.variables, row, self.base_leaves) for i, d in enumerate(self.designs)]
                           for row in rows])

    def evaluate(self, rows):
        """Exact metrics (per design), margins (all designs), per-design objectives and
        the mix objective of `rows`."""
        n = len(rows)
        # Evaluate in buckets of a power-of-two size so the exact check compiles rarely.
        padded = np.concatenate([rows, np.repeat(rows[:1], (1 << max(n - 1, 1).bit_length()) - n, axis=0)])
        vals, margins = _exact(self.bases, self.var_spec, self.bounds, self.base_leaves, self.limits,
                               jnp.asarray(padded))
        self.evaluated += n
        vals = [{k: np.asarray(v)[:n] for k, v in d.items()} for d in vals]
        per = np.stack([sum(w * s * np.log(np.maximum(v[m], 1e-300)) for m, w, s in self.terms) for v in vals], 1)
        mix = np.logaddexp.reduce(per + self.log_shares[None, :], axis=1)
        return vals, np.asarray(margins)[:n], per, mix

    def round(self, points):
        """Rounded candidates near the relaxed `points`, evaluated exactly: (rows,
        metrics per design, margins, mix objective)."""
        n_v = len(self.variables)
        if not any(self.own):
            return self._final([c for x in points for c in _rounding_candidates(x, self.allowed, n_v)])
        # Per design: rows over the shared candidates, each design's own side by side.
        own_idx = [[i for i, v in enumerate(self.variables) if v.workload == w] for w in range(len(self.designs))]
        blocks, rows = [], []
        for x in points:
            for sx in np.unique(np.asarray(_rounding_candidates(x, self.shared, n_v), dtype=float), axis=0):
                own = [np.asarray(_rounding_candidates(sx, a, n_v, far=_FAR), dtype=float) if a else sx[None]
                       for a in self.own]
                k = max(len(o) for o in own)
                block = np.stack([sx] * k)
                for o, idx in zip(own, own_idx, strict=True):
                    block[:, idx] = o[np.arange(k) % len(o)][:, idx]
                blocks.append((len(rows), k, sx))
                rows.extend(block)
        rows = np.asarray(rows)
        valid = self.valid(rows)
        _, margins, per, _ = self.evaluate(rows)
        m = margins.reshape(len(rows), len(self.designs), len(self.bounds))
        combined = []
        for start, k, sx in blocks:
            row, sl = sx.copy(), slice(start, start + k)
            for w, idx in enumerate(own_idx):
                ok = valid[sl, w] & np.all(m[sl, w] >= 0.0, axis=1) & np.isfinite(per[sl, w])
                if ok.any():
                    j = int(np.argmin(np.where(ok, per[sl, w], np.inf)))
                else:  # the least violating (a valid parallelism first)
                    j = int(np.argmin(np.sum(np.maximum(-m[sl, w], 0.0), axis=1) + 1e9 * ~valid[sl, w]))
                row[idx] = rows[start + j, idx]
            combined.append(row)
        return self._final(combined)

    def _final(self, cands):
        """The distinct `cands` whose parallel degrees fit every model, evaluated."""
        cands = np.unique(np.asarray(cands, dtype=float), axis=0)
        cands = cands[self.valid(cands).all(axis=1)]
        if not len(cands):
            raise InputError("variables", [v.name for v in self.variables],
                             "bounds whose whole values give a valid parallelism for every model")
        vals, margins, _, mix = self.evaluate(cands)
        return cands, vals, margins, mix


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


def _set(bases, var_spec, base_leaves, x):
    """Every design of a mix with the variables that set it at `x` (a tuple)."""
    out = []
    for d, (base, leaves) in enumerate(zip(bases, base_leaves, strict=True)):
        values = {}
        for i, (paths, scale, workload) in enumerate(var_spec):
            if workload is None or workload == d:
                for p in paths:
                    values[p] = x[i] * leaves[p] if scale else x[i]
        out.append(set_values(base, values))
    return tuple(out)


@eqx.filter_jit
def _values(bases, var_spec, base_leaves, x, tau):
    return tuple(design_values(d, tau) for d in _set(bases, var_spec, base_leaves, x))


@eqx.filter_jit
def _exact(bases, var_spec, bounds, base_leaves, limits, xs):
    """Exact (tau = 0) metrics (per design) and margins (all designs) of candidate
    designs, under `vmap`."""

    def one(x):
        vals = tuple(design_values(d, 0) for d in _set(bases, var_spec, base_leaves, x))
        return vals, _mix_margins(vals, bounds, limits)

    return jax.vmap(one)(xs)


@eqx.filter_jit
def _search(bases, spec: _Spec, base_leaves, lo, hi, limits, f0, log_shares, z_starts):
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
    n_g = len(spec.bounds) * len(bases)  # every design's margins
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
        vals = tuple(design_values(d, spec.tau) for d in _set(bases, spec.variables, base_leaves, x_of(z)))
        f = _mix(vals, spec.terms, log_shares) - f0
        g = _mix_margins(vals, spec.bounds, limits, spec.slack)
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


def _valid(design, index, variables, x, base_leaves):
    """Whether the parallel degrees of `design` (design `index` of a mix) with
    `variables` at `x` fit its model."""
    from ._workload._workload import validate_parallelism

    keep = [i for i, v in enumerate(variables) if _applies(v, index)]
    spec = tuple((variables[i].paths, variables[i].scale, None) for i in keep)
    d = _set((design,), spec, (base_leaves[index],), [x[i] for i in keep])[0]
    try:
        validate_parallelism(design.model, d.parallelism)
    except InputError:
        return False
    return True
