"""Calibration: fit a `Profile`'s efficiency and overhead terms to measured points.

The fit is least squares on the relative error in log space,
``loss = sum_i w_i * log(predicted_i / measured_i)**2 / sum_i w_i``, minimised with Optax
(Adam) through the same model `diffhw.evaluate` runs, so the fitted terms mean what they
mean everywhere else. Every term stays physically bounded through a reparameterisation:
fractions (``bandwidth_efficiency``...) are ``sigmoid(theta)`` in (0, 1), non-negative
terms (overheads, ``compute_half_rows``) are ``scale * softplus(theta)`` >= 0. Points that
share a structure (hardware, model, precisions) are evaluated together with `jax.vmap`;
the whole optimisation is one jitted `jax.lax.scan`.

Serving points (`diffhw._io._measurements.SERVE_METRICS`: the largest request rate under
p99 limits, MLPerf Server's samples/s, or TTFT/TPOT at a measured request rate) are fitted
through `diffhw.serve` itself, its roots differentiated by the implicit function theorem,
vmapped per structure like the others. A point whose measured rate the model calls
overloaded (infinite latency) counts as a factor-10 miss and pulls on nothing.

Measured data comes as `Measurement`s or as a CSV file (`diffhw.load_points`, in
`diffhw._io._measurements`; see its `CSV_COLUMNS`).
`cross_validate` leaves one hardware (or model) out at a time, fits on the rest and
predicts the one left out.
"""

import dataclasses
import math
import statistics
from collections import defaultdict

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _smooth
from .._errors import InputError
from .._evaluation._evaluate import _anonymous, _metrics, _with_static, check_values, max_throughput
from .._hardware._memory import capacities
from .._hardware._profile import Profile
from .._io._hardware import load_hardware
from .._io._measurements import METRICS, SERVE_METRICS, Measurement
from .._io._models import load_model
from .._io._profiles import load_profile
from .._jit import filter_jit
from .._serving._serve import _serve_impl
from .._serving._traffic import Traffic, check_traffic
from .._workload._operators import shards_for, weight_bytes_per_chip
from .._workload._precision import Precision, precision
from .._workload._workload import parallelism, validate_parallelism, workload

#: Profile leaves that are fractions in (0, 1]: fitted as ``sigmoid(theta)``.
FRACTIONS = ("bandwidth_efficiency", "compute_efficiency", "network_efficiency", "memory_utilization",
             "moe_efficiency", "moe_exposed_fraction")
#: Non-negative (or positive) leaves, fitted as ``scale * softplus(theta)``. The scale is
#: the term's typical magnitude (the default profile's order of magnitude, see
#: data/profiles/default.toml); it only sets the optimiser's step in natural units, the
#: starting value always comes from the base profile.
SCALES = {
    "compute_half_rows": 8.0,
    "collective_latency_s": 1e-5,
    "step_overhead_s": 1e-3,
    "layer_overhead_s": 1e-4,
    "max_batched_tokens": 8192.0,
    "collective_step_latency_s": 1e-6,
    "sequence_overhead_s": 1e-4,
    # per-format shares of peak relative to bf16 (> 0) and the engine's batch cap: carried
    # into a fitted profile's file; a ratio is fitted only on rows in its format
    "fp8_compute_ratio": 1.0,
    "fp4_compute_ratio": 1.0,
    "int8_compute_ratio": 1.0,
    "max_batch_size": 1024.0,
}
LEAVES = FRACTIONS + tuple(SCALES)
#: What `calibrate` fits unless told otherwise: the terms every measured stack differs in.
DEFAULT_FIT = ("bandwidth_efficiency", "compute_efficiency", "collective_latency_s", "step_overhead_s",
               "layer_overhead_s")

_FITTED_METRICS = ("tpot_s", "ttft_s", "e2e_latency_s", "output_tokens_per_s", "decode_tokens_per_s")
#: `Serving` fields of the serving metrics (`SERVE_METRICS`, same order).
_SERVE_FIELDS = ("max_request_rate_per_s", "tpot_mean_s", "tpot_p99_s", "ttft_mean_s", "ttft_p99_s")
#: Log error a serving point counts with where the model calls its measured rate
#: overloaded (infinite latency): a factor-10 miss, with no gradient.
_OVERLOADED_LOG_ERROR = math.log(10.0)

# ------------------------------------------------------------------- reparameterisation
def _check_fit(fit):
    fit = tuple(fit)
    for n in fit:
        if n not in LEAVES:
            raise InputError("fit", n, "Profile leaves: " + ", ".join(LEAVES))
    if not fit:
        raise InputError("fit", "", "at least one Profile leaf: " + ", ".join(LEAVES))
    return tuple(dict.fromkeys(fit))


def to_theta(profile: Profile, fit) -> dict:
    """Unconstrained parameters whose `from_theta` is `profile`'s values of `fit` (a
    non-fraction leaf below 1% of its `SCALES` entry, e.g. 0, starts at that 1%)."""
    out = {}
    for n in fit:
        v = float(getattr(profile, n))
        if n in FRACTIONS:
            v = v * (1 - 2e-9) + 1e-9  # keep a value of exactly 1 (or 0) at a finite logit
            out[n] = jnp.asarray(math.log(v) - math.log1p(-v))
        else:
            # inverse softplus, stable for large and tiny x; a base value of 0 (a term
            # the base profile leaves out) starts at 1% of the term's scale, where Adam
            # can still move it (softplus is flat far below 0)
            x = max(v / SCALES[n], 0.01)
            out[n] = jnp.asarray(x + math.log(-math.expm1(-x)))
    return out


def from_theta(profile: Profile, theta: dict) -> Profile:
    """`profile` with the leaves in `theta` set to their bounded values."""
    for n, t in theta.items():
        v = jax.nn.sigmoid(t) if n in FRACTIONS else SCALES[n] * _smooth.softplus(t)
        profile = eqx.tree_at(lambda p, n=n: getattr(p, n), profile, v)
    return profile


# ------------------------------------------------------------------------------ problem
def _stack(xs):
    return jax.tree_util.tree_map(lambda *v: jnp.stack(v), *xs)


class _Problem:
    """Points grouped by structure, ready for one vmapped evaluation per group."""

    def __init__(self, points):
        self.points = list(points)
        if not self.points:
            raise InputError("points", 0, "at least one measured point")
        hw_cache, model_cache = {}, {}
        for i, p in enumerate(self.points):
            if p.metric not in {m for m, _ in METRICS.values()}:
                raise InputError(f"point {p.id or i}: metric", p.metric, "one of " + ", ".join(_FITTED_METRICS)
                                 + ", max_output_tokens_per_s, " + ", ".join(SERVE_METRICS))
            if p.metric in SERVE_METRICS:
                _check_serve_point(p, i)
            if not (math.isfinite(p.value) and p.value > 0):
                raise InputError(f"point {p.id or i}: value", p.value, "a finite number > 0")
            if p.hardware not in hw_cache:
                hw_cache[p.hardware] = load_hardware(p.hardware)
            if p.model not in model_cache:
                model_cache[p.model] = load_model(p.model)
        self.hardware, self.models = hw_cache, model_cache
        fits = {}
        for i, p in enumerate(self.points):
            key = (p.hardware, p.model, p.tp, p.pp, p.ep, p.weight_precision)
            if key not in fits:
                fits[key] = _weights_fit(p, hw_cache[p.hardware], model_cache[p.model])
            need, usable = fits[key]
            if need > usable:
                raise InputError(
                    f"point {p.id or i}", f"{p.model} on {p.tp * p.pp:g} x {p.hardware} (tp={p.tp:g}, pp={p.pp:g})",
                    f"a system that holds the model's weights: they need {need / 1e9:.1f} GB per chip, "
                    f"{usable / 1e9:.1f} GB is usable", "check the row's tp, pp, ep and precisions: the model "
                    "cannot have run as written, and fitting it would bend the profile")
        # Group by structure (the pytree definition, static fields included), not by
        # name: chips and precisions that differ only in values share one vmapped trace.
        # Serving points group apart, and by whether they ask for the largest rate (a
        # static switch of `serve`).
        by = defaultdict(list)
        for i, p in enumerate(self.points):
            if p.metric in _FITTED_METRICS:
                kind, design = "evaluate", _design(p, hw_cache[p.hardware], model_cache[p.model])
            elif p.metric in SERVE_METRICS:
                kind = "serve_max" if p.metric == SERVE_METRICS[0] else "serve"
                design = _serve_design(p, hw_cache[p.hardware], model_cache[p.model])
            else:
                continue
            by[(kind, jax.tree_util.tree_structure(design))].append((i, design))
        self.groups, self.index = [], []
        for (kind, _), members in by.items():
            idx = [i for i, _ in members]
            names = _FITTED_METRICS if kind == "evaluate" else SERVE_METRICS
            metric = jnp.asarray([names.index(self.points[i].metric) for i in idx])
            measured = jnp.asarray([self.points[i].value for i in idx], dtype=float)
            self.groups.append((kind, _stack([d for _, d in members]), metric, measured))
            self.index.extend(idx)
        self.index = np.asarray(self.index, dtype=int)
        self.fittable = np.zeros(len(self.points), bool)
        self.fittable[self.index] = True

    def weights(self, mask=None):
        """Loss weights in the order of the stacked groups (1 = fitted, 0 = held out)."""
        m = np.ones(len(self.points), bool) if mask is None else np.asarray(mask, bool)
        return jnp.asarray(m[self.index], dtype=float)

    def predict(self, profile: Profile, grouped) -> np.ndarray:
        """Predictions of every point with `profile` (same order as the points): the
        groups' predictions `grouped` (`_fit_jit` computes them with the base and the
        fitted profile) and the max-throughput points, searched here."""
        out = np.full(len(self.points), np.nan)
        if self.groups:
            out[self.index] = np.asarray(grouped)
        for i, p in enumerate(self.points):
            if p.metric == "max_output_tokens_per_s":
                out[i] = _predict_max_throughput(p, self.hardware[p.hardware], self.models[p.model], profile)
        return out


def _predict_max_throughput(p: Measurement, hw, model, profile):
    wl = workload(1.0, p.input_tokens, p.output_tokens, weight_precision=p.weight_precision,
                  activation_precision=p.activation_precision, kv_precision=p.kv_precision,
                  beam_width=p.beam_width)
    par = parallelism(tp=p.tp, pp=p.pp, dp=p.dp, ep=p.ep)
    r = max_throughput(hw.replace(profile=profile), model, wl, par, tpot_limit_s=p.tpot_limit_s,
                       ttft_limit_s=p.ttft_limit_s)
    return float(r.metrics.output_tokens_per_s)


def _check_base_profile(profile, prob):
    """The value checks of `evaluate` on the profile the fit starts from (a `Profile`
    passed in is not checked by a loader) with every design of every group (the checks
    read stacked leaves as they come): the fit's program leaves the checks out (the
    fitted terms stay in their ranges through their bounding transforms)."""
    for kind, designs, _, _ in prob.groups:
        hw, _, wl, par = designs[:4]
        if kind != "evaluate":
            wl = wl.workload()  # a serving point's Traffic
        check_values(hw.replace(profile=profile), wl, par)


def _weights_fit(p: Measurement, hw, model):
    """(weight bytes per chip, usable bytes per chip) of a point, in Python floats."""
    shards = shards_for(model, float(p.tp), float(p.ep))
    w = precision(p.weight_precision)
    need = weight_bytes_per_chip(model, shards, float(p.pp), w.bytes, w.head_bytes)
    return float(need), float(jnp.sum(capacities(hw)))


def _design(p: Measurement, hw, model):
    """The anonymous (hardware, model, workload, parallelism) of a point: names, which
    the maths does not read, are dropped so that points differing only in them share a
    structure."""
    def prec(name):
        q = precision(name)
        return Precision(q.bits, column=q.column, head_bits=q.head_bits, read_efficiency=q.read_efficiency)

    kv = prec(p.kv_precision) if p.kv_precision else None
    wl = workload(p.batch, p.input_tokens, p.output_tokens, weight_precision=prec(p.weight_precision),
                  activation_precision=prec(p.activation_precision), kv_precision=kv, beam_width=p.beam_width)
    par = parallelism(tp=p.tp, pp=p.pp, dp=p.dp, ep=p.ep)
    validate_parallelism(model, par)
    hw, model, _ = _anonymous(hw, model)
    return hw, model, wl, par


def _check_serve_point(p: Measurement, i):
    """A serving point's own checks (beyond `load_points`'): what `serve` takes."""
    where = f"point {p.id or i}"
    if p.metric != SERVE_METRICS[0] and not (math.isfinite(p.request_rate) and p.request_rate > 0):
        raise InputError(f"{where}: request_rate", p.request_rate, f"> 0 for {p.metric} (the rate it was measured at)")
    if p.beam_width != 1:
        raise InputError(f"{where}: beam_width", p.beam_width, "1 for a serving metric (serve has no beam search)")
    if p.metric == SERVE_METRICS[0] and math.isinf(p.tpot_limit_s) and math.isinf(p.ttft_limit_s):
        raise InputError(f"{where}: tpot_limit_s / ttft_limit_s", "none",
                         "at least one p99 limit for max_request_rate_per_s (without limits the largest rate is "
                         "the capacity, which only an overloaded engine reaches)")


def _serve_design(p: Measurement, hw, model):
    """The anonymous (hardware, model, traffic, parallelism, p99 limits) of a serving
    point (`_design`'s rules; the traffic's rate is the point's, 1 where it asks for the
    largest rate)."""
    def prec(name):
        q = precision(name)
        return Precision(q.bits, column=q.column, head_bits=q.head_bits, read_efficiency=q.read_efficiency)

    w, a = prec(p.weight_precision), prec(p.activation_precision)
    kv = prec(p.kv_precision) if p.kv_precision else a
    tr = Traffic(p.request_rate or 1.0, p.input_tokens, p.output_tokens, w, a, kv, p.input_cv, 0.0, 0.0, math.inf,
                 0.0, p.output_cv)
    check_traffic(tr)
    par = parallelism(tp=p.tp, pp=p.pp, dp=p.dp, ep=p.ep)
    validate_parallelism(model, par)
    hw, model, _ = _anonymous(hw, model)
    return hw, model, tr, par, jnp.asarray([p.ttft_limit_s, p.tpot_limit_s], dtype=float)


def _group_predictions(profile, groups):
    out = []
    for kind, designs, metric, _ in groups:
        if kind != "evaluate":
            def serve_one(hw, model, tr, par, limits, at_max=kind == "serve_max"):
                s = _serve_impl(hw.replace(profile=profile), model, tr, par, None, None, None, limits[0], limits[1],
                                at_max, _smooth.DEFAULT_TAU, False, differentiable=True)
                return jnp.stack([getattr(s, k) for k in _SERVE_FIELDS])

            pred = jax.vmap(serve_one)(*designs)
            out.append(jnp.take_along_axis(pred, metric[:, None], axis=1)[:, 0])
            continue

        def one(hw, model, wl, par):
            # checked on the host (`_check_base_profile`): no host callback in the
            # program, so the command line keeps it (with one, every `diffhw calibrate`
            # compiled its fit afresh)
            m = _metrics(hw.replace(profile=profile), model, wl, par, _smooth.DEFAULT_TAU, checked=False)
            return jnp.stack([getattr(m, k) for k in _FITTED_METRICS])

        pred = jax.vmap(one)(*designs)
        out.append(jnp.take_along_axis(pred, metric[:, None], axis=1)[:, 0])
    return jnp.concatenate(out)


def _anonymous_profile(profile):
    """`profile` without its (static) name, so that every profile shares one trace."""
    return _with_static(profile, name="")


def _log_errors(pred, groups):
    """Log errors of the groups' predictions `pred` against their measured values."""
    measured = jnp.concatenate([g[-1] for g in groups])
    finite = jnp.isfinite(pred)  # an overloaded serving point: infinite latency
    e = _smooth.safe_log(jnp.where(finite, pred, 1.0)) - jnp.log(measured)
    return jnp.where(finite, e, _OVERLOADED_LOG_ERROR)


@filter_jit
def _fit_jit(theta0, base, groups, weights, learning_rate, steps: int, huber_delta):
    """Adam on the weighted mean squared log error, `steps` steps in one `lax.scan`.
    Returns the fitted `theta`, the loss history, the final loss, and the groups'
    predictions with `base` and with the fitted profile (in this program, not a second
    one: calibrate's ``initial`` and ``predicted``)."""
    opt = optax.adam(learning_rate)

    def loss_of(pred):
        e = _log_errors(pred, groups)
        # least squares; with huber_delta > 0 a pseudo-Huber penalty (quadratic below delta)
        d = jnp.where(huber_delta > 0, huber_delta, 1.0)
        huber = 2.0 * d * d * (jnp.sqrt(1.0 + (e / d) * (e / d)) - 1.0)
        sq = jnp.where(huber_delta > 0, huber, e * e)
        return jnp.sum(weights * sq) / jnp.sum(weights)

    def loss_fn(theta):
        return loss_of(_group_predictions(from_theta(base, theta), groups))

    def step(carry, _):
        theta, state = carry
        value, grad = jax.value_and_grad(loss_fn)(theta)
        # Optax mixes its int32 step count with float moments; allow that under a
        # caller's strict promotion (only here: the model itself promotes explicitly)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = opt.update(grad, state, theta)
        return (optax.apply_updates(theta, updates), state), value

    with jax.numpy_dtype_promotion("standard"):
        state0 = opt.init(theta0)
    (theta, _), history = jax.lax.scan(step, (theta0, state0), None, length=steps)
    # the base profile's and the fitted one's predictions through one (vmapped) evaluation
    both = jax.tree.map(lambda a, b: jnp.stack([jnp.asarray(a, dtype=float), jnp.asarray(b, dtype=float)]),
                        base, from_theta(base, theta))
    initial, fitted = jax.vmap(lambda p: _group_predictions(p, groups))(both)
    return theta, history, loss_of(fitted), initial, fitted


# ------------------------------------------------------------------------------ results
def error_stats(predicted, measured) -> dict:
    """Count, median and mean of ``|predicted / measured - 1|`` (NaN predictions skipped)."""
    e = [abs(p / m - 1.0) for p, m in zip(predicted, measured) if math.isfinite(p)]
    if not e:
        return dict(count=0, median_abs_rel_err=None, mean_abs_rel_err=None)
    return dict(count=len(e), median_abs_rel_err=statistics.median(e), mean_abs_rel_err=sum(e) / len(e))


@dataclasses.dataclass
class Calibration:
    """What `calibrate` returns.

    - `profile`: the fitted `Profile` (leaves not in `fit` are the base profile's).
    - `base_profile`: the starting `Profile`.
    - `fit`: names of the fitted leaves.
    - `points`: the `Measurement`s; `measured`, `predicted` (with the fitted profile),
      `initial` (with the base profile): arrays in the same order, SI units.
    - `fitted`: bool array, True where the point entered the loss (False for
      ``max_output_tokens_per_s`` points, which are only predicted, and held-out ones).
    - `loss_history`: the loss before each optimiser step; `loss`: after the last.
    - `huber_delta`: the loss's pseudo-Huber delta (0: least squares).
    """

    profile: Profile
    base_profile: Profile
    fit: tuple
    points: list
    measured: np.ndarray
    predicted: np.ndarray
    initial: np.ndarray
    fitted: np.ndarray
    loss_history: np.ndarray
    loss: float
    huber_delta: float = 0.0

    @property
    def rel_error(self):
        """``predicted / measured - 1`` per point."""
        return self.predicted / self.measured - 1.0

    def stats(self, which="fitted"):
        """`error_stats` of the fitted points (``"fitted"``), of all, or with the base
        profile (``"initial"``)."""
        sel = self.fitted if which in ("fitted", "initial") else np.ones(len(self.points), bool)
        pred = self.initial if which == "initial" else self.predicted
        return error_stats(pred[sel], self.measured[sel])

    def values(self) -> dict:
        """The fitted profile's values as plain floats (the TOML ``[values]`` table)."""
        return {n: float(getattr(self.profile, n)) for n in LEAVES}

    def to_toml(self, name, description="", fitted_on="", command="") -> str:
        """The fitted profile as a TOML file that ``--profile FILE.toml`` loads."""
        s, s0 = self.stats(), self.stats("initial")
        n_pts = int(self.fitted.sum())
        err = (f"median |predicted/measured - 1| {s['median_abs_rel_err']:.1%}, mean {s['mean_abs_rel_err']:.1%} "
               f"on {n_pts} fitted points (base profile: {s0['median_abs_rel_err']:.1%} / "
               f"{s0['mean_abs_rel_err']:.1%})") if n_pts else "no fitted points"
        fitted_on = fitted_on or f"{n_pts} measured points"
        loss = (f"pseudo-Huber (delta {self.huber_delta:g}) log error" if self.huber_delta
                else "squared log error")
        lines = [
            f"# Calibration profile fitted by diffhw.calibrate ({len(self.loss_history)} Adam steps on the",
            f"# {loss}, bounded reparameterisation).",
        ]
        if command:
            lines.append(f"# command: {command}")
        lines += [
            f"# fitted error: {err}",
            f"name = {_toml_str(name)}",
            f"description = {_toml_str(description or 'fitted by diffhw calibrate')}",
            f"fitted_on = {_toml_str(fitted_on + '; ' + err)}",
            "",
            "[values]",
        ]
        base_name = self.base_profile.name or "base"
        for n, v in self.values().items():
            note = "fitted" if n in self.fit else f"not fitted: from profile '{base_name}'"
            lines.append(f"{n} = {v:.6g}  # {note}")
        return "\n".join(lines) + "\n"


def _toml_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


# ------------------------------------------------------------------------------ entries
def _base(base_profile):
    return base_profile if isinstance(base_profile, Profile) else load_profile(base_profile)


def _problem(points):
    return points if isinstance(points, _Problem) else _Problem(points)


def calibrate(
    points,
    base_profile="default",
    fit=DEFAULT_FIT,
    steps: int = 300,
    learning_rate: float = 0.05,
    huber_delta: float = 0.0,
    name: str | None = None,
    _mask=None,
) -> Calibration:
    """Fit the `fit` leaves of a calibration `Profile` to measured points.

    Minimises ``sum_i log(predicted_i / measured_i)**2 / n`` (least squares on relative
    error) with Adam, each term kept in its physical range: fractions through a sigmoid
    (0 < f < 1), overheads and ``compute_half_rows`` through a scaled softplus (>= 0).
    Points sharing hardware, model and precisions are evaluated with one `jax.vmap`; the
    optimiser loop is one jitted `jax.lax.scan` (no retrace for new values).
    ``max_output_tokens_per_s`` points are predicted with the fitted profile but not
    fitted (their best batch is a discrete choice).

    **Arguments:**

    - `points`: `Measurement`s (e.g. from `load_points`).
    - `base_profile`: the starting `Profile`, a profile name or a TOML file; leaves not
      in `fit` keep its values.
    - `fit`: leaf names to fit (`LEAVES`); default `DEFAULT_FIT`.
    - `steps`, `learning_rate`: Adam steps and step size (in the unconstrained space).
    - `huber_delta`: 0 for least squares; > 0 for a pseudo-Huber penalty on log errors
      larger than `huber_delta` (robust to outliers).
    - `name`: the fitted profile's name (default: ``"calibrated"``).

    **Returns:** a `Calibration`.
    """
    fit = _check_fit(fit)
    base = _base(base_profile)
    steps = int(steps)
    if steps < 1:
        raise InputError("steps", steps, "a whole number >= 1")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise InputError("learning_rate", learning_rate, "a finite number > 0")
    prob = _problem(points)
    if not prob.groups:
        raise InputError("points", len(prob.points),
                         "at least one point with a fitted metric (" + ", ".join(_FITTED_METRICS + SERVE_METRICS) + ")")
    weights = prob.weights(_mask)
    if float(jnp.sum(weights)) == 0:
        raise InputError("points", 0, "at least one point to fit")
    _check_base_profile(base, prob)
    anon = _anonymous_profile(base)
    theta, history, loss, initial, predicted = _fit_jit(to_theta(base, fit), anon, prob.groups, weights,
                                     jnp.asarray(learning_rate, dtype=float), steps,
                                     jnp.asarray(huber_delta, dtype=float))
    prof = from_theta(base, theta)
    prof = _with_static(prof, name=name or "calibrated")
    measured = np.asarray([p.value for p in prob.points])
    fitted = prob.fittable & (np.ones(len(prob.points), bool) if _mask is None else np.asarray(_mask, bool))
    return Calibration(
        profile=prof, base_profile=base, fit=fit, points=prob.points, measured=measured,
        predicted=prob.predict(prof, predicted), initial=prob.predict(base, initial), fitted=fitted,
        loss_history=np.asarray(history), loss=float(loss), huber_delta=float(huber_delta),
    )


@dataclasses.dataclass
class CrossValidation:
    """What `cross_validate` returns.

    - `by`: ``"hardware"``, ``"model"``, ``"group"`` or ``"stack"``; `within`: None or
      the field whose values partition the folds (e.g. ``"stack"``).
    - `groups`: per held-out group (``"<within value>/<by value>"`` with `within`):
      ``count``, ``median_abs_rel_err``, ``mean_abs_rel_err`` of its points predicted by
      the profile fitted without it, and that ``profile`` (values); a ``note`` where the
      fit could not stay within the group's partition.
    - `pooled`: the same statistics over every held-out prediction.
    - `points`, `measured`, `predicted`: per point, the held-out prediction.
    """

    by: str
    groups: dict
    pooled: dict
    points: list
    measured: np.ndarray
    predicted: np.ndarray
    within: str | None = None


#: Fields `cross_validate` can fold by (``by``) or partition by (``within``).
CV_FIELDS = ("hardware", "model", "group", "stack")


def cross_validate(points, by="hardware", base_profile="default", fit=DEFAULT_FIT, steps: int = 300,
                   learning_rate: float = 0.05, huber_delta: float = 0.0, within: str | None = None
                   ) -> CrossValidation:
    """Leave one group out: fit on the other points, predict the group left out.

    Groups are the points' ``hardware``, ``model``, ``group`` or ``stack`` field (`by`).
    With `within` (e.g. ``"stack"``: one profile per software stack, as a user who knows
    their stack would fit), the points are first partitioned by that field and each fold
    fits only on its own partition's other points; a partition with a single `by` value
    (nothing of its own left to fit on) is predicted by a fit on the other partitions
    instead (noted in `groups`). Every fold reuses one compiled fit (the held-out points
    get zero weight), so a fold costs the optimiser steps only. Other arguments as
    `calibrate`.

    **Returns:** a `CrossValidation`.
    """
    if by not in CV_FIELDS:
        raise InputError("by", by, ", ".join(CV_FIELDS))
    if within is not None and (within not in CV_FIELDS or within == by):
        raise InputError("within", within, "None or one of " + ", ".join(f for f in CV_FIELDS if f != by))
    prob = _problem(points)
    keys = [getattr(p, by) for p in prob.points]
    parts = [getattr(p, within) if within else "" for p in prob.points]
    names = list(dict.fromkeys(zip(parts, keys)))
    if len({k for _, k in names}) < 2 and len(set(parts)) < 2:
        raise InputError("by", by, f"a field with at least two distinct values (the points have {sorted(set(keys))})")
    part_arr, key_arr = np.asarray(parts, dtype=object), np.asarray(keys, dtype=object)
    predicted = np.full(len(prob.points), np.nan)
    groups = {}
    for part, g in names:
        held = (part_arr == part) & (key_arr == g)
        mask, note = (part_arr == part) & ~held, None
        if within and not (prob.fittable & mask).any():
            mask, note = part_arr != part, f"no other {by} in {within} {part!r}: fitted on the other {within}s"
        label = f"{part}/{g}" if within else g
        if not (prob.fittable & mask).any():
            groups[label] = dict(error_stats([], []), profile=None, note="nothing left to fit on")
            continue
        cal = calibrate(prob, base_profile, fit, steps, learning_rate, huber_delta, _mask=mask)
        predicted[held] = cal.predicted[held]
        groups[label] = dict(error_stats(cal.predicted[held], cal.measured[held]), profile=cal.values())
        if note:
            groups[label]["note"] = note
    measured = np.asarray([p.value for p in prob.points])
    return CrossValidation(by=by, groups=groups, pooled=error_stats(predicted, measured), points=prob.points,
                           measured=measured, predicted=predicted, within=within)
