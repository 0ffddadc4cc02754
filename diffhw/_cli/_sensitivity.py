"""`diffhw sensitivity`: elasticities of metrics to every hardware and technology
parameter, a tornado chart, crossovers and curvature."""


from .._errors import InputError, check_positive, did_you_mean
from .._evaluation._design import check_design, design_values, metric_names
from .._tools._sensitivity import (
    crossovers,
    curvature,
    plot_tornado,
    prepare_crossovers,
    prepare_sensitivity,
    sensitivity,
    tornado,
)
from ._common import DEFAULT_BATCH, add_serving_flags, design_of_args, dumps_json, fmt_number


def _add_sensitivity(sub, common):
    p = sub.add_parser("sensitivity", help="elasticities of metrics to every hardware and technology parameter")
    common(p)
    add_serving_flags(p)
    p.add_argument("--batch", type=float, default=None, help="concurrent requests (default: 64, lowered to what fits)")
    p.add_argument("--metric", default="tpot_s", help="metric of the table and tornado (default: %(default)s)")
    p.add_argument("--top", type=int, default=12, help="parameters to show (default: %(default)s)")
    p.add_argument("--step", type=float, default=0.2, help="tornado swing, a fraction (default: %(default)s)")
    p.add_argument("--second-order", action="store_true",
                   help="add d2 log m / d(log p)2 of the top parameters (Hessian-vector products)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write a tornado chart")


def _run_sensitivity(args):
    # the cheap checks first: the sensitivities take seconds to compile
    if not 0 < args.step < 1:
        raise InputError("--step", args.step, "a fraction in (0, 1)")
    check_positive("--top", args.top)
    batch = args.batch if args.batch is not None else DEFAULT_BATCH
    design = design_of_args(args, check_positive("--batch", batch))
    names = metric_names(design)
    if args.metric not in names:
        raise InputError("--metric", args.metric, "one of " + ", ".join(names), did_you_mean(args.metric, names))
    notes = []
    # checked on the host, then a program without the checks' callback (cacheable)
    check_design(design)
    # The sensitivities' and crossovers' programs compile in the background meanwhile
    # (the batch below is a value: lowering it keeps the design's structure).
    prepare_sensitivity(design)
    prepare_crossovers(design)
    values = design_values(design, checked=False) if args.batch is None else None
    if values is not None and float(values["memory_margin"]) < 0:
        fit = float(values["max_batch"])
        if fit < 1:
            raise InputError("--chips", float(design.parallelism.chips), "enough chips to hold the model's weights")
        design = design_of_args(args, fit)
        notes.append(f"batch lowered from {DEFAULT_BATCH} to {int(fit)}, the largest that fits")
    s = sensitivity(design)
    rows = tornado(design, args.metric, step=args.step, top=args.top, sens=s)
    cross = crossovers(design)
    d = {
        "hardware": design.hardware.name,
        "model": design.model.name,
        "batch": float(design.workload.batch),
        "metric": args.metric,
        "value": float(s.values[s.metrics.index(args.metric)]),
        "bound": s.bound,
        "bound_shares": s.bound_shares,
        "crossovers": {k: {"bound": v["bound"],
                           "below": None if v["below"] is None else {"factor": v["below"][0], "bound": v["below"][1]},
                           "above": None if v["above"] is None else {"factor": v["above"][0], "bound": v["above"][1]}}
                       for k, v in cross.items()},
        "top": s.top(args.metric, args.top),
        "tornado": [{"param": p, "value": v, "change_low": lo, "change_high": hi} for p, v, lo, hi in rows],
        "elasticities": {m: s.of(m) for m in s.metrics},
        "params": {p: float(v) for p, v in zip(s.params, s.param_values, strict=True)},
        "notes": notes,
    }
    if args.second_order:
        d["second_order"] = curvature(design, args.metric, list(d["top"]))
    if args.plot:
        plot_tornado(rows, args.metric, args.plot, args.step)
        d["plot"] = args.plot
    if args.json:
        print(dumps_json(d))
        return
    lines = [(f"diffhw sensitivity: {d['model']} on {d['hardware']}, batch {d['batch']:g}: "
              f"{args.metric} = {fmt_number(d['value'])}"),
             f"  decode step bound by {d['bound']} ("
             + ", ".join(f"{k} {v:.0%}" for k, v in d["bound_shares"].items()) + ")"]
    for k, v in d["crossovers"].items():
        parts = [f"x{v[side]['factor']:.3g} -> {v[side]['bound']}" for side in ("below", "above") if v[side]]
        lines.append(f"    {k:<18} binding resource changes at " + ("; ".join(parts) if parts else "no factor in 1/64..64"))
    lines += ["", f"  {'parameter':<48} {'value':>11} {'elasticity':>10} {f'-{args.step:.0%}':>8} {f'+{args.step:.0%}':>8}"]
    for p, v, lo, hi in rows:
        lines.append(f"  {p:<48} {fmt_number(v):>11} {d['top'][p]:>+10.3f} {lo:>+8.1%} {hi:>+8.1%}")
    for p, c in d.get("second_order", {}).items():
        lines.append(f"  second order {p}: {c:+.4f}")
    for n in notes:
        lines.append(f"  note: {n}")
    print("\n".join(lines))


COMMANDS = {"sensitivity": (_add_sensitivity, _run_sensitivity)}
