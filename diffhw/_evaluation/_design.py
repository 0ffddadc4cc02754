"""A whole design as one pytree, leaves addressed by dotted paths, and its metrics as a
flat dictionary of scalars.

Sizing, sensitivity and sweeps all speak this language: a `Design` bundles hardware,
model, workload, parallelism and technology; a path such as
``"hardware.memory_bandwidth_bytes_per_s"``, ``"hardware.tiers[0].capacity_bytes"``,
``"workload.batch"`` or ``"technology.wafer_usd"`` names one float leaf (or one entry
of an array leaf, ``"hardware.placement.fractions[1,1]"``); ``"placement.kv_cache[1]"``
is the share of a data class in an extra tier, set so each placement row still sums to
1 (the difference goes to main memory); `metric_values` gives
every metric under the name the CLI's JSON uses.
"""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._economics._cost import ChipCapex, chip_capex
from .._errors import InputError
from .._hardware._hardware import Hardware
from .._hardware._near_memory import near_flop_per_s, thermal_margin_w
from .._hardware._memory import DATA_CLASSES, Placement, fractions_of
from .._hardware._technology import YEAR_S, Technology
from .._jit import filter_jit
from .._smooth import DEFAULT_TAU
from .._workload._transformer import Transformer
from .._workload._workload import Parallelism, Workload
from ._evaluate import _anonymous, _metrics, check_values
from ._report import ECONOMICS_KEYS


class Design(eqx.Module):
    """Everything `evaluate` needs, as one pytree.

    - `hardware`, `model`, `workload`, `parallelism`: as in `diffhw.evaluate`.
    - `technology`: a `Technology`, or None (then economics metrics are absent).
    - `serving`: a `diffhw.ServingGoal`, or None: with one, the metrics also hold the
      ``serving_*`` metrics of a continuous-batching engine at the largest request rate
      meeting its p99 limits (`diffhw.serve`), so `size`, `sweep` and `sensitivity` take
      them as objectives and constraints.
    """

    hardware: Hardware
    model: Transformer
    workload: Workload
    parallelism: Parallelism
    technology: Technology | None = None
    # any object with ``metric_names(has_technology)`` and ``values(design, tau)``; the
    # serving layer (above this one) supplies `diffhw.ServingGoal`
    serving: object = None


_TOKEN = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)|\[(\s*-?\d+(?:\s*,\s*-?\d+)*\s*)\]|(\.)")


def _parse(path: str):
    """``"a.b[1].c[0,1]"`` -> ``[("attr", "a"), ("attr", "b"), ("item", (1,)), ...]``."""
    if not isinstance(path, str) or not path:
        raise InputError("design path", path, "a dotted path such as 'hardware.memory_bandwidth_bytes_per_s'")
    out, pos = [], 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None:
            raise InputError("design path", path, "names, dots and [i] or [i,j] indices")
        if m.group(1):
            out.append(("attr", m.group(1)))
        elif m.group(2):
            out.append(("item", tuple(int(s) for s in m.group(2).split(","))))
        pos = m.end()
    return out


def _walk(design, steps, path):
    """Follow `steps` to (container leaf, index or None)."""
    node, index = design, None
    for i, (kind, key) in enumerate(steps):
        if index is not None:
            raise InputError("design path", path, "an index only at the end")
        if kind == "attr":
            if not hasattr(node, key) or key.startswith("_"):
                fields = sorted(f for f in getattr(node, "__dataclass_fields__", {}) if not f.startswith("_"))
                raise InputError("design path", path, f"a field of {type(node).__name__} at '{key}': "
                                 + (", ".join(fields) if fields else "(no fields)"))
            node = getattr(node, key)
            if node is None:
                raise InputError("design path", path, f"a part the design has ('{key}' is None)")
        elif isinstance(node, tuple):
            if len(key) != 1 or not -len(node) <= key[0] < len(node):
                raise InputError("design path", path, f"an index below {len(node)}")
            node = node[key[0]]
        elif i == len(steps) - 1:
            arr = jnp.asarray(node)
            if len(key) != arr.ndim or any(not -n <= k < n for k, n in zip(key, arr.shape, strict=False)):
                raise InputError("design path", path, f"an index into an array of shape {arr.shape}")
            index = key
        else:
            raise InputError("design path", path, "an index into a tuple or into the last array")
    if index is None and (not hasattr(node, "dtype") or jnp.ndim(node) != 0):
        raise InputError("design path", path, "a path to a float leaf (a scalar, or an array entry with [i])")
    return node, index


_PLACEMENT = re.compile(r"placement\.([a-z_]+)\[(\d+)\]$")


def _placement_entry(design, path):
    """``placement.<class>[t]``: the share of a data class held in extra tier ``t``
    (1 = the first of `Hardware.tiers`); setting it moves the difference to or from main
    memory, so every row of the placement still sums to 1. Returns (class row, tier) or
    None when `path` is not of this form."""
    m = _PLACEMENT.match(path)
    if m is None:
        return None
    cls, tier = m.group(1), int(m.group(2))
    if cls not in DATA_CLASSES:
        raise InputError("design path", path, "placement.<class>[tier] with a class of " + ", ".join(DATA_CLASSES))
    n = 1 + len(design.hardware.tiers)
    if not 1 <= tier < n:
        raise InputError("design path", path, f"a tier from 1 to {n - 1} (0 is main memory; the hardware has "
                         f"{n - 1} extra tier{'s' if n != 2 else ''})")
    return DATA_CLASSES.index(cls), tier


def get_value(design: Design, path: str):
    """The value of the leaf at `path` (a scalar array)."""
    entry = _placement_entry(design, path)
    if entry is not None:
        return fractions_of(design.hardware)[entry]
    steps = _parse(path)
    node, index = _walk(design, steps, path)
    return node if index is None else node[index]


def _set_placement(design, entry, v):
    frac = fractions_of(design.hardware)
    c, t = entry
    new = frac.at[c, t].set(v).at[c, 0].add(frac[c, t] - v)
    return eqx.tree_at(lambda d: d.hardware.placement, design, Placement(new), is_leaf=lambda x: x is None)


def _getter(steps):
    def get(d):
        node = d
        for kind, key in steps:
            node = getattr(node, key) if kind == "attr" else node[key[0]]
        return node

    return get


def set_values(design: Design, values: dict) -> Design:
    """A copy of `design` with the leaves at the paths of `values` replaced (works under
    `jit`, `grad` and `vmap`)."""
    for path, v in values.items():
        entry = _placement_entry(design, path)
        if entry is not None:
            design = _set_placement(design, entry, v)
            continue
        steps = _parse(path)
        node, index = _walk(design, steps, path)
        if _concrete(v, node):
            # outside a trace, in NumPy: op by op in JAX, each first use of an
            # operation would compile a program
            new = np.array(node)
            if index is None:
                new = np.broadcast_to(np.asarray(v, dtype=new.dtype), new.shape).copy()
            else:
                new[index] = v
            # `jax.device_put`, not `jnp.asarray`: that compiles a "stage" program per shape
            design = eqx.tree_at(_getter(steps if index is None else steps[:-1]), design, jax.device_put(new))
        elif index is None:
            new = jnp.asarray(v, dtype=jnp.asarray(node).dtype) + jnp.zeros_like(node)
            design = eqx.tree_at(_getter(steps), design, new)
        else:
            design = eqx.tree_at(_getter(steps[:-1]), design, node.at[index].set(v))
    return design


def _concrete(*xs):
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def check_path(design: Design, path: str) -> str:
    """Raise an `InputError` naming `path` unless it names a float leaf of `design` (or
    a ``placement.<class>[tier]`` share)."""
    if _placement_entry(design, path) is not None:
        return path
    _walk(design, _parse(path), path)
    return path


#: Metrics every design has (no technology needed), with their units in the names.
CORE_METRICS = (
    "tpot_s", "ttft_s", "e2e_latency_s", "output_tokens_per_s", "decode_tokens_per_s",
    "per_user_tokens_per_s", "memory_required_bytes", "memory_usable_bytes", "memory_margin",
    "max_batch", "chips", "batch", "tier_lifetime_margin", "min_tier_lifetime_s",
)

#: Extra metrics of designs with near-memory units (`Hardware.near_memory`): the thermal
#: margin (W; < 0: the stacked memory alone exceeds the thermal budget, infeasible) and
#: the units' FLOP/s under the thermal cap.
NEAR_MEMORY_METRICS = ("thermal_margin_w", "near_memory_flop_per_s")

#: Extra metrics that need a `Technology` (economics), beside `_report.ECONOMICS_KEYS`.
SYSTEM_METRICS = ("system_area_mm2", "system_peak_power_w", "system_capex_usd_per_chip")


def metric_values(metrics, design: Design, tau=DEFAULT_TAU) -> dict:
    """Every scalar metric of a `Metrics`, by the name the CLI's JSON uses (jit-safe).

    Adds `batch`, `chips`, `tier_lifetime_margin` (the tightest tier's ``lifetime /
    required - 1``, required = the technology's lifetime or 5 years),
    `min_tier_lifetime_s`, and with economics `system_area_mm2` (logic area of all
    chips), `system_peak_power_w` and `system_capex_usd_per_chip`; with near-memory units
    `thermal_margin_w` and `near_memory_flop_per_s` (`NEAR_MEMORY_METRICS`); with a
    serving goal its ``serving_*`` metrics (at smoothing `tau`).
    """
    m = metrics
    required = design.technology.lifetime_s if design.technology is not None else 5.0 * YEAR_S
    life_margin = m.tiers.lifetime_margin(required)
    out = {
        "tpot_s": m.tpot_s,
        "ttft_s": m.ttft_s,
        "e2e_latency_s": m.e2e_latency_s,
        "output_tokens_per_s": m.output_tokens_per_s,
        "decode_tokens_per_s": m.decode_tokens_per_s,
        "per_user_tokens_per_s": m.per_user_tokens_per_s,
        "memory_required_bytes": m.memory_required_bytes,
        "memory_usable_bytes": m.memory_usable_bytes,
        "memory_margin": m.memory_margin,
        "max_batch": m.max_batch,
        "chips": m.chips,
        "batch": jnp.asarray(design.workload.batch),
        "tier_lifetime_margin": jnp.min(life_margin),
        "min_tier_lifetime_s": jnp.min(m.tiers.lifetime_s),
    }
    if design.hardware.near_memory is not None:
        out["thermal_margin_w"] = thermal_margin_w(design.hardware)
        out["near_memory_flop_per_s"] = near_flop_per_s(design.hardware)
    e = m.economics
    if e is not None:
        for k in ECONOMICS_KEYS:
            out[k] = jnp.asarray(getattr(e, k))
        out["system_area_mm2"] = e.chip_area_mm2 * m.chips
        out["system_peak_power_w"] = e.peak_power_w * m.chips
        out["system_capex_usd_per_chip"] = e.system_capex_usd / m.chips
    if design.serving is not None:
        # the serving economics reuse the chip's capex of `m.economics` (same tau)
        capex = None if e is None else ChipCapex(
            e.area, e.die_yield, e.logic_cost_usd, e.near_memory_cost_usd, e.package_cost_usd, e.memory_cost_usd,
            e.chip_cost_usd, e.peak_power_w, e.static_power_w, e.embodied_kgco2e_per_chip)
        out.update(design.serving.values(design, tau, capex=capex))
    return out


def metric_names(design: Design) -> tuple:
    """Names `metric_values` returns for `design` (depends on whether it has a
    technology)."""
    names = CORE_METRICS + ((*ECONOMICS_KEYS, *SYSTEM_METRICS) if design.technology is not None else ())
    if design.hardware.near_memory is not None:
        names = names + NEAR_MEMORY_METRICS
    if design.serving is not None:
        names = names + tuple(design.serving.metric_names(design.technology is not None))
    return names


@filter_jit
def evaluate_design(design: Design, tau=None, checked=True):
    """`Metrics` of a design (compiled once per structure and `tau`; works inside `jit`,
    `grad`, `vmap` and `scan` too). ``tau=0`` evaluates exactly (hard max and min
    everywhere). ``checked=False`` leaves the value checks out of the program (the
    caller ran `check_design` on what it evaluates): no host callback, so the program
    can be kept in JAX's persistent compilation cache."""
    d = design
    return _metrics(d.hardware, d.model, d.workload, d.parallelism, DEFAULT_TAU if tau is None else tau,
                    d.technology, checked=checked)


#: Metrics of the chip alone (`chip_capex`: area, cost, peak power), beside `chips`,
#: `batch` and the near-memory ones: with the serving goal's metrics, what
#: `design_values(..., names=)` computes without timing the workload's static batch.
CHIP_METRICS = ("chip_area_mm2", "die_area_mm2", "chiplets", "die_yield", "chip_cost_usd", "logic_cost_usd",
                "package_cost_usd", "memory_cost_usd", "near_memory_cost_usd", "peak_power_w", "static_power_w",
                "embodied_kgco2e_per_chip")


def _without_static_batch(design: Design, names) -> bool:
    """Whether every metric in `names` comes from the chip alone or the serving goal."""
    cheap = {"chips", "batch"}
    if design.technology is not None:
        cheap.update(CHIP_METRICS)
    if design.hardware.near_memory is not None:
        cheap.update(NEAR_MEMORY_METRICS)
    if design.serving is not None:
        cheap.update(design.serving.metric_names(design.technology is not None))
    return all(n in cheap for n in names)


def _chip_and_serving_values(design: Design, tau, names) -> dict:
    """The metrics `names` of `_without_static_batch`: the same values as
    `metric_values`, from a program about half its size (no static-batch timing)."""
    d = design
    out = {"chips": d.parallelism.chips, "batch": jnp.asarray(d.workload.batch)}
    c = None
    if d.technology is not None and any(n in CHIP_METRICS for n in names):
        c = chip_capex(d.hardware, d.technology, tau)
        out.update(chip_area_mm2=c.area.total_mm2, die_area_mm2=c.area.die_mm2, chiplets=c.area.chiplets,
                   die_yield=c.die_yield, chip_cost_usd=c.chip_cost_usd, logic_cost_usd=c.logic_cost_usd,
                   package_cost_usd=c.package_cost_usd, memory_cost_usd=c.memory_cost_usd,
                   near_memory_cost_usd=c.near_memory_cost_usd, peak_power_w=c.peak_power_w,
                   static_power_w=c.static_power_w, embodied_kgco2e_per_chip=c.embodied_kgco2e_per_chip)
    if d.hardware.near_memory is not None and any(n in NEAR_MEMORY_METRICS for n in names):
        out["thermal_margin_w"] = thermal_margin_w(d.hardware)
        out["near_memory_flop_per_s"] = near_flop_per_s(d.hardware)
    if d.serving is not None and any(n.startswith("serving_") for n in names):
        out.update(d.serving.values(d, tau, capex=c))
    return {n: jnp.asarray(out[n]) for n in names}


@filter_jit
def design_values(design: Design, tau=None, checked=True, names=None) -> dict:
    """`metric_values` of `evaluate_design` (compiled; usable inside transformations).

    `names` (a tuple, static): only these metrics are needed. When they all come from
    the chip alone (`CHIP_METRICS`, `chips`, `batch`, the near-memory ones) or the
    serving goal, and the values are not checked here (``checked=False``), the workload's
    static batch is not timed at all: a sizing for serving traces and compiles about
    half the program. Otherwise every metric is computed (and returned)."""
    tau = DEFAULT_TAU if tau is None else tau
    if names is not None and not checked and _without_static_batch(design, names):
        return _chip_and_serving_values(design, tau, tuple(names))
    return metric_values(evaluate_design(design, tau, checked), design, tau)


def check_design(design: Design) -> None:
    """`evaluate`'s value checks on a concrete design, outside `jit` (`InputError`
    naming the first failing field)."""
    check_values(design.hardware, design.workload, design.parallelism, design.technology)


def anonymous(design: Design) -> Design:
    """`design` without static names, so designs differing only in them share a trace."""
    hw, model, tech = _anonymous(design.hardware, design.model, design.technology)
    return Design(hw, model, design.workload, design.parallelism, tech, design.serving)
