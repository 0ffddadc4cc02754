"""Serving rows as calibration targets (issue 14): `diffhw.calibrate` on the MLPerf
Server / Interactive rows of ``../shared/data``, through `diffhw.serve` itself.

Each row is its largest request rate under the round's p99 TTFT / TPOT limits
(``max_request_rate_per_s``: the log's samples/s, or tokens/s over the output length
where a results table gives only tokens/s), on the design `benchmarks/accuracy.py`
builds for it (its chip, model, precisions, layout, assumed prompt length and output
spread). The fit moves general physical terms of the profile only (default: the host's
time per sequence per step, `sequence_overhead_s`, 0 in the default profile), never a
per-row knob. Reported: the error before, in-sample after, and leave one chip out
(``diffhw.cross_validate(by="hardware")``: each chip's rows predicted by a fit on the
other chips' rows); and the at-rate latencies the fitted profile gives.

    python benchmarks/serving_fit.py [--stack tensorrt-llm|vllm-rocm|all] [--fit LEAF,LEAF] [--steps N] [--csv F]

``--csv F`` writes the points as a measurement CSV that ``diffhw calibrate F`` reads.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import diffhw
from diffhw._io import _measurements

sys.path.insert(0, str(Path(__file__).parent))
import accuracy  # noqa: E402


def serving_measurements(stack="tensorrt-llm"):
    """The MLPerf Server / Interactive rows of `stack` ("all": every stack) as
    ``max_request_rate_per_s`` `diffhw.Measurement`s."""
    points, _ = accuracy.published_points()
    out = []
    for p in points:
        if p["metric"] not in accuracy.SERVE_RATE_METRICS or (stack != "all" and p["stack"] != stack):
            continue
        value = p["measured"] if p["metric"] == "serve_max_rate" else p["measured"] / p["output_tokens"]
        out.append(diffhw.Measurement(
            hardware=p["hardware"], model=p["model"], metric="max_request_rate_per_s", value=value,
            input_tokens=p["input_tokens"], output_tokens=p["output_tokens"], tp=p["tp"], pp=p["pp"], dp=p["dp"],
            ep=p.get("ep", 1), weight_precision=p["weight_precision"], activation_precision=p["activation_precision"],
            kv_precision=p.get("kv_precision"), tpot_limit_s=p["tpot_limit_s"], ttft_limit_s=p["ttft_limit_s"],
            id=p["id"], group=p["group"], source=p["source"], stack=p["stack"], input_cv=p["input_cv"],
            output_cv=p["output_cv"]))
    return out


def _line(name, s):
    return f"  {name:<44} n={s['count']:<3} median {s['median_abs_rel_err']:.1%}  mean {s['mean_abs_rel_err']:.1%}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack", default="tensorrt-llm")
    ap.add_argument("--fit", default="sequence_overhead_s")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--no-cv", action="store_true")
    args = ap.parse_args(argv)
    fit = tuple(x for x in args.fit.split(",") if x)
    pts = serving_measurements(args.stack)
    if args.csv:
        _measurements.write_points(pts, args.csv)
    t0 = time.time()
    cal = diffhw.calibrate(pts, fit=fit, steps=args.steps, huber_delta=accuracy.HUBER_DELTA, name="serving-fit")
    print(f"{len(pts)} MLPerf serving rows ({args.stack}), fit {', '.join(fit)} "
          f"({time.time() - t0:.0f} s, {args.steps} Adam steps, pseudo-Huber {accuracy.HUBER_DELTA}):")
    for n in fit:
        print(f"  {n}: {float(getattr(cal.base_profile, n)):.4g} -> {float(getattr(cal.profile, n)):.4g}")
    print(_line("default profile", cal.stats("initial")))
    print(_line("fitted, in-sample", cal.stats()))
    for p, m, y0, y in zip(cal.points, cal.measured, cal.initial, cal.predicted):
        print(f"    {p.id:<12} {p.hardware:<10} {p.model:<15} measured {m:9.3f}  default {y0 / m:5.2f}x  "
              f"fitted {y / m:5.2f}x")
    if not args.no_cv:
        t0 = time.time()
        cv = diffhw.cross_validate(pts, by="hardware", fit=fit, steps=args.steps, huber_delta=accuracy.HUBER_DELTA)
        print(_line(f"leave one chip out ({time.time() - t0:.0f} s)", cv.pooled))
        for g, d in cv.groups.items():
            prof = d.get("profile") or {}
            print(f"    {g:<12} n={d['count']}  mean {d['mean_abs_rel_err'] or math.nan:.1%}  "
                  + ", ".join(f"{n} {prof.get(n, math.nan):.3g}" for n in fit))


if __name__ == "__main__":
    main()
