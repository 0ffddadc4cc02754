"""``diffhw calibrate DATA.csv --profile NAME``: fit a calibration profile to measurements.

The CSV has one measured number per row (columns: ``diffhw.calibrate`` module's
`CSV_COLUMNS`). The fitted profile is written as TOML (``--out``) that every command
loads with ``--profile FILE.toml``; ``--cv hardware|model|group|stack`` (``--cv-within stack``) adds leave-one-group-out
cross-validation. JSON keys (``--json``) are a public contract.
"""

import math
import shlex

from .._errors import InputError
from .._io._measurements import CSV_COLUMNS, REQUIRED_COLUMNS, load_points
from .._io._profiles import load_profile
from .._tools._calibrate import CV_FIELDS, DEFAULT_FIT, LEAVES, _check_fit, calibrate, cross_validate
from ._common import dumps_json


def add_parser(subparsers, common):
    p = subparsers.add_parser(
        "calibrate",
        help="fit a calibration profile's efficiency and overhead terms to measured points (CSV)",
        description="Fit a calibration profile to measured points by least squares on relative "
        "error (Optax, bounded terms): static-batch latencies and throughputs, and serving under load "
        "(max_request_rate_per_s under p99 limits, serve_tpot/ttft at a request_rate, through diffhw serve). "
        "CSV columns, required: " + ", ".join(REQUIRED_COLUMNS)
        + "; optional: " + ", ".join(c for c in CSV_COLUMNS if c not in REQUIRED_COLUMNS) + ".",
    )
    p.add_argument("data", help="measurement CSV, one measured number per row")
    p.add_argument("--profile", default="calibrated", help="name of the fitted profile (default: %(default)s)")
    p.add_argument("--fit", default=",".join(DEFAULT_FIT),
                   help="comma-separated profile leaves to fit, of: " + ", ".join(LEAVES) + " (default: %(default)s)")
    p.add_argument("--base-profile", default="default",
                   help="starting profile (name or TOML); unfitted leaves keep its values (default: %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="LEAF=VALUE",
                   help="override a leaf of the base profile before fitting (repeatable), e.g. max_batched_tokens=1e9")
    p.add_argument("--out", default=None, help="write the fitted profile to this TOML file")
    p.add_argument("--description", default=None, help="description stored in the profile TOML")
    p.add_argument("--steps", type=float, default=300, help="Adam steps (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=0.05, help="Adam step size (default: %(default)s)")
    p.add_argument("--huber-delta", type=float, default=0.0,
                   help="0: least squares on log error; > 0: pseudo-Huber beyond this log error, robust to "
                   "outliers (default: %(default)s)")
    p.add_argument("--cv", default=None,
                   help="also cross-validate: leave one 'hardware', 'model', 'group' or 'stack' out")
    p.add_argument("--cv-within", default=None,
                   help="with --cv: fold within each value of this column, e.g. 'stack' (one fit per software stack)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _stats_json(s):
    return {k: (None if v is None else float(v)) for k, v in s.items()}


def run(args):
    """Check the flags, fit (and cross-validate), write the profile, report."""
    fit, over = _check_args(args)
    base = load_profile(args.base_profile, overrides=over)
    points = load_points(args.data)
    steps = int(args.steps)
    cal = calibrate(points, base_profile=base, fit=fit, steps=steps,
                    learning_rate=args.learning_rate, huber_delta=args.huber_delta, name=args.profile)
    toml = cal.to_toml(args.profile, args.description or "", fitted_on=str(args.data),
                       command=_command_line(args, fit))
    if args.out:
        try:
            with open(args.out, "w") as f:
                f.write(toml)
        except OSError as e:
            raise InputError("--out", args.out, f"a writable file ({e.strerror})") from None
    cv = None
    if args.cv:
        cv = cross_validate(points, by=args.cv, base_profile=base, fit=fit, steps=steps,
                            learning_rate=args.learning_rate, huber_delta=args.huber_delta, within=args.cv_within)
    if args.json:
        print(dumps_json(_json(args, cal, cv)))
    else:
        _print_table(args, cal, cv, toml)


def _check_args(args):
    """The fitted leaves and the base profile's overrides, every flag checked."""
    fit = tuple(x.strip() for x in str(args.fit).split(",") if x.strip())
    if args.cv is not None and args.cv not in CV_FIELDS:
        raise InputError("--cv", args.cv, " or ".join(CV_FIELDS))
    if args.cv_within is not None and (args.cv is None or args.cv_within not in CV_FIELDS
                                       or args.cv_within == args.cv):
        raise InputError("--cv-within", args.cv_within,
                         "with --cv, another of " + ", ".join(CV_FIELDS))
    if not (math.isfinite(args.huber_delta) and args.huber_delta >= 0):
        raise InputError("--huber-delta", args.huber_delta, "a finite number >= 0")
    steps = args.steps
    if not (math.isfinite(steps) and steps >= 1 and steps == int(steps)):
        raise InputError("--steps", steps, "a whole number >= 1")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise InputError("--learning-rate", args.learning_rate, "a finite number > 0")
    try:
        _check_fit(fit)
    except InputError as e:
        raise InputError("--fit", e.value, e.allowed) from None
    over = {}
    for item in args.set:
        key, sep, value = str(item).partition("=")
        try:
            over[key.strip()] = float(value)
        except ValueError:
            raise InputError("--set", item, "LEAF=NUMBER, e.g. max_batched_tokens=1e9") from None
        if not sep:
            raise InputError("--set", item, "LEAF=NUMBER, e.g. max_batched_tokens=1e9")
    return fit, over


def _command_line(args, fit):
    """The command that reproduces the fit (written into the profile's header)."""
    return (f"diffhw calibrate {shlex.quote(str(args.data))} --profile {shlex.quote(args.profile)} "
            f"--base-profile {shlex.quote(str(args.base_profile))} "
            + "".join(f"--set {shlex.quote(str(x))} " for x in args.set)
            + (f"--description {shlex.quote(args.description)} " if args.description else "")
            + f"--fit {','.join(fit)} --steps {int(args.steps)} --learning-rate {args.learning_rate:g}"
            + (f" --huber-delta {args.huber_delta:g}" if args.huber_delta else ""))


def _json(args, cal, cv):
    """The ``--json`` output (a public contract)."""
    out = {
        "profile": args.profile,
        "base_profile": cal.base_profile.name,
        "fit": list(cal.fit),
        "values": cal.values(),
        "points": len(cal.points),
        "fitted_points": int(cal.fitted.sum()),
        "error": _stats_json(cal.stats()),
        "error_all_points": _stats_json(cal.stats("all")),
        "error_base_profile": _stats_json(cal.stats("initial")),
        "loss": cal.loss,
        "loss_history": [float(x) for x in cal.loss_history],
        "predictions": [
            {"id": p.id, "hardware": p.hardware, "model": p.model, "metric": p.metric, "measured": float(m),
             "predicted": float(y), "rel_error": float(y / m - 1.0), "fitted": bool(f)}
            for p, m, y, f in zip(cal.points, cal.measured, cal.predicted, cal.fitted)
        ],
        "out": args.out,
    }
    if cv is not None:
        out["cross_validation"] = {
            "by": cv.by,
            "within": cv.within,
            "groups": {g: dict(d, **_stats_json({k: d[k] for k in ("count", "median_abs_rel_err",
                                                                      "mean_abs_rel_err")}))
                       for g, d in cv.groups.items()},
            "pooled": _stats_json(cv.pooled),
        }
    return out


def _print_table(args, cal, cv, toml):
    s, s0 = cal.stats(), cal.stats("initial")
    print(f"diffhw calibrate: {len(cal.points)} points from {args.data}, {int(cal.fitted.sum())} fitted, "
          f"{len(cal.loss_history)} Adam steps from profile '{cal.base_profile.name}'")
    print(f"  |predicted / measured - 1| on fitted points: median {s0['median_abs_rel_err']:.1%} -> "
          f"{s['median_abs_rel_err']:.1%}, mean {s0['mean_abs_rel_err']:.1%} -> {s['mean_abs_rel_err']:.1%}")
    print("  fitted values:")
    for n in cal.fit:
        print(f"    {n:<22} {float(getattr(cal.base_profile, n)):.4g} -> {cal.values()[n]:.4g}")
    if cv is not None:
        inside = f", within each {cv.within}" if cv.within else ""
        print(f"  cross-validation, leave one {cv.by} out{inside} (error on the one left out):")
        for g, d in cv.groups.items():
            if d["count"]:
                print(f"    {g:<28} n={d['count']:<4} median {d['median_abs_rel_err']:.1%}  mean {d['mean_abs_rel_err']:.1%}"
                      + (f"  ({d['note']})" if d.get("note") else ""))
            else:
                print(f"    {g:<28} {d.get('note', 'no points')}")
        if cv.pooled["count"]:
            print(f"    {'pooled':<28} n={cv.pooled['count']:<4} median {cv.pooled['median_abs_rel_err']:.1%}  "
                  f"mean {cv.pooled['mean_abs_rel_err']:.1%}")
    if args.out:
        print(f"  wrote {args.out} (use it with --profile {args.out})")
    else:
        print("\n" + toml, end="")


COMMANDS = {"calibrate": (add_parser, run)}
