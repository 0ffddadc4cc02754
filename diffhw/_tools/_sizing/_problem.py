"""What `size` sizes: its variables, constraints and objective, checked and parsed, and
their baseline values in a design."""

import dataclasses
import math

import numpy as np

from ..._errors import InputError, did_you_mean
from ..._evaluation._design import get_value, metric_names

#: Metrics where more is better (an objective on them is maximised unless told otherwise).
HIGHER_IS_BETTER = frozenset({
    "output_tokens_per_s", "decode_tokens_per_s", "per_user_tokens_per_s", "tokens_per_s_per_watt",
    "tokens_per_s_per_usd", "tokens_per_kgco2e", "max_batch", "memory_margin", "tier_lifetime_margin",
    "min_tier_lifetime_s", "die_yield", "thermal_margin_w", "near_memory_flop_per_s",
})

#: Metrics that may be negative (margins): constrained by difference, not by log ratio.
SIGNED = frozenset({"memory_margin", "tier_lifetime_margin", "thermal_margin_w"})
#: Constraint limits beyond this magnitude (SI units) are typos: no metric comes near it,
#: and in float32 a limit near 3.4e38 overflows.
MAX_LIMIT = 1e30
#: Objective weights (exponents of a weighted geometric mean) beyond this are typos.
MAX_WEIGHT = 1e3

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
#: The Prefill pool's hardware of a disaggregated serving goal (`ServingGoal.disaggregation`).
_PREFILL = "serving.disaggregation.prefill_hardware."
ALIASES.update({
    "prefill_compute": (tuple(_PREFILL + p.partition(".")[2] for p in ALIASES["compute"][0]), True),
    "prefill_memory_bandwidth": ((_PREFILL + "memory_bandwidth_bytes_per_s",), False),
    "prefill_memory_capacity": ((_PREFILL + "memory_capacity_bytes",), False),
    "prefill_sram": ((_PREFILL + "sram_bytes",), False),
    "prefill_link_bandwidth": ((_PREFILL + "link_bandwidth_bytes_per_s",), False),
    # The Prefill pool's size: its replicas (each of the pool's tp x pp chips, with its own
    # KV-transfer NICs), so the pool's chips are this times the replica's.
    "prefill_replicas": (("serving.disaggregation.prefill_parallelism.dp",), False),
})

_INTEGER_PREFIXES = ("parallelism.", "workload.batch", "serving.disaggregation.prefill_parallelism.")
_COUNTS = ("memory_stacks",)

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
            if not (np.isfinite(v) and abs(v) <= MAX_LIMIT):
                raise InputError("constraint", spec, f"a finite limit of magnitude at most {MAX_LIMIT:g}")
            if op == "<=" and v <= 0 and name not in SIGNED:
                raise InputError("constraint", spec, f"an upper limit > 0 ({name} is positive: no design meets it)")
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
        try:
            w = float(weight)
        except (TypeError, ValueError):
            w = math.nan
        if not (np.isfinite(w) and 0 < w <= MAX_WEIGHT):
            raise InputError(f"objective weight of {name}", weight, f"a number in (0, {MAX_WEIGHT:g}]")
        out.append((name, w, s))
    if not out:
        raise InputError("objective", objective, "at least one metric")
    return tuple(out)


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
