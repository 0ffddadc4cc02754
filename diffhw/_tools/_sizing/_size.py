"""`size`: the public entry point of sizing, as the steps its docstring names."""

import dataclasses
import sys
import time

import jax
import numpy as np
from tqdm import tqdm

from ... import _smooth
from ..._errors import InputError
from ..._evaluation._design import Design, anonymous, check_design, check_path, set_values
from ..._jit import device_floats
from ._problem import (
    Constraint,
    Variable,
    _applies,
    _base_leaves,
    _baseline_value,
    _bounds,
    _check_metric,
    constraint,
    objective_terms,
    variable,
)
from ._rounding import _allowed, _Checker, _neighbours
from ._search import _groups, _search, _Spec

#: Inner optimisers of `size`: Adam steps, or L-BFGS with a line search.
METHODS = ("adam", "lbfgs")
#: The baseline start is kept this far (a share of each log range) inside the bounds.
START_INSIDE = 0.05


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
      updated) and ``restoration_start`` (first step of feasibility restoration). A start
      that stopped early repeats its last step to the end.
    - `evaluations`: model evaluations (each with its gradient) the search used, over
      every start (Adam: one per step run; L-BFGS: one per step plus its line-search
      trials, none while settled; none after a start stopped); `candidates`: exact evaluations of rounded designs;
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


def size(
    design,
    variables,
    objective="usd_per_million_tokens",
    constraints=(),
    *,
    starts: int | None = None,
    outer_steps: int = 6,
    inner_steps: int | None = None,
    learning_rate: float = 0.08,
    penalty: float = 100.0,
    penalty_growth: float = 2.0,
    slack: float = 2e-3,
    seed: int = 0,
    tau: float = _smooth.DEFAULT_TAU,
    method: str = "adam",
    shares=None,
    progress=None,
) -> SizingResult:
    """Size a design by gradient descent under constraints, in the steps of the package
    docstring: check the problem, reparameterise (bounded log-space variables and the
    starts), search the relaxed problem, round to whole numbers with an exact re-check,
    pick, and report.

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
      (``memory_margin >= 0``) is always added, or for designs with a serving goal at
      ``load="batch"`` the load sustainable (``serving_utilization <= 1``: the KV cache
      at the sequences' mean length and the Prefill lane).
    - `starts`: optimisations run one after another (the first starts from the
      baseline, clipped into bounds; the others at random). None (default): 4, or 2
      with more than ten variables, whose longer runs per start matter more than more
      starts (benchmarks/sizing.py, problems e and f: the same design from 2 as from 4).
    - `outer_steps`, `inner_steps`, `learning_rate`: multiplier updates, Adam steps per
      update, Adam's step size (in the unbounded ``z`` space). These are budgets: at a
      multiplier update a start stops when it is settled (feasible, its best objective
      improved by under 0.01% over the last two blocks of `inner_steps`) or, from the
      third update on, losing (its best more than 5% above the best of the starts before
      it); its skipped steps cost no evaluation (`diffhw._tools._sizing._search`). `inner_steps=None`
      (default) takes 80, or 8 per variable when there are more than ten: a fleet of 89
      variables needs ~700 steps per update to settle (benchmarks/sizing.py, problem f).
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
    - `progress`: True shows the step being run (a tqdm line on stderr), False hides
      it; None (default) shows it when stderr is a terminal.

    **Returns:** a `SizingResult`. It says `feasible=False` (with `violations`) rather
    than raising when no design meets the budgets.
    """
    return _prepare_size(design, variables, objective, constraints, starts=starts, outer_steps=outer_steps,
                         inner_steps=inner_steps, learning_rate=learning_rate, penalty=penalty,
                         penalty_growth=penalty_growth, slack=slack, seed=seed, tau=tau, method=method,
                         shares=shares, progress=progress)()


def default_inner_steps(n_variables: int) -> int:
    """`size`'s Adam steps per multiplier update when `inner_steps` is None: 80 (enough
    for the 2-12 variables of problems a-d in benchmarks/sizing.py), or 8 per variable
    beyond ten (problem f, 89 variables: 6 x 80 steps ended 11% above its best design,
    6 x 400 1-2%, 6 x 712 found it)."""
    return max(80, 8 * int(n_variables))


def default_starts(n_variables: int) -> int:
    """`size`'s starts when `starts` is None: 4, or 2 beyond ten variables (each start
    then runs `default_inner_steps`' longer search)."""
    return 4 if int(n_variables) <= 10 else 2


def _prepare_size(design, variables, objective, constraints, *, starts, outer_steps, inner_steps, learning_rate,
                  penalty, penalty_growth, slack, seed, tau, method, shares, progress):
    """`size`'s checks, then its search's program announced (`filter_jit`'s ``prepare``:
    compiled in the background while the program cache is on); returns the function
    that runs the rest. The command line announces its report's programs in between."""
    t0 = time.perf_counter()
    problem = _check_problem(design, variables, objective, constraints, shares, method,
                             starts, outer_steps, inner_steps)
    if inner_steps is None:
        inner_steps = default_inner_steps(len(problem.variables))
    if starts is None:
        starts = default_starts(len(problem.variables))
    spec = _Spec(problem.var_spec, problem.bounds, problem.terms, int(outer_steps), int(inner_steps),
                 max(int(inner_steps) // 2, 20), float(learning_rate), float(penalty), float(penalty_growth),
                 float(slack), tau, method, problem.groups)
    steps = _Steps(progress, ("baseline (compiling the model)",
                              f"search: {int(starts)} starts x {int(outer_steps)} x {int(inner_steps)} {method} steps",
                              "rounding to whole numbers (exact re-check)", "report"))
    check = _Checker(problem.designs, problem.variables, problem.bounds, problem.base_leaves, problem.groups,
                     problem.group_bases, problem.group_leaves, problem.limits, problem.terms,
                     np.log(problem.shares), problem.allowed)
    baseline_x = np.asarray([_baseline_value(problem.designs, v) for v in problem.variables])
    z_starts = _reparameterise(problem, baseline_x, starts, seed)
    _search_relaxed(problem, spec, 0.0, z_starts, prepare=True)  # compiles while the baseline is evaluated

    def run() -> SizingResult:
        base_vals, f0 = _baseline(problem, objective, check, baseline_x)
        steps.next()
        history = _search_relaxed(problem, spec, f0, z_starts)
        steps.next()
        best = _best_relaxed(history)
        candidates = check.round([history.x[s, i] for s, i in best[:3]])
        pick, feasible = _pick(candidates)
        candidates, pick, feasible = _polish(problem, check, candidates, pick, feasible)
        steps.next()
        result = _report(problem, spec, baseline_x, base_vals, f0, history, best[0], candidates, pick, feasible,
                         check, time.perf_counter() - t0)
        steps.close()
        return result

    return run


class _Steps:
    """The step `size` is running, as one tqdm line on stderr (see `size`'s `progress`)."""

    def __init__(self, progress, names):
        show = sys.stderr.isatty() if progress is None else bool(progress)
        self.names, self.i = names, 0
        self.bar = tqdm(total=len(names), desc="size", file=sys.stderr, leave=False, disable=not show,
                        bar_format="{desc}: step {n_fmt}/{total_fmt} {postfix} [{elapsed}]")
        self.bar.set_postfix_str(names[0])

    def next(self):
        self.bar.update(1)
        self.i += 1
        if self.i < len(self.names):
            self.bar.set_postfix_str(self.names[self.i])

    def close(self):
        self.bar.close()


@dataclasses.dataclass(frozen=True)
class _Problem:
    """A checked sizing problem: the designs of a mix (`bases` without static names),
    the variables and their static structure (`var_spec`), the designs in groups
    evaluated as one (`groups`, with each group's design and scaled leaves, stacked for
    a group of several: `_search._groups`), the constraints' bounds and limits, the
    objective terms, the designs' shares and the variables' bounds."""

    designs: tuple
    bases: tuple
    variables: tuple
    var_spec: tuple
    base_leaves: tuple
    constraints: tuple
    bounds: tuple
    limits: jax.Array
    terms: tuple
    shares: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    allowed: dict  # variable index -> the whole values a whole-number variable may take
    groups: tuple = ()
    group_bases: tuple = ()
    group_leaves: tuple = ()

    @property
    def log_shares(self):
        return device_floats(np.log(self.shares))


@dataclasses.dataclass(frozen=True)
class _History:
    """Per start and step: the smooth objective (log, relative to the baseline), the
    largest violation and the variables; and the evaluations the search used."""

    f: np.ndarray
    violation: np.ndarray
    x: np.ndarray
    evaluations: int


def _check_shares(shares, n_d):
    if shares is None:
        return np.full(n_d, 1.0 / n_d)
    try:
        shares = np.asarray(shares, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("shares", shares, f"{n_d} positive numbers, one per design") from None
    if len(shares) != n_d or not np.all(np.isfinite(shares) & (shares > 0)):
        raise InputError("shares", shares.tolist(), f"{n_d} positive numbers, one per design")
    return shares / shares.sum()


def _check_variables(variables, designs):
    variables = tuple(v if isinstance(v, Variable) else variable(*v) for v in variables)
    if not variables:
        raise InputError("variables", "()", "at least one design variable")
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        raise InputError("variables", names, "distinct names")
    for v in variables:
        if v.workload is not None and v.workload >= len(designs):
            raise InputError(f"variable {v.name}: workload", v.workload, f"a design index from 0 to {len(designs) - 1}")
        for i, d in enumerate(designs):
            if _applies(v, i):
                for p in v.paths:
                    check_path(d, p)
    return variables


def _check_problem(design, variables, objective, constraints, shares, method, starts, outer_steps,
                   inner_steps) -> _Problem:
    """Every argument of `size` checked (one `InputError` naming the first bad one) and
    the problem's static structure."""
    designs = tuple(design) if isinstance(design, (list, tuple)) else (design,)
    if not designs or not all(isinstance(d, Design) for d in designs):
        raise InputError("design", type(design).__name__, "a Design or a non-empty list of Designs")
    shares = _check_shares(shares, len(designs))
    variables = _check_variables(variables, designs)
    constraints = tuple(constraint(c) for c in constraints)
    if all(getattr(d.serving, "load", None) == "batch" for d in designs):
        # serving at a load: the KV cache is held at the sequences' mean length (the
        # serving utilization's cap), not a static batch at full length
        if not any(c.metric == "serving_utilization" for c in constraints):
            constraints = (Constraint("serving_utilization", upper=1.0), *constraints)
    elif not any(c.metric == "memory_margin" for c in constraints):
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
        if value is None and name in ("starts", "inner_steps"):
            continue
        if int(value) != value or value < 1:
            raise InputError(name, value, "a whole number >= 1")
    bases = tuple(anonymous(d) for d in designs)
    bounds, limits = _bounds(constraints)
    # The search and the exact re-check run without value checks: check every design
    # with all variables at their lower and at their upper bounds (each check is an
    # interval on one leaf, which a variable moves monotonically).
    base_leaves = _base_leaves(bases, variables)
    # a whole-number variable must have a whole value to round to (checked before the search)
    allowed = {i: _allowed(designs, v, base_leaves) for i, v in enumerate(variables) if v.integer}
    for x in (np.asarray([v.lower for v in variables]), np.asarray([v.upper for v in variables])):
        for d in _apply(designs, variables, x, base_leaves):
            check_design(d)
    var_spec = tuple((v.paths, v.scale, v.workload) for v in variables)
    groups, group_bases, group_leaves = _groups(bases, var_spec, base_leaves)
    return _Problem(
        designs=designs, bases=bases, variables=variables, var_spec=var_spec,
        base_leaves=base_leaves, constraints=constraints, bounds=bounds,
        limits=device_floats(limits), terms=terms, shares=shares,
        lo=np.asarray([v.lower for v in variables]), hi=np.asarray([v.upper for v in variables]),
        allowed=allowed, groups=groups, group_bases=group_bases, group_leaves=group_leaves,
    )


def _baseline(problem: _Problem, objective, check: _Checker, baseline_x):
    """The baseline's exact (tau = 0) metrics per design and its objective (log): the
    objective's scale and the report's reference."""
    base_vals, _, _, mix = check.evaluate(baseline_x[None], count=False)
    f0 = float(mix[0])
    if not np.isfinite(f0):
        raise InputError("objective", objective, "a metric that is finite and positive at the baseline")
    return base_vals, f0


def _reparameterise(problem: _Problem, baseline_x, starts, seed):
    """The starts in the unbounded ``z`` space, where a variable is
    ``lower * (upper / lower) ** sigmoid(z)``: the baseline and random points. The
    baseline is moved at least `START_INSIDE` of each log range inside its bounds: at a
    bound, sigmoid(z) is flat and a start there would barely move (e.g. SRAM 0 or a
    placement share of 1)."""
    lo, hi = problem.lo, problem.hi
    u0 = np.log(np.clip(baseline_x, lo, hi) / lo) / np.log(hi / lo)
    u0 = np.clip(u0, START_INSIDE, 1.0 - START_INSIDE)
    z_base = np.log(u0) - np.log1p(-u0)
    rng = np.random.default_rng(seed)
    return np.concatenate([z_base[None], rng.uniform(-2.5, 2.5, (starts - 1, len(problem.variables)))])


def _search_relaxed(problem: _Problem, spec: _Spec, f0, z_starts, prepare=False) -> _History | None:
    """The augmented-Lagrangian search from every start (`_search`); with `prepare`, only
    start compiling it in the background (`diffhw._jit.filter_jit`'s ``prepare``)."""
    args = (problem.group_bases, spec, problem.group_leaves, device_floats(problem.lo), device_floats(problem.hi),
            problem.limits, device_floats(f0), problem.log_shares, device_floats(z_starts))
    with jax.numpy_dtype_promotion("standard"):  # Optax mixes its int step count with floats
        if prepare:
            _search.prepare(*args)
            return None
        f, viol, x, n = _search(*args)
    return _History(np.asarray(f), np.asarray(viol), np.asarray(x), int(round(float(np.sum(np.asarray(n))))))


def _best_relaxed(history: _History, tol=1e-4):
    """``(start, step)`` of each start's best relaxed point, best start first: feasible
    (within the slack) first, lowest objective next; a start that never got feasible
    offers its least violating point."""
    best = []
    for s in range(history.f.shape[0]):
        ok = history.violation[s] <= tol
        best.append(int(np.argmin(np.where(ok, history.f[s], np.inf))) if ok.any()
                    else int(np.argmin(history.violation[s])))
    order = sorted(range(len(best)), key=lambda s: (history.violation[s, best[s]] > tol, history.f[s, best[s]]))
    return [(s, best[s]) for s in order]


def _pick(candidates):
    """Index of the chosen rounded candidate: the best feasible one, else the least
    violating; and which candidates are feasible."""
    _, _, margins, objective = candidates
    feasible = np.all(margins >= 0.0, axis=1) & np.isfinite(objective)
    if feasible.any():
        return int(np.argmin(np.where(feasible, objective, np.inf))), feasible
    return int(np.argmin(np.sum(np.maximum(-margins, 0.0), axis=1))), feasible


#: `_polish`: the first relative step of a continuous variable (log), the smallest, and
#: the most rounds of moves.
_POLISH_STEP, _POLISH_MIN_STEP, _POLISH_ROUNDS = 0.05, 0.003, 24


def _polish(problem: _Problem, check: _Checker, candidates, pick, feasible):
    """A compass search on the exact model from the chosen feasible candidate: each
    round moves one variable (a continuous one by a factor ``exp(+-step)`` within its
    bounds, a whole-number one to the next allowed value) where that lowers the exact
    objective and keeps every budget; with no such move the step shrinks (``/ 2``) to
    `_POLISH_MIN_STEP`. The relaxed search optimises the smooth model, whose maximum
    overestimates near ties (up to ``2**tau``, 1.4% at the default tau): an optimum on
    a kink of the exact model (compute time equal to memory time) lands off it, and the
    rounding moves only whole-number variables. Returns the candidates with the
    polished point appended, its index and the feasibility of every candidate."""
    if not feasible[pick]:
        return candidates, pick, feasible
    cands, _, _, obj = candidates
    x, best = cands[pick].copy(), float(obj[pick])
    n_v, step = len(problem.variables), _POLISH_STEP
    moved = False
    for _ in range(_POLISH_ROUNDS):
        rows = []
        for i in range(n_v):
            if i in check.allowed:
                a = check.allowed[i]
                rows += [np.where(np.arange(n_v) == i, v, x) for v in _neighbours(x[i], a[a != x[i]], k=1)]
            else:
                for f in (np.exp(step), np.exp(-step)):
                    v = np.clip(x[i] * f, problem.lo[i], problem.hi[i])
                    if v != x[i]:
                        rows.append(np.where(np.arange(n_v) == i, v, x))
        rows = np.asarray(rows, dtype=float).reshape(-1, n_v)
        if len(rows):
            rows = rows[check.valid(rows).all(axis=1)]
        if len(rows):
            _, margins, _, mix = check.evaluate(rows)
            ok = np.all(margins >= 0.0, axis=1) & np.isfinite(mix) & (mix < best - 1e-7)
        if len(rows) and ok.any():
            j = int(np.argmin(np.where(ok, mix, np.inf)))
            x, best, moved = rows[j], float(mix[j]), True
        elif step / 2 >= _POLISH_MIN_STEP:
            step /= 2
        else:
            break
    if not moved:
        return candidates, pick, feasible
    vals, margins, _, mix = check.evaluate(x[None], count=False)
    merged = (np.concatenate([cands, x[None]]),
              [{k: np.concatenate([np.asarray(old[k]), np.asarray(new[k])]) for k in old}
               for old, new in zip(candidates[1], vals, strict=True)],
              np.concatenate([candidates[2], margins]), np.concatenate([obj, mix]))
    return merged, len(cands), np.append(feasible, bool(np.all(margins >= 0.0) and np.isfinite(mix[0])))


def _margin_report(problem: _Problem, margins, pick, feasible):
    """Constraint label -> margin of the chosen candidate, and for an infeasible result
    a line per unmet bound. Per bound, the best margin any candidate reached is shown;
    if each bound alone is met by some candidate, the chosen (least violating) one's
    misses."""
    n_d = len(problem.designs)
    labels = [_label(metric, sign, limit)
              for (metric, sign, _), limit in zip(problem.bounds, problem.limits.tolist(), strict=True)]
    if n_d > 1:
        labels = [f"{label} [@{i}]" for i in range(n_d) for label in labels]
    logs = [log for _ in range(n_d) for _, _, log in problem.bounds]
    chosen = dict(zip(labels, map(float, margins[pick]), strict=True))
    if feasible.any():
        return chosen, ()
    best = margins.max(axis=0)
    shown = best if (best < 0).any() else margins[pick]
    return chosen, tuple(_violation_line(labels[j], logs[j], shown[j]) for j in np.flatnonzero(shown < 0))


def _reported(terms, f_log):
    """The objective in the metric's unit for one term; else the weighted geometric mean
    ``exp(sum(w s log m) / sum(w))`` (lower is better)."""
    scale = terms[0][1] * terms[0][2] if len(terms) == 1 else sum(w for _, w, _ in terms)
    return np.exp(np.asarray(f_log, dtype=float) / scale)


def _report(problem: _Problem, spec: _Spec, baseline_x, base_vals, f0, history: _History, best, candidates,
            pick, feasible, check: _Checker, seconds) -> SizingResult:
    """The `SizingResult`: the baseline, relaxed and chosen designs, margins and history."""
    cands, cand_vals, cand_margins, cand_obj = candidates
    names = [v.name for v in problem.variables]
    relaxed_x = history.x[best]
    chosen_x = cands[pick]
    chosen_vals = [{k: float(v[pick]) for k, v in vals.items()} for vals in cand_vals]
    _, _, _, relaxed_mix = check.evaluate(relaxed_x[None], count=False)
    margins, violations = _margin_report(problem, cand_margins, pick, feasible)
    chosen_designs = _apply(problem.designs, problem.variables, chosen_x, problem.base_leaves)
    baseline_metrics = [{k: float(v[0]) for k, v in vals.items()} for vals in base_vals]
    terms = problem.terms
    return SizingResult(
        variables=problem.variables,
        constraints=problem.constraints,
        objective_spec=terms,
        baseline=dict(zip(names, map(float, baseline_x), strict=True)),
        relaxed=dict(zip(names, map(float, relaxed_x), strict=True)),
        chosen=dict(zip(names, map(float, chosen_x), strict=True)),
        objective_baseline=float(_reported(terms, f0)),
        objective_relaxed=float(_reported(terms, relaxed_mix[0])),
        objective=float(_reported(terms, cand_obj[pick])),
        margins=margins,
        feasible=bool(feasible[pick]),
        violations=violations,
        metrics=chosen_vals[0],
        baseline_metrics=baseline_metrics[0],
        history={"objective": _reported(terms, history.f + f0), "violation": history.violation,
                 "values": history.x,
                 "multiplier_updates": [(k + 1) * spec.inner for k in range(spec.outer)],
                 "restoration_start": spec.outer * spec.inner},
        evaluations=history.evaluations,
        candidates=check.evaluated,
        seconds=seconds,
        design=chosen_designs[0],
        designs=chosen_designs,
        workload_metrics=tuple(chosen_vals),
        baseline_workload_metrics=tuple(baseline_metrics),
        shares=tuple(float(p) for p in problem.shares),
    )


def _apply(designs, variables, x, base_leaves):
    """Every design with its variables set from the value vector `x`, outside `jit`: as
    `_search._set` sets them, at each leaf's dtype, in NumPy (op by op in JAX, each
    first use of an operation would compile a program)."""
    x = np.asarray(x, dtype=float)
    out = []
    for d, (design, leaves) in enumerate(zip(designs, base_leaves, strict=True)):
        values = {}
        for i, v in enumerate(variables):
            if _applies(v, d):
                for p in v.paths:
                    if v.scale:
                        leaf = np.asarray(leaves[p])
                        values[p] = (leaf.dtype.type(x[i]) * leaf).astype(leaf.dtype)
                    else:
                        values[p] = x[i]
        out.append(set_values(design, values))
    return tuple(out)


def _label(metric, sign, limit):
    return f"{metric} {'<=' if sign > 0 else '>='} {limit:g}"


def _violation_line(label, log, margin):
    how = f"misses by {np.expm1(-margin) * 100:.1f}%" if log else f"misses by {-margin:.3g}"
    return f"{label}: the best design found {how}"
