"""`diffhw size`: gradient sizing of one design, or of one design for a mix of workloads."""

import argparse
import contextlib
import inspect
import math

import numpy as np

from .._errors import InputError, check_positive, did_you_mean
from .._io._plot import figure
from .._tools._sensitivity import prepare_sensitivity, sensitivity
from .._tools._sizing._problem import Constraint, objective_terms, variable
from .._serving._serve import prepare_serve, serve
from .._tools._sizing._size import _prepare_size, size

#: `size`'s defaults of what the command line does not set.
_SIZE_DEFAULTS = {k: p.default for k, p in inspect.signature(size).parameters.items()
                  if k in ("learning_rate", "penalty", "penalty_growth", "slack", "tau")}
from ._common import MAX_MAGNITUDE, add_serving_flags, check_numbers, design_of_args, dumps_json, fmt_number

#: The main job's workload: a DeepSeek-V3-class MoE serving 32K-token prompts in FP8.
SIZE_DEFAULTS = dict(hardware="h200-sxm", model="deepseek-v3", input_tokens=32768, output_tokens=1024,
                     precision="fp8")
SIZE_BATCH = 32

#: The main job's design, for `diffhw.from_presets` (the benchmarks): the defaults above
#: with the chips (the H200's 8) and ep (= tp) the command derives.
MAIN_JOB = dict(SIZE_DEFAULTS, chips=8, ep=8)

#: The main job's design variables: (name, lower, upper, paths or None for the alias).
DEFAULT_VARIABLES = (
    ("compute", 0.25, 4.0, None),
    ("memory_bandwidth", 1e12, 2.4e13, None),
    ("memory_capacity", 4e10, 6e11, None),
    ("sram", 1e7, 1e9, None),
    ("link_bandwidth", 5e10, 3.6e12, None),
    ("chips", 8, 64, ("parallelism.tp", "parallelism.ep")),
    ("batch", 1, 512, None),
)


def _add_size(sub, common):
    p = sub.add_parser("size", help="size a system by gradient descent under area, power and latency budgets")
    common(p)
    p.set_defaults(**SIZE_DEFAULTS)
    for action in p._actions:  # size's ep follows the model (`design_from_args`, ep_follows_tp)
        if action.dest == "ep":
            action.help = "expert-parallel degree (default: tp for an expert model, as the chips variable moves both; 1 for a dense one)"
    p.add_argument("--batch", type=float, default=SIZE_BATCH, help="starting batch (default: %(default)s)")
    p.add_argument("--vary", action="append", default=None, metavar="NAME=LOW:HIGH[:int]",
                   help="a design variable: an alias (compute, memory_bandwidth, memory_capacity, memory_stacks, "
                        "sram, link_bandwidth, link_latency, chips, tp, pp, dp, ep, batch), a dotted path or "
                        "placement.<class>[tier], with bounds; repeatable "
                        "(default: compute, memory bandwidth and capacity, SRAM, link bandwidth, chips, batch)")
    p.add_argument("--objective", default=None,
                   help="METRIC[:min|max], or a weighted product 'a*1,b*0.5' (default: "
                        "serving_usd_per_million_tokens; with --serving off, usd_per_million_tokens)")
    p.add_argument("--tpot-slo-ms", type=float, default=None,
                   help="static-batch TPOT limit, ms (default: none; with --serving off, 50; 0: none)")
    p.add_argument("--ttft-slo-ms", type=float, default=0.0, help="TTFT limit, ms (default: 0, none)")
    p.add_argument("--area-budget-mm2", type=float, default=858.0,
                   help="logic area per chip, mm2 (default: %(default)s, one reticle; 0: none)")
    p.add_argument("--power-budget-w", type=float, default=1000.0,
                   help="modelled peak power per chip, W (default: %(default)s; 0: none)")
    add_serving_flags(p, default="long-context", off=True)
    p.add_argument("--min-request-rate", type=float, default=None,
                   help="with --serving: requests/s the system must serve within the p99 limits "
                        "(a constraint on serving_request_rate_per_s; default 0.01)")
    p.add_argument("--constraint", action="append", default=[], metavar="METRIC<=X",
                   help="extra constraint, e.g. 'system_peak_power_w<=50000' or 'tier_lifetime_margin>=0'")
    p.add_argument("--starts", type=int, default=None,
                   help="optimisations from different starts (default: 4, or 2 beyond ten variables)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimiser steps per multiplier update (default: 80, or 8 per variable beyond ten)")
    p.add_argument("--method", choices=("adam", "lbfgs"), default="adam",  # _sizing.METHODS (not imported: lazy)
                   help="inner optimiser: Adam, or L-BFGS with a line search (default: %(default)s)")
    p.add_argument("--outer", type=int, default=6, help="augmented-Lagrangian updates (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=8, help="sensitivities to show (default: %(default)s)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write the optimisation trace")
    p.add_argument("--workload", action="append", default=None, metavar="KEY=VALUE,...",
                   help="size one hardware design for a mix of workloads (repeat per workload), e.g. "
                        "'model=llama-3.1-8b,input-tokens=4096,chips=1,share=0.3': keys are this command's "
                        "options (" + ", ".join(WORKLOAD_KEYS) + ") plus share (its weight in the objective, "
                        "e.g. of tokens served; default 1); unset keys take the command's values. Batch and "
                        "parallel degrees in --vary become one variable per workload (named NAME@i), the "
                        "others are shared; the objective is the share-weighted mean")


#: Keys a --workload may set (the common options that describe a workload, not hardware).
WORKLOAD_KEYS = ("model", "input-tokens", "output-tokens", "precision", "weight-precision", "kv-precision",
                 "shared-context-tokens", "chips", "tp", "pp", "dp", "ep", "batch")
#: --vary names that belong to one workload in a mix (the rest are shared hardware).
_PER_WORKLOAD = ("batch", "chips", "tp", "pp", "dp", "ep")


def _parse_vary(spec, model, workload=None):
    name, eq, rng = spec.partition("=")
    parts = rng.split(":")
    if not eq or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("int", "real")):
        raise InputError("--vary", spec, "NAME=LOW:HIGH or NAME=LOW:HIGH:int (or :real)")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError("--vary", spec, "numeric bounds, e.g. memory_bandwidth=1e12:2e13") from None
    if not all(math.isfinite(v) and abs(v) <= MAX_MAGNITUDE for v in (lo, hi)):
        raise InputError("--vary", spec, f"finite bounds of magnitude at most {MAX_MAGNITUDE:g}")
    integer = None if len(parts) == 2 else parts[2] == "int"

    paths = ("parallelism.tp", "parallelism.ep") if name == "chips" and model.n_experts else (
        ("parallelism.tp",) if name == "chips" else None)
    return variable(name, lo, hi, integer=integer, paths=paths, workload=workload)


def _parse_workload(spec):
    """``"model=x,input-tokens=4096,share=0.3"`` -> ({option: value}, share)."""
    out, share = {}, 1.0
    for item in filter(None, (t.strip() for t in spec.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not value.strip():
            raise InputError("--workload", spec, "comma-separated KEY=VALUE items, e.g. model=llama-3.1-8b,share=0.3")
        if key == "share":
            try:
                share = float(value)
            except ValueError:
                share = math.nan
            if not (math.isfinite(share) and share > 0):
                raise InputError("--workload share", value, "a positive number")
            continue
        if key not in WORKLOAD_KEYS:
            raise InputError("--workload key", key, "one of " + ", ".join((*WORKLOAD_KEYS, "share")),
                             did_you_mean(key, (*WORKLOAD_KEYS, "share")))
        out[key] = value.strip()
    return out, share


def _workload_args(args, items):
    """A copy of `args` with one workload's options set (numbers parsed as the CLI does)."""

    numeric = {"input-tokens", "output-tokens", "shared-context-tokens", "chips", "tp", "pp", "dp", "ep", "batch"}
    ns = argparse.Namespace(**vars(args))
    for key, value in items.items():
        if key in numeric:
            try:
                value = float(value)
            except ValueError:
                raise InputError(f"--workload {key}", value, "a number") from None
        setattr(ns, key.replace("-", "_"), value)
    if "tp" in items and "chips" not in items:
        ns.chips = None  # tp sets the chip count
    check_numbers(ns, prefix="--workload ", flags={k.replace("-", "_") for k in numeric})
    return ns


def _parse_objective(spec):
    out = {}
    for term in spec.split(","):
        name, _, w = term.partition("*")
        try:
            out[name.strip()] = float(w) if w else 1.0
        except ValueError:
            raise InputError("--objective", spec, "METRIC[:min|max][*WEIGHT], comma-separated") from None
    objective_terms(out)  # every weight checked, also a lone term's (whose weight does not matter)
    return out if len(out) > 1 else next(iter(out))


def _run_size(args):
    check_positive("--batch", args.batch)
    serving = args.serving != "off"
    if args.min_request_rate is not None and not serving:
        raise InputError("--min-request-rate", args.min_request_rate, "used with --serving (not off)")
    if args.objective is None:
        args.objective = "serving_usd_per_million_tokens" if serving else "usd_per_million_tokens"
    if args.tpot_slo_ms is None:
        args.tpot_slo_ms = 0.0 if serving else 50.0
    # serving: the batch is the load (sequences decoding, `ServingGoal(load="batch")`)
    specs = args.vary or [f"{n}={lo}:{hi}" for n, lo, hi, _ in DEFAULT_VARIABLES]
    load = "batch" if serving else "max_rate"
    shares = None
    if args.workload:
        mix = [_parse_workload(w) for w in args.workload]
        wargs = [_workload_args(args, items) for items, _ in mix]
        designs = [design_of_args(a, check_positive("--workload batch", a.batch), ep_follows_tp=True,
                                  serving_load=load) for a in wargs]
        shares = [sh for _, sh in mix]
        shared = [s for s in specs if s.partition("=")[0] not in _PER_WORKLOAD]
        own = [s for s in specs if s.partition("=")[0] in _PER_WORKLOAD]
        variables = [_parse_vary(s, designs[0].model) for s in shared]
        variables += [_parse_vary(s, d.model, workload=i) for i, d in enumerate(designs) for s in own]
        design = designs if len(designs) > 1 else designs[0]
    else:
        design = design_of_args(args, args.batch, ep_follows_tp=True, serving_load=load)
        variables = [_parse_vary(s, design.model) for s in specs]
    cons = []
    for flag, metric, scale in (("--tpot-slo-ms", "tpot_s", 1e-3), ("--ttft-slo-ms", "ttft_s", 1e-3),
                                ("--area-budget-mm2", "chip_area_mm2", 1.0), ("--power-budget-w", "peak_power_w", 1.0)):
        v = check_positive(flag, getattr(args, flag[2:].replace("-", "_")), allow_zero=True)
        if v > 0:
            cons.append(Constraint(metric, upper=v * scale))
    if serving:  # the p99 limits at the load; the load sustainable (added by size); a least rate
        goal = (design[0] if isinstance(design, list) else design).serving
        cons += [Constraint("serving_ttft_p99_s", upper=float(goal.ttft_limit_s)),
                 Constraint("serving_tpot_p99_s", upper=float(goal.tpot_limit_s))]
        if goal.disaggregation is not None:  # the chip budgets hold for the Prefill pool's chip too
            for flag, metric in (("area_budget_mm2", "serving_prefill_chip_area_mm2"),
                                 ("power_budget_w", "serving_prefill_peak_power_w")):
                if getattr(args, flag) > 0:
                    cons.append(Constraint(metric, upper=getattr(args, flag)))
        rate = check_positive("--min-request-rate", args.min_request_rate) if args.min_request_rate is not None \
            else 0.01
        cons.append(Constraint("serving_request_rate_per_s", lower=rate))
    cons += list(args.constraint)
    for flag in ("starts", "steps", "outer", "top"):
        if getattr(args, flag) is not None:
            check_positive(f"--{flag}", getattr(args, flag))
    objective = _parse_objective(args.objective)
    run = _prepare_size(design, variables, objective, cons, starts=args.starts, inner_steps=args.steps,
                        outer_steps=args.outer, seed=args.seed, method=args.method, shares=shares,
                        progress=False if args.json else None, **_SIZE_DEFAULTS)
    _prepare_report(design, objective, serving)  # compiled in the background after the search
    r = run()
    objective_metric = r.objective_spec[0][0]
    if len(r.designs) == 1:
        top = sensitivity(r.design, metrics=(objective_metric,), breakdown=False).top(objective_metric, args.top)
    elif len(r.objective_spec) == 1:
        top = mix_elasticities(r, args.top)
    else:  # a weighted product over a mix: not computed
        top = {}
    d = _size_dict(r, r.designs[0], top)
    if serving:
        d["serving"] = {"scenario": args.serving, **_exact_serving(r.designs[0], design if not isinstance(design, list)
                                                                   else design[0])}
    if len(r.designs) > 1:
        d["model"] = " + ".join(x.model.name for x in r.designs)
        d["workloads"] = [
            {"model": x.model.name, "share": sh, "baseline_metrics": bm, "metrics": m}
            for x, sh, bm, m in zip(r.designs, r.shares, r.baseline_workload_metrics, r.workload_metrics, strict=True)
        ]
    if args.plot:
        _plot_trace(r, args.plot)
        d["plot"] = args.plot
    if args.json:
        print(dumps_json(d))
    else:
        print(_size_table(d))
    if not r.feasible:
        raise InputError("budgets", "; ".join(c["constraint"] for c in d["constraints"] if not c["met"]),
                         "limits a design within the variables' bounds can meet",
                         "; ".join(r.violations) + "; loosen them or widen the bounds")


def _prepare_report(design, objective, serving):
    """Start compiling the report's programs (the sensitivities of the objective and, for
    serving, `serve`'s exact check) in the background while `size` runs; a sized design
    has the baseline's structure. Errors are left for `size` to report."""
    if isinstance(design, list):
        return
    with contextlib.suppress(InputError):
        terms = objective_terms(objective)
        if len(terms) == 1:
            prepare_sensitivity(design, metrics=(terms[0][0],), breakdown=False)
        if serving:
            goal = design.serving
            prepare_serve(design.hardware, design.model, goal.traffic(design.workload), design.parallelism,
                          ttft_limit_s=goal.ttft_limit_s, tpot_limit_s=goal.tpot_limit_s, at_max_rate=True,
                          technology=design.technology, disaggregation=goal.disaggregation,
                          speculation=goal.speculation)


def _exact_serving(chosen, baseline):
    """`diffhw serve` at the largest rate meeting the goal's p99 limits, for the chosen
    and the baseline design: the check that sizing at a load found that rate."""
    out = {}
    goal = chosen.serving
    out["ttft_p99_limit_s"], out["tpot_p99_limit_s"] = float(goal.ttft_limit_s), float(goal.tpot_limit_s)
    spec = goal.speculation
    out["speculative"] = None if spec is None else {
        "draft_model": spec.draft.name if spec.draft is not None else "mtp",
        "draft_tokens": float(spec.draft_tokens), "acceptance": float(spec.acceptance)}
    for key, d in (("baseline", baseline), ("chosen", chosen)):
        s = serve(d.hardware, d.model, goal.traffic(d.workload), d.parallelism, ttft_limit_s=goal.ttft_limit_s,
                  tpot_limit_s=goal.tpot_limit_s, at_max_rate=True, technology=d.technology,
                  disaggregation=d.serving.disaggregation, speculation=d.serving.speculation)
        row = {k: float(getattr(s, k)) for k in ("max_request_rate_per_s", "output_tokens_per_s", "ttft_p99_s",
                                                 "tpot_p99_s", "requests_in_flight", "max_sustainable_rate_per_s")}
        row["meets_slo"] = bool(s.meets_slo)
        if s.economics is not None:
            row["usd_per_million_tokens"] = float(s.economics.usd_per_million_tokens)
        out[key] = row
    return out


def mix_elasticities(r, k=None):
    """Elasticities of a mix's objective (one metric) at its sized designs: each
    workload's (`sensitivity`), weighted by its part of the objective, ``softmax(log
    share + w s log metric)`` (exact for leaves every design shares, e.g. the hardware;
    the `k` largest)."""


    (metric, w, sense), = r.objective_spec
    logs = np.log(np.asarray(r.shares)) + w * sense * np.log([m[metric] for m in r.workload_metrics])
    weights = np.exp(logs - logs.max())
    total = {}
    for weight, design in zip(weights / weights.sum(), r.designs, strict=True):
        for p, e in sensitivity(design, metrics=(metric,), breakdown=False).of(metric).items():
            total[p] = total.get(p, 0.0) + float(weight) * e
    order = sorted(total, key=lambda p: -abs(total[p]))[:k]
    return {p: total[p] for p in order if abs(total[p]) > 1e-6}


_SHOWN = ("serving_request_rate_per_s", "serving_ttft_p99_s", "serving_tpot_p99_s", "serving_utilization",
          "serving_prefill_chip_area_mm2", "serving_prefill_peak_power_w",
          "serving_usd_per_million_tokens", "tpot_s", "ttft_s", "usd_per_million_tokens", "energy_per_token_j", "kgco2e_per_million_tokens",
          "tokens_per_s_per_watt", "output_tokens_per_s", "chip_area_mm2", "peak_power_w", "chip_cost_usd",
          "chips", "batch", "memory_margin")


def _size_dict(r, design, top):
    h = r.history
    best = int(min(range(h["objective"].shape[0]), key=lambda s: float(h["objective"][s, -1])))
    return {
        "hardware": design.hardware.name,
        "model": design.model.name,
        "objective": {
            "terms": [{"metric": n, "weight": w, "sense": "min" if s > 0 else "max"} for n, w, s in r.objective_spec],
            "baseline": r.objective_baseline, "relaxed": r.objective_relaxed, "chosen": r.objective,
        },
        "feasible": r.feasible,
        "violations": list(r.violations),
        "variables": [
            {"name": v.name, "paths": list(v.paths), "lower": v.lower, "upper": v.upper, "integer": v.integer,
             "scale": v.scale, "baseline": r.baseline[v.name], "relaxed": r.relaxed[v.name],
             "chosen": r.chosen[v.name]}
            for v in r.variables
        ],
        "constraints": [{"constraint": k, "margin": m, "met": m >= 0} for k, m in r.margins.items()],
        "baseline_metrics": r.baseline_metrics,
        "metrics": r.metrics,
        "sensitivities": top,
        "evaluations": r.evaluations,
        "candidates": r.candidates,
        "seconds": r.seconds,
        "history": {"objective": [float(x) for x in h["objective"][best]],
                    "violation": [float(x) for x in h["violation"][best]]},
    }


def _size_table(d):
    o = d["objective"]
    name = " x ".join(t["metric"] for t in o["terms"])
    lines = [f"diffhw size: {d['model']} from {d['hardware']}, {o['terms'][0]['sense']}imise {name}",
             (f"  {'feasible' if d['feasible'] else 'INFEASIBLE'}; {d['evaluations']:,} smooth evaluations "
              f"(with gradients), {d['candidates']} integer candidates re-checked exactly, {d['seconds']:.1f} s"), ""]
    w = max(len(v["name"]) for v in d["variables"])
    lines.append(f"  {'variable':<{w}}  {'baseline':>12}  {'relaxed':>12}  {'chosen':>12}")
    for v in d["variables"]:
        lines.append(f"  {v['name']:<{w}}  {fmt_number(v['baseline']):>12}  {fmt_number(v['relaxed']):>12}  {fmt_number(v['chosen']):>12}")
    lines += ["", f"  {'metric':<28}  {'baseline':>12}  {'sized':>12}"]
    lines.append(f"  {'objective':<28}  {fmt_number(o['baseline']):>12}  {fmt_number(o['chosen']):>12}")
    for i, w in enumerate(d.get("workloads") or [d]):
        if "workloads" in d:
            lines.append(f"  workload @{i}: {w['model']} (share {w['share']:.3g})")
        for k in _SHOWN:
            if k in w["metrics"]:
                lines.append(f"  {k:<28}  {fmt_number(w['baseline_metrics'][k]):>12}  {fmt_number(w['metrics'][k]):>12}")
    if "serving" in d:
        sv = d["serving"]
        lines += ["", f"  exact check, diffhw serve at the largest rate meeting TTFT p99 <= {sv['ttft_p99_limit_s']:g} s "
                      f"and TPOT p99 <= {sv['tpot_p99_limit_s'] * 1e3:g} ms"
                      + (f", speculative decoding ({sv['speculative']['draft_model']}, k="
                         f"{sv['speculative']['draft_tokens']:g}, acceptance {sv['speculative']['acceptance']:g})"
                         if sv.get("speculative") else "") + ":"]
        for key in ("baseline", "chosen"):
            x = sv[key]
            usd = f", ${fmt_number(x['usd_per_million_tokens'])}/Mtoken" if "usd_per_million_tokens" in x else ""
            lines.append(f"    {key:<9} {fmt_number(x['max_request_rate_per_s'])} req/s "
                         f"({fmt_number(x['output_tokens_per_s'])} output tokens/s){usd}")
    lines += ["", "  constraints (margin >= 0 is met; relative for positive metrics):"]
    for c in d["constraints"]:
        lines.append(f"    {c['constraint']:<32} margin {c['margin']:+.4f}  {'ok' if c['met'] else 'VIOLATED'}")
    for v in d["violations"]:
        lines.append(f"    {v}")
    if d["sensitivities"]:
        what = "the objective (share-weighted over the workloads)" if "workloads" in d else o["terms"][0]["metric"]
        lines += ["", f"  top elasticities of {what} at the sized design (d log m / d log p):"]
        for p, e in d["sensitivities"].items():
            lines.append(f"    {p:<48} {e:+.3f}")
    return "\n".join(lines)


def _plot_trace(r, path):
    h = r.history
    fig, (a1, a2) = figure(2, 1, figsize=(7, 6), sharex=True)
    for s in range(h["objective"].shape[0]):
        a1.plot(h["objective"][s], lw=1)
        a2.plot(np.maximum(h["violation"][s], 1e-6), lw=1)
    a1.axhline(r.objective, color="k", ls="--", lw=0.8, label="chosen integer design (exact)")
    a1.set_yscale("log")
    a1.set_ylabel(" x ".join(n for n, _, _ in r.objective_spec))
    a1.legend(fontsize=8)
    a2.set_yscale("log")
    a2.set_ylabel("largest constraint violation")
    a2.set_xlabel("Adam step (all starts, under vmap)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


COMMANDS = {"size": (_add_size, _run_size)}
