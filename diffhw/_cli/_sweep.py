"""`diffhw sweep`: a grid or random samples of designs, their Pareto front, a CSV and a
plot. Its flags and JSON keys are part of the CLI's public contract."""

import math

import numpy as np

from .._errors import InputError
from .._evaluation._design import metric_names, set_values
from .._evaluation._evaluate import bad_reasons, host_flags
from .._tools._sweep import DEFAULT_CHUNK, MAX_POINTS, sweep
from ._common import add_serving_flags, DEFAULT_BATCH, MAX_MAGNITUDE, design_of_args, dumps_json

DEFAULT_PARETO = "tpot_s:min,usd_per_million_tokens:min"
VARY_FORM = "PATH=LOW:HIGH[:N][:log|lin] or PATH=V1,V2,..."


def add_parser(subparsers, common):
    p = subparsers.add_parser(
        "sweep", help="evaluate a grid or random samples of designs; Pareto front, CSV and plot",
        description="Vary float leaves of a design (dotted paths such as "
                    "hardware.memory_bandwidth_bytes_per_s, hardware.tiers[0].capacity_bytes, workload.batch, "
                    "technology.wafer_usd), evaluate every design at once (vmap, sharded over all devices) "
                    "and report the Pareto front.")
    common(p)
    add_serving_flags(p)
    p.add_argument("--batch", type=float, default=None,
                   help="the base design's concurrent requests (default: 64; sweep it with --vary workload.batch=...)")
    p.add_argument("--vary", action="append", default=[], metavar="PATH=LOW:HIGH[:N][:log|lin]",
                   help="a swept leaf (repeatable). Grid: N values from LOW to HIGH, log-spaced when both are "
                        "positive unless ':lin' (or explicit values PATH=V1,V2,...). With --samples: "
                        "PATH=LOW:HIGH, drawn log-uniformly when both are positive unless ':lin'")
    p.add_argument("--samples", type=int, default=None, help="draw this many random designs instead of a grid")
    p.add_argument("--seed", type=int, default=0, help="random seed for --samples (default: %(default)s)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics to keep (default: all; memory_margin and the --pareto "
                        "objectives are always kept)")
    p.add_argument("--pareto", default=DEFAULT_PARETO,
                   help="objectives of the Pareto front, NAME:min|max,... (default: %(default)s)")
    p.add_argument("--csv", default=None, metavar="FILE", help="write every design and metric to a CSV file")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="scatter of the first two --pareto objectives with the front")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="designs per compiled call (default: %(default)s)")
    p.add_argument("--max-points", type=int, default=MAX_POINTS, help="refuse larger sweeps (default: %(default)s)")
    p.add_argument("--top", type=int, default=20, help="front rows shown in the table (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (none with --json either)")
    return p


def _number(text, spec):
    try:
        v = float(text)
    except ValueError:
        raise InputError("--vary", spec, f"numbers in {VARY_FORM}") from None
    if not (math.isfinite(v) and abs(v) <= MAX_MAGNITUDE):
        raise InputError("--vary", spec, f"finite numbers of magnitude at most {MAX_MAGNITUDE:g} in {VARY_FORM}")
    return v


def parse_vary(spec: str, sampling: bool):
    """``"PATH=LOW:HIGH[:N][:log|lin]"`` -> (path, grid values or (low, high, scale))."""
    path, sep, rest = spec.partition("=")
    path, rest = path.strip(), rest.strip()
    if not sep or not path or not rest:
        raise InputError("--vary", spec, VARY_FORM)
    if ":" not in rest:
        if sampling:
            raise InputError("--vary", spec, "bounds PATH=LOW:HIGH[:log|lin] with --samples")
        return path, np.array([_number(t, spec) for t in rest.split(",")])
    parts = [t.strip() for t in rest.split(":")]
    scale = None
    if parts[-1].lower() in ("log", "lin", "linear"):
        scale = "log" if parts.pop().lower() == "log" else "linear"
    if len(parts) not in (2, 3):
        raise InputError("--vary", spec, VARY_FORM)
    lo, hi = _number(parts[0], spec), _number(parts[1], spec)
    if lo > hi:
        raise InputError("--vary", spec, "LOW <= HIGH")
    if scale == "log" and lo <= 0:
        raise InputError("--vary", spec, "positive LOW and HIGH for a log scale (or ':lin')")
    if sampling:
        if len(parts) == 3:
            raise InputError("--vary", spec, "no point count N with --samples (it sets the count)")
        return path, (lo, hi) if scale is None else (lo, hi, scale)
    if len(parts) != 3:
        raise InputError("--vary", spec, "a point count N for a grid: PATH=LOW:HIGH:N[:log|lin] (or use --samples)")
    n = _number(parts[2], spec)
    if n < 1 or n != int(n):
        raise InputError("--vary", spec, "a whole number of points N >= 1")
    n = int(n)
    if n == 1:
        return path, np.array([lo])
    if scale == "log" or (scale is None and lo > 0):
        return path, np.geomspace(lo, hi, n)
    return path, np.linspace(lo, hi, n)


def parse_objectives(text: str) -> dict:
    """``"tpot_s:min,usd_per_million_tokens:min"`` -> ``{name: sense}``."""
    out = {}
    for item in (t.strip() for t in text.split(",")):
        name, sep, sense = item.rpartition(":")
        if not sep or not name or sense not in ("min", "max"):
            raise InputError("--pareto", text, "NAME:min or NAME:max, comma-separated")
        out[name.strip()] = sense
    return out


def _json_float(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _check_axes(design, axes, specs):
    """Refuse a --vary range that reaches values the model does not allow (a command
    line that asks for them is a typo; the Python API marks such designs infeasible)."""
    for (path, values), spec in zip(axes.items(), specs, strict=True):
        bounds = values[:2] if isinstance(values, tuple) else (np.min(values), np.max(values))
        for v in bounds:
            d = set_values(design, {path: float(v)})
            flags = host_flags(d.hardware, d.workload, d.parallelism, d.technology)
            if flags.any():
                (reason,) = bad_reasons(flags[None], d.hardware, d.workload, d.parallelism, d.technology)
                raise InputError("--vary", spec, f"values the model allows ({reason}; {v:g} is not)")


def run(args):
    if not args.vary:
        raise InputError("--vary", None, f"at least one swept leaf, {VARY_FORM}")
    if args.samples is not None and args.samples < 1:
        raise InputError("--samples", args.samples, "a whole number >= 1")
    if args.chunk < 1:
        raise InputError("--chunk", args.chunk, "a whole number >= 1")
    sampling = args.samples is not None
    axes = {}
    for spec in args.vary:
        path, values = parse_vary(spec, sampling)
        if path in axes:
            raise InputError("--vary", spec, f"each path once ({path} is already varied)")
        axes[path] = values
    objectives = parse_objectives(args.pareto)
    batch = args.batch if args.batch is not None else DEFAULT_BATCH
    design = design_of_args(args, batch)
    hw, model, par = design.hardware, design.model, design.parallelism
    known = metric_names(design)
    for name in objectives:
        if name not in known and name not in axes:
            raise InputError("--pareto", name, "a metric (" + ", ".join(known) + ") or a --vary path")
    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        metrics += [o for o in objectives if o in known and o not in metrics]
    if args.plot is not None and len(objectives) < 2:
        raise InputError("--pareto", args.pareto, "two objectives for --plot (its x and y axes)")

    _check_axes(design, axes, args.vary)
    result = sweep(design, axes, metrics=metrics, samples=args.samples, seed=args.seed, chunk=args.chunk,
                   progress=False if args.no_progress or args.json else None, max_points=args.max_points)
    front = result.pareto(objectives)
    first = next(iter(objectives))
    front = front[np.argsort(result[first][front], kind="stable")]
    if args.csv:
        result.to_csv(args.csv)
    if args.plot:
        x, y = list(objectives)[:2]
        result.plot(x, y, args.plot, objectives={x: objectives[x], y: objectives[y]},
                    title=f"{model.name} on {hw.name}: {len(result)} designs")
    n = len(result)
    summary = {
        "command": "sweep",
        "hardware": hw.name,
        "model": model.name,
        "profile": hw.profile.name,
        "chips": int(round(float(par.chips))),
        "tp": int(round(float(par.tp))),
        "pp": int(round(float(par.pp))),
        "dp": int(round(float(par.dp))),
        "ep": int(round(float(par.ep))),
        "batch": float(batch),
        "input_tokens": float(args.input_tokens),
        "output_tokens": float(args.output_tokens),
        "mode": "samples" if sampling else "grid",
        "seed": args.seed if sampling else None,
        "axes": [_axis_summary(p, result.inputs[p], axes[p], sampling) for p in axes],
        "designs": n,
        "feasible_designs": int(result.feasible.sum()),
        "devices": result.devices,
        "wall_s": result.wall_s,
        "designs_per_s": n / result.wall_s if result.wall_s > 0 else None,
        "objectives": objectives,
        "pareto_front_size": int(front.size),
        "pareto_front": [{k: (v if isinstance(v, bool) else _json_float(v)) for k, v in row.items()}
                         for row in result.rows(front)],
        "csv": args.csv,
        "plot": args.plot,
    }
    if args.json:
        print(dumps_json(summary))
        return
    print(_table(summary, result, front, list(axes), list(objectives), args.top))


def _axis_summary(path, values, spec, sampling):
    out = {"path": path, "low": float(np.min(values)), "high": float(np.max(values))}
    if sampling:
        lo = float(spec[0])
        out["scale"] = spec[2] if len(spec) == 3 else ("log" if lo > 0 else "linear")
    else:
        out["points"] = int(np.unique(values).size)
    return out


def _table(s, result, front, paths, objectives, top):
    shape = " x ".join(str(a["points"]) for a in s["axes"]) if s["mode"] == "grid" else "random"
    lines = [
        (f"diffhw sweep: {s['designs']:,} designs ({s['mode']} {shape}) of {s['model']} on {s['chips']} x "
         f"{s['hardware']} (tp={s['tp']} pp={s['pp']} dp={s['dp']} ep={s['ep']}, profile {s['profile']})"),
        (f"  feasible (fit in memory): {s['feasible_designs']:,} of {s['designs']:,}; evaluated in "
         f"{s['wall_s']:.2f} s ({s['designs_per_s']:,.0f} designs/s, compilation included) on "
         f"{s['devices']} device{'s' if s['devices'] != 1 else ''}"),
        "  Pareto front (" + ", ".join(f"{k} {v}" for k, v in s["objectives"].items())
        + f"): {s['pareto_front_size']} designs" + (f", first {top} shown" if front.size > top else ""),
    ]
    cols = list(dict.fromkeys(paths + objectives))
    widths = [max(len(c), 11) for c in cols]
    lines.append("    " + "  ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True)))
    for i in front[:top]:
        lines.append("    " + "  ".join(f"{result[c][i]:>{w}.4g}" for c, w in zip(cols, widths, strict=True)))
    for key, what in (("csv", "every design"), ("plot", "the plot")):
        if s[key]:
            lines.append(f"  wrote {what} to {s[key]}")
    return "\n".join(lines)


COMMANDS = {"sweep": (add_parser, run)}
