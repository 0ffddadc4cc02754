"""Design-space sweeps: grids or random samples of designs evaluated with `jax.vmap`,
sharded over every device, and their Pareto fronts, CSV files and plots.

A sweep varies some float leaves of a `Design` (named by dotted paths, as in
`diffhw.set_values`) and evaluates every resulting design with `design_values` under one
`jit` of a `vmap`. Designs go through in chunks of a fixed size (the last one padded), so
a sweep of any length compiles once. With more than one device the chunk is sharded over
all of them along the design axis (`jax.sharding.Mesh` + `NamedSharding`); with several
processes (`jax.distributed.initialize()` called first) the mesh spans every process's
devices and each process evaluates only its own share of each chunk, then all processes
gather the results.

Everything after the evaluation (Pareto fronts, CSV, plots) is post-processing in numpy
on the returned `SweepResult`; nothing here is differentiated.
"""

import csv
import dataclasses
import math
import re
import sys
import time

import equinox as eqx
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from .._errors import InputError
from .._evaluation._design import (
    CORE_METRICS,
    SYSTEM_METRICS,
    Design,
    anonymous,
    check_path,
    design_values,
    get_value,
    metric_names,
    set_values,
)
from .._evaluation._evaluate import _bad_values, _check_table, _raise_bad, bad_reasons, host_flags
from .._evaluation._report import ECONOMICS_KEYS
from .._io._plot import figure
from .._jit import filter_jit

#: Default number of designs per compiled call (per process, all devices together).
DEFAULT_CHUNK = 4096

#: Default limit on the number of designs of one sweep (~45 float64 metrics each: 1e6
#: designs hold ~0.4 GB of results).
MAX_POINTS = 1_000_000

#: The output column of the value checks' flags (not a metric).
_BAD = "_invalid"
_SENTINEL = -7.25e-77  # a value no leaf has
#: Metrics that are infinite when unlimited (a tier that is never written wears out never).
_MAY_BE_INF = frozenset({"min_tier_lifetime_s", "tier_lifetime_margin"})
#: The metric that says whether a design fits in memory.
_FIT_METRIC = "memory_margin"


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
    """The designs of a sweep and their metrics, as numpy columns (one row per design).

    - `inputs`: path -> values of the swept leaves (float64), in the order of `axes`.
    - `metrics`: metric name -> values (float64), names as in `diffhw.metric_names`.
    - `feasible`: bool per design: it fits in memory (``memory_margin >= 0``), its
      values pass the value checks, and every metric is finite (a tier's wear-out
      metrics may be ``inf``: unlimited; they are kept as such).
    - `devices`: how many devices held the evaluated chunks (from the output arrays'
      sharding).
    - `wall_s`: wall time of the evaluation, compilation included.
    - `invalid`: per design, why a swept value is invalid (a NaN, a negative rate, a
      fraction above 1), ``""`` when it is valid; None when every design is valid (see
      `reasons`). An invalid design is infeasible and its metrics are not meaningful.

    ``result[name]`` gives any column (an input path, a metric or ``"feasible"``).
    """

    inputs: dict
    metrics: dict
    feasible: np.ndarray
    devices: int = 1
    wall_s: float = 0.0
    invalid: np.ndarray | None = None

    @property
    def reasons(self) -> np.ndarray:
        """Per design, why its values are invalid (``"workload.batch must be > 0 and
        finite"``: it is then infeasible), ``""`` for a valid one."""
        return np.full(len(self), "", dtype=object) if self.invalid is None else self.invalid

    def __len__(self):
        return int(self.feasible.shape[0])

    @property
    def columns(self) -> dict:
        """Every column: inputs, then metrics, then ``feasible``."""
        return {**self.inputs, **self.metrics, "feasible": self.feasible}

    def __getitem__(self, name):
        cols = self.columns
        if name not in cols:
            raise InputError("column", name, "one of " + ", ".join(cols))
        return cols[name]

    def pareto(self, objectives: dict, feasible_only: bool = True) -> np.ndarray:
        """Row indices of the Pareto front (see `pareto_front`)."""
        cols = self.columns
        for name in objectives:
            if name not in cols:
                raise InputError("objective", name, "a column of the sweep: " + ", ".join(cols))
        return pareto_front(cols, objectives, feasible_only=feasible_only)

    def rows(self, indices=None) -> list:
        """Rows as dicts (all rows, or those at `indices`), values as Python floats;
        ``feasible`` as a bool."""
        idx = range(len(self)) if indices is None else np.asarray(indices, dtype=int)
        cols = self.columns
        return [{k: (bool(v[i]) if k == "feasible" else float(v[i])) for k, v in cols.items()} for i in idx]

    def to_csv(self, path) -> None:
        """Write every column to a CSV file: a header of names, one row per design,
        floats at full precision (``repr``), ``feasible`` as 1 or 0. A NaN is written as
        ``nan``; such a row always has ``feasible`` = 0."""
        cols = self.columns
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(cols))
            arrays = [np.asarray(v) for v in cols.values()]
            for i in range(len(self)):
                w.writerow([int(a[i]) if a.dtype == bool else repr(float(a[i])) for a in arrays])

    @classmethod
    def from_csv(cls, path, inputs=None) -> "SweepResult":
        """Read a file `to_csv` wrote. `inputs` names the input columns (default: the
        columns before the first metric name diffhw knows)."""
        with open(path, newline="") as f:
            r = csv.reader(f)
            header = next(r)
            data = [row for row in r]
        if "feasible" not in header:
            raise InputError("CSV file", str(path), "a sweep CSV with a 'feasible' column")
        cols = {h: np.array([float(row[j]) for row in data], dtype=float) for j, h in enumerate(header)}
        feasible = cols.pop("feasible").astype(bool)
        if inputs is None:
            known = set(CORE_METRICS) | set(SYSTEM_METRICS) | set(ECONOMICS_KEYS)
            inputs = [h for h in cols if h not in known]
        return cls({k: cols[k] for k in inputs}, {k: v for k, v in cols.items() if k not in inputs}, feasible)

    def plot(self, x: str, y: str, path, objectives=None, log=None, title=None) -> None:
        """Scatter `y` against `x` for every design, with the Pareto front of the two.

        **Arguments:**

        - `x`, `y`: column names (input paths or metrics).
        - `path`: the image file to write (format from its suffix, e.g. ``.png``).
        - `objectives`: ``{x: "min"|"max", y: ...}`` for the front (default: both
          ``"min"``, except names that are better large, e.g. ``*_tokens_per_s``).
        - `log`: ``(log_x, log_y)``; default: log where every value is positive and they
          span more than a factor of 10.
        """

        xs, ys = np.asarray(self[x], dtype=float), np.asarray(self[y], dtype=float)
        objectives = dict(objectives or {x: _default_sense(x), y: _default_sense(y)})
        front = self.pareto(objectives) if len(objectives) else np.zeros(0, dtype=int)
        ok = self.feasible & np.isfinite(xs) & np.isfinite(ys)
        fig, ax = figure(figsize=(6.4, 4.8), dpi=110)
        ax.scatter(xs[ok], ys[ok], s=8, c="tab:blue", alpha=0.5, linewidths=0, label=f"feasible ({ok.sum()})")
        bad = ~self.feasible & np.isfinite(xs) & np.isfinite(ys)
        if bad.any():
            ax.scatter(xs[bad], ys[bad], s=8, c="0.7", marker="x", linewidths=0.6,
                       label=f"does not fit ({bad.sum()})")
        if front.size:
            order = front[np.argsort(xs[front], kind="stable")]
            ax.plot(xs[order], ys[order], "-o", c="tab:red", ms=4, lw=1.2, label=f"Pareto front ({front.size})")
        log_x, log_y = log if log is not None else (_wants_log(xs[ok | bad]), _wants_log(ys[ok | bad]))
        if log_x:
            ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(axis_label(y))
        ax.set_title(title or f"{len(self)} designs")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)


# Unit of a name, from the suffix the house style puts in every name (longest first).
_UNITS = (
    ("usd_per_million_tokens", "$ per million tokens"),
    ("kgco2e_per_million_tokens", "kgCO2e per million tokens"),
    ("tokens_per_s_per_watt", "tokens/s per W"),
    ("tokens_per_s_per_usd", "tokens/s per $/year"),
    ("tokens_per_kgco2e", "tokens per kgCO2e"),
    ("_bytes_per_s", "bytes/s"),
    ("_flop_per_s", "FLOP/s"),
    ("_tokens_per_s", "tokens/s"),
    ("_usd_per_year", "$/year"),
    ("_kgco2e_per_year", "kgCO2e/year"),
    ("_usd_per_j", "$/J"),
    ("_kgco2e_per_j", "kgCO2e/J"),
    ("_j_per_byte", "J/byte"),
    ("_j_per_flop", "J/FLOP"),
    ("_bytes", "bytes"),
    ("_mm2", "mm²"),
    ("_usd", "$"),
    ("_kgco2e", "kgCO2e"),
    ("_s", "s"),
    ("_j", "J"),
    ("_w", "W"),
    ("_margin", "dimensionless"),
)

_BETTER_LARGE = ("_tokens_per_s", "tokens_per_s_per_watt", "tokens_per_s_per_usd", "tokens_per_kgco2e",
                 "max_batch", "_margin", "_lifetime_s")


def axis_label(name: str) -> str:
    """``"tpot_s"`` -> ``"tpot_s [s]"``: the name and its unit, read from the suffix."""
    leaf = re.sub(r"\[[^\]]*\]$", "", name.rsplit(".", 1)[-1])  # "fractions[1,1]" -> "fractions"
    per_chip = leaf.endswith("_per_chip")
    leaf = re.sub(r"_(fp32|bf16|fp16|fp8|int8|fp4)$", "", leaf.removesuffix("_per_chip"))
    for suffix, unit in _UNITS:
        if leaf.endswith(suffix) or leaf == suffix[1:]:
            return f"{name} [{unit}{' per chip' if per_chip else ''}]"
    return name


def _default_sense(name: str) -> str:
    return "max" if any(name.endswith(s) for s in _BETTER_LARGE) else "min"


def _wants_log(v) -> bool:
    v = np.asarray(v, dtype=float)
    return bool(v.size and np.all(v > 0) and np.max(v) > 10.0 * np.min(v))


# --------------------------------------------------------------------------- Pareto


def pareto_front(values, objectives, feasible_only: bool = True) -> np.ndarray:
    """Indices (ascending) of the non-dominated points.

    A point dominates another when it is at least as good in every objective and
    strictly better in one. Points with equal objective values do not dominate each
    other, so every copy of a tied point on the front is returned. Points with a NaN
    objective are never on the front. Exact; O(n log n) for two objectives, O(n * front)
    otherwise (numpy; ~1e5 points take well under a second).

    **Arguments:**

    - `values`: a dict of equal-length 1-D columns (e.g. `SweepResult.columns`), or a
      2-D array of shape (points, columns).
    - `objectives`: ``{name: "min" | "max"}``; with a 2-D array the names are column
      indices (a list of senses also works: one per column).
    - `feasible_only`: with a dict, consider only rows whose ``feasible`` column is true
      (or, lacking one, whose ``memory_margin`` is >= 0); a 2-D array has no such
      columns and every row is considered.

    **Returns:** an int array of row indices.
    """
    if isinstance(objectives, (list, tuple)):
        objectives = dict(enumerate(objectives))
    if not isinstance(objectives, dict) or not objectives:
        raise InputError("objectives", objectives, "a non-empty dict {name: 'min' or 'max'}")
    for name, sense in objectives.items():
        if sense not in ("min", "max"):
            raise InputError(f"objectives[{name!r}]", sense, "'min' or 'max'")
    if isinstance(values, dict):
        cols = []
        for name in objectives:
            if name not in values:
                raise InputError("objective", name, "a column of the values: " + ", ".join(map(str, values)))
            cols.append(np.asarray(values[name], dtype=float))
        if len({c.shape for c in cols}) != 1 or cols[0].ndim != 1:
            raise InputError("values", {k: np.shape(values[k]) for k in objectives}, "1-D columns of one length")
        f = np.stack(cols, axis=1)
        mask = np.ones(f.shape[0], dtype=bool)
        if feasible_only:
            if "feasible" in values:
                mask &= np.asarray(values["feasible"], dtype=bool)
            elif _FIT_METRIC in values:
                mask &= np.asarray(values[_FIT_METRIC], dtype=float) >= 0.0
    else:
        arr = np.asarray(values, dtype=float)
        if arr.ndim != 2:
            raise InputError("values", f"an array of shape {arr.shape}", "a dict of columns or a 2-D array")
        for name in objectives:
            if not isinstance(name, (int, np.integer)) or not 0 <= name < arr.shape[1]:
                raise InputError("objective", name, f"a column index below {arr.shape[1]}")
        f = arr[:, list(objectives)]
        mask = np.ones(f.shape[0], dtype=bool)
    f = f * np.array([1.0 if s == "min" else -1.0 for s in objectives.values()])
    mask &= ~np.isnan(f).any(axis=1)
    candidates = np.flatnonzero(mask)
    if candidates.size == 0:
        return candidates
    # Unique points, sorted lexicographically: a dominator always sorts before the
    # point it dominates, and copies of one point share a verdict.
    uniq, inverse = np.unique(f[candidates], axis=0, return_inverse=True)
    on_front = _front_sorted(uniq)
    return candidates[on_front[inverse.reshape(-1)]]


def _front_sorted(u):
    """Non-dominated rows of `u`: unique rows sorted lexicographically (minimise all)."""
    n, k = u.shape
    keep = np.zeros(n, dtype=bool)
    if k == 1:
        keep[0] = True
        return keep
    if k == 2:
        # Sorted by the first objective (then the second): a row is on the front iff
        # its second objective beats every earlier row's.
        best = np.minimum.accumulate(u[:, 1])
        keep[0] = True
        keep[1:] = u[1:, 1] < best[:-1]
        return keep
    front = np.empty((0, k))
    for i in range(n):
        row = u[i]
        if front.shape[0] and np.any(np.all(front <= row, axis=1)):
            continue  # rows are unique, so <= everywhere means strictly better somewhere
        keep[i] = True
        front = np.vstack([front, row])
    return keep


# --------------------------------------------------------------------------- sweeps


def _axis_values(path, spec, samples, rng):
    """The values of one axis: a 1-D grid, or `samples` draws within (low, high)."""
    if samples is None:
        v = np.asarray(spec, dtype=float) if not isinstance(spec, (str, bytes)) else None
        if v is None or v.ndim != 1 or v.size == 0:
            raise InputError(f"axes[{path!r}]", spec, "a non-empty 1-D array of values (a grid axis)")
        if not np.all(np.isfinite(v)):
            raise InputError(f"axes[{path!r}]", spec, "finite values")
        return v
    if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
        raise InputError(f"axes[{path!r}]", spec, "bounds (low, high) or (low, high, 'log'|'linear') "
                         "when sampling")
    scale = spec[2] if len(spec) == 3 else None
    try:
        lo, hi = float(spec[0]), float(spec[1])
    except (TypeError, ValueError):
        raise InputError(f"axes[{path!r}]", spec, "numeric bounds (low, high)") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise InputError(f"axes[{path!r}]", spec, "finite bounds with low <= high")
    if scale not in (None, "log", "linear"):
        raise InputError(f"axes[{path!r}] scale", scale, "'log' or 'linear'")
    if scale == "log" and lo <= 0:
        raise InputError(f"axes[{path!r}]", spec, "positive bounds for log-uniform sampling")
    u = rng.random(samples)
    if scale == "log" or (scale is None and lo > 0):
        return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
    return lo + u * (hi - lo)


def design_points(design: Design, axes: dict, samples=None, seed=0, max_points=MAX_POINTS) -> dict:
    """The input columns of a sweep (path -> float64 values), without evaluating them.

    Grid (``samples=None``): each axis maps a path to a 1-D array; the points are the
    Cartesian product, the first axis varying slowest. Sampling (``samples=N``): each
    axis maps a path to ``(low, high)``, drawn independently from a seeded
    ``numpy.random.default_rng(seed)``: log-uniform when both bounds are positive,
    uniform otherwise; ``(low, high, "log")`` or ``(low, high, "linear")`` chooses.
    """
    if not isinstance(design, Design):
        raise InputError("design", type(design).__name__, "a diffhw.Design (see diffhw.from_presets)")
    if not isinstance(axes, dict) or not axes:
        raise InputError("axes", axes, "a non-empty dict {path: values} (e.g. {'workload.batch': [1, 8, 64]})")
    for path in axes:
        check_path(design, path)
    if samples is not None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise InputError("samples", samples, "a whole number >= 1, or None for a grid")
        if samples > max_points:
            raise InputError("samples", samples, f"at most {max_points:,} designs (raise max_points= to allow more)")
    rng = np.random.default_rng(seed)
    cols = {p: _axis_values(p, spec, samples, rng) for p, spec in axes.items()}
    if samples is not None:
        return cols
    sizes = [c.size for c in cols.values()]
    total = math.prod(sizes)
    if total > max_points:
        raise InputError("axes", " x ".join(map(str, sizes)) + f" = {total:,} grid points",
                         f"at most {max_points:,} designs (use samples=, fewer values, or raise max_points=)")
    grids = np.meshgrid(*cols.values(), indexing="ij")
    return {p: g.reshape(-1) for p, g in zip(cols, grids, strict=True)}


def _check_metrics(design, metrics):
    names = metric_names(design)
    if metrics is None:
        return tuple(names)
    if isinstance(metrics, str):
        metrics = [metrics]
    out = []
    for m in metrics:
        if m not in names:
            raise InputError("metric", m, "one of " + ", ".join(names))
        if m not in out:
            out.append(m)
    if not out:
        raise InputError("metrics", metrics, "at least one metric, or None for all")
    if _FIT_METRIC not in out:
        out.append(_FIT_METRIC)  # the `feasible` column needs it
    return tuple(out)


@filter_jit(throughput=True)  # sweeps evaluate many designs per call
def _chunk_jit(base, paths, names, tau, sharding, columns):
    def one(*xs):
        d = set_values(base, dict(zip(paths, xs, strict=True)))
        values = design_values(d, tau, checked=False)
        out = {k: values[k] for k in names}
        out[_BAD] = _bad_values(d.hardware, d.workload, d.parallelism, d.technology)
        return out

    out = jax.vmap(one)(*columns)
    if sharding is not None:
        out = jax.lax.with_sharding_constraint(out, sharding)
    return out


def _check_base(base, paths):
    """Refuse (`InputError`) a bad value of a leaf no axis sweeps: it would spoil every
    design. Bad swept values only mark their own designs infeasible (`SweepResult.reasons`)."""
    flags = host_flags(base.hardware, base.workload, base.parallelism, base.technology)
    if not flags.any():
        return
    # The leaves an axis touches: those that change when every axis is set to a sentinel.
    probe = set_values(base, {p: _SENTINEL for p in paths})
    rows = zip(_check_table(base.hardware, base.workload, base.parallelism, base.technology),
               _check_table(probe.hardware, probe.workload, probe.parallelism, probe.technology), strict=True)
    touched = [not np.array_equal(np.asarray(a[2]), np.asarray(b[2]), equal_nan=True) for a, b in rows]
    flags &= ~np.asarray(touched, dtype=bool)
    _raise_bad(flags, base.hardware, base.workload, base.parallelism, base.technology)


def _devices(devices):
    devs = jax.devices() if devices is None else list(devices)
    if not devs:
        raise InputError("devices", devices, "a non-empty list of JAX devices, or None for all")
    return devs


def sweep(design: Design, axes: dict, metrics=None, samples=None, seed=0, chunk=DEFAULT_CHUNK,
          progress=None, devices=None, tau=None, max_points=MAX_POINTS) -> SweepResult:
    """Evaluate a grid or random samples of designs, vmapped, sharded over all devices.

    **Arguments:**

    - `design`: the base `Design` (e.g. ``diffhw.from_presets(...)``); every leaf not
      swept keeps its value.
    - `axes`: ``{path: values}``. Without `samples`, a grid: each value is a 1-D array
      and the designs are the Cartesian product (first axis slowest). With
      ``samples=N``, each value is ``(low, high)`` and N designs are drawn,
      **log-uniformly when both bounds are positive**, uniformly otherwise; ``(low, high,
      "log")`` or ``(low, high, "linear")`` chooses explicitly.
    - `metrics`: metric names to keep (default: all of `diffhw.metric_names`);
      ``memory_margin`` is always kept (it decides `feasible`).
    - `samples`, `seed`: the number of random designs and the seed of
      ``numpy.random.default_rng`` (the same on every process).
    - `chunk`: designs per compiled call (rounded up to a multiple of the device
      count); every chunk has this size, the last one padded with copies of the first
      design, so a sweep compiles once.
    - `progress`: True shows a tqdm bar on stderr, False hides it; None (default) shows
      it for sweeps of more than one chunk once they have run for 2 s.
    - `devices`: the devices to shard over (default: ``jax.devices()``, every device of
      every process). With one device and one process nothing is sharded.
    - `tau`: smoothing temperature (default `diffhw.DEFAULT_TAU`, as `diffhw.evaluate`;
      0 evaluates exactly).
    - `max_points`: refuse sweeps with more designs than this.

    Multi-host: call ``jax.distributed.initialize()`` in every process first, then call
    `sweep` with the same arguments everywhere. The mesh then spans all processes'
    devices; each process builds the same design list, hands only its devices' share
    of each chunk to JAX (``jax.make_array_from_callback``), and the results are
    gathered so that every process returns the whole `SweepResult`. (On CPU hosts,
    set JAX's ``jax_cpu_collectives_implementation`` option to ``"gloo"`` (in your
    script, not in the library) before ``jax.distributed.initialize``; the test suite runs two such processes on one
    machine. Several physical hosts and GPU/TPU meshes are not tested here.)

    **Returns:** a `SweepResult`.
    """
    t0 = time.perf_counter()
    points = design_points(design, axes, samples, seed, max_points)
    names = _check_metrics(design, metrics)
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise InputError("chunk", chunk, "a whole number >= 1")
    base = anonymous(design)
    paths = tuple(points)
    dtypes = [np.asarray(get_value(base, p)).dtype for p in paths]
    cols = [np.asarray(points[p], dtype=dt) for p, dt in zip(paths, dtypes, strict=True)]
    inputs = {p: c.astype(np.float64) for p, c in zip(paths, cols, strict=True)}  # as evaluated
    _check_base(base, paths)

    devs = _devices(devices)
    multi = jax.process_count() > 1
    sharded = len(devs) > 1 or multi
    n = cols[0].shape[0]
    size = min(int(chunk), n)
    size = -(-size // len(devs)) * len(devs)
    sharding = replicated = None
    if sharded:
        mesh = Mesh(np.asarray(devs), ("designs",))
        sharding = NamedSharding(mesh, PartitionSpec("designs"))
        replicated = NamedSharding(mesh, PartitionSpec())
        arrays, static = eqx.partition(base, eqx.is_array)
        arrays = jax.tree.map(lambda a: _global(np.asarray(a), replicated), arrays)
        base = eqx.combine(arrays, static)
    else:
        base = jax.device_put(base, devs[0])

    out = {k: np.empty(n, dtype=np.float64) for k in names}
    out[_BAD] = np.zeros((n, len(_check_table(base.hardware, base.workload, base.parallelism, base.technology))),
                         dtype=bool)
    used = 1
    starts = list(range(0, n, size))
    bar = _progress(progress if progress is not None else (None if len(starts) > 1 else False), n)
    pending = None
    for s in starts:
        stop = min(s + size, n)
        block = []
        for c in cols:
            piece = c[s:stop]
            if piece.shape[0] < size:
                piece = np.concatenate([piece, np.repeat(c[:1], size - piece.shape[0])])
            block.append(_global(piece, sharding) if sharded else jax.device_put(piece, devs[0]))
        result = _chunk_jit(base, paths, names, tau, sharding, tuple(block))
        if pending is not None:  # copy the previous chunk while this one computes
            used = _collect(pending, out, multi)
            bar.update(pending[2] - pending[1])
        pending = (result, s, stop)
    used = _collect(pending, out, multi)
    bar.update(pending[2] - pending[1])
    bar.close()
    bad = out.pop(_BAD)
    feasible = (out[_FIT_METRIC] >= 0.0) & ~bad.any(axis=1)
    for k in names:  # NaN never; inf only where it means "unlimited" (a tier's wear-out)
        feasible &= np.isfinite(out[k]) if k not in _MAY_BE_INF else ~np.isnan(out[k])
    reasons = None
    if bad.any():
        reasons = np.array(bad_reasons(bad, base.hardware, base.workload, base.parallelism, base.technology),
                           dtype=object)
    return SweepResult(inputs, out, feasible, used, time.perf_counter() - t0, reasons)


def _global(piece, sharding):
    """A global array of `piece` (the whole chunk, identical on every process) laid out
    by `sharding`; each process materialises only its own devices' slices."""
    return jax.make_array_from_callback(piece.shape, sharding, lambda index: piece[index])


def _collect(pending, out, multi):
    result, s, stop = pending
    used = len(next(iter(result.values())).sharding.device_set)
    if multi:
        result = multihost_utils.process_allgather(result, tiled=True)
    for k, v in result.items():
        out[k][s:stop] = np.asarray(v)[: stop - s]
    return used


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(progress, total):
    if progress is False or jax.process_index() != 0:
        return _NoBar()
    return tqdm(total=total, unit="design", unit_scale=True, desc="sweep", file=sys.stderr,
                delay=0.0 if progress else 2.0, leave=False)
