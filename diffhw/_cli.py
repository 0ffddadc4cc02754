"""The `diffhw` command line. Its names and JSON keys are a public contract."""

import argparse
import json
import math
import sys

from ._errors import InputError, check_positive

DEFAULT_HARDWARE = "h100-sxm"
DEFAULT_MODEL = "llama-3.1-70b"
DEFAULT_BATCH = 64
DEFAULT_INPUT = 2048
DEFAULT_OUTPUT = 256


def _common(p):
    p.add_argument("--hardware", default=DEFAULT_HARDWARE, help="preset name or TOML file (default: %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="preset name or HF config.json (default: %(default)s)")
    p.add_argument("--profile", default=None, help="calibration profile name or TOML file (default: the hardware's, 'default')")
    p.add_argument("--chips", type=float, default=None, help="chips in the system (default: tp*pp*dp, else the hardware's scale-up unit)")
    p.add_argument("--tp", type=float, default=None, help="tensor-parallel degree (default: chips / (pp*dp))")
    p.add_argument("--pp", type=float, default=None, help="pipeline-parallel degree (default: 1)")
    p.add_argument("--dp", type=float, default=None, help="data-parallel replicas (default: 1)")
    p.add_argument("--ep", type=float, default=None, help="expert-parallel degree (default: 1)")
    p.add_argument("--input-tokens", type=float, default=DEFAULT_INPUT, help="prompt tokens per request (default: %(default)s)")
    p.add_argument("--output-tokens", type=float, default=DEFAULT_OUTPUT, help="generated tokens per request (default: %(default)s)")
    p.add_argument("--precision", default="bf16", help="weights and activations: fp32, bf16, fp16, fp8, int8, fp4, int4, or bits (default: %(default)s)")
    p.add_argument("--weight-precision", default=None, help="weights only (e.g. int4 for W4A16); default: --precision")
    p.add_argument("--kv-precision", default=None, help="KV cache (default: --precision)")
    p.add_argument("--shared-context-tokens", type=float, default=0.0,
                   help="read-only context every request attends to, stored once (a shared prompt, a RAG corpus)")
    p.add_argument("--electricity-usd-per-kwh", type=float, default=None, help="electricity price (default: 0.08, US industrial)")
    p.add_argument("--pue", type=float, default=None, help="datacenter power usage effectiveness, >= 1 (default: 1.10)")
    p.add_argument("--grid-gco2e-per-kwh", type=float, default=None, help="grid carbon intensity (default: 369, US 2023)")
    p.add_argument("--lifetime-years", type=float, default=None, help="hardware lifetime for amortisation (default: 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _parser():
    ap = argparse.ArgumentParser(prog="diffhw", description="Differentiable cost model of LLM inference hardware.")
    sub = ap.add_subparsers(dest="command")
    ev = sub.add_parser("evaluate", help="latency, throughput and memory of one design")
    _common(ev)
    ev.add_argument("--batch", type=float, default=None, help=f"concurrent requests (default: {DEFAULT_BATCH}, lowered to what fits)")
    mt = sub.add_parser("max-throughput", help="the batch that maximises tokens/s under memory and latency limits")
    _common(mt)
    mt.add_argument("--tpot-slo-ms", type=float, default=None, help="limit on time per output token, ms")
    mt.add_argument("--ttft-slo-ms", type=float, default=None, help="limit on time to first token, ms")
    pr = sub.add_parser("presets", help="list hardware, model and profile presets")
    pr.add_argument("kind", nargs="?", choices=["hardware", "models", "profiles"], default=None)
    pr.add_argument("--json", action="store_true")
    for add, _ in _extensions().values():
        add(sub, _common)
    return ap


#: Modules that add subcommands; each has ``COMMANDS = {name: (add_parser, run)}`` where
#: ``add_parser(subparsers, common)`` registers the command (``common`` adds the shared
#: design flags) and ``run(args)`` runs it.
_EXTENSION_MODULES = ("_cli_size", "_cli_sweep", "_cli_calibrate")


def _extensions():
    import importlib

    out = {}
    for name in _EXTENSION_MODULES:
        out.update(importlib.import_module(f"diffhw.{name}").COMMANDS)
    return out


def _positive_int(field, value):
    v = check_positive(field, value)
    if v != int(v):
        raise InputError(field, value, "a whole number")
    return int(v)


def _technology(args):
    from . import presets
    from ._hardware._technology import KWH_J, YEAR_S

    over = {}
    if args.electricity_usd_per_kwh is not None:
        over["electricity_usd_per_j"] = check_positive(
            "--electricity-usd-per-kwh", args.electricity_usd_per_kwh, allow_zero=True) / KWH_J
    if args.pue is not None:
        if check_positive("--pue", args.pue) < 1.0:
            raise InputError("--pue", args.pue, ">= 1 (facility power over IT power)")
        over["pue"] = float(args.pue)
    if args.grid_gco2e_per_kwh is not None:
        over["grid_kgco2e_per_j"] = check_positive(
            "--grid-gco2e-per-kwh", args.grid_gco2e_per_kwh, allow_zero=True) / 1e3 / KWH_J
    if args.lifetime_years is not None:
        over["lifetime_s"] = check_positive("--lifetime-years", args.lifetime_years) * YEAR_S
    return presets.technology_for(args.hardware, over)


def _design(args, batch):
    from . import presets
    from ._workload._workload import parallelism, validate_parallelism, workload

    hw = presets.hardware(args.hardware, profile=args.profile)
    model = presets.model(args.model)
    pp = _positive_int("--pp", args.pp) if args.pp is not None else 1
    dp = _positive_int("--dp", args.dp) if args.dp is not None else 1
    ep = _positive_int("--ep", args.ep) if args.ep is not None else 1
    if args.tp is not None:
        tp = _positive_int("--tp", args.tp)
        if args.chips is not None and _positive_int("--chips", args.chips) != tp * pp * dp:
            raise InputError("--chips", args.chips, f"tp*pp*dp = {tp}*{pp}*{dp} = {tp * pp * dp}")
    else:
        chips = _positive_int("--chips", args.chips) if args.chips is not None else hw.default_chips
        if chips % (pp * dp):
            raise InputError("--chips", chips, f"a multiple of pp*dp = {pp * dp}")
        tp = chips // (pp * dp)
    par = parallelism(tp=tp, pp=pp, dp=dp, ep=ep)
    validate_parallelism(model, par)
    wl = workload(
        batch=batch,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        precision_=args.precision,
        kv_precision=args.kv_precision,
        weight_precision=args.weight_precision,
        shared_context_tokens=args.shared_context_tokens,
    )
    return hw, model, wl, par


def _fit_error(hw, model, m, par):
    need = float(m.weight_bytes) / 1e9
    usable = float(m.memory_usable_bytes) / 1e9
    return InputError(
        "--chips", int(round(float(par.chips))),
        f"enough chips to hold {model.name}: its weights need {need:.1f} GB per chip but "
        f"{hw.name} offers {usable:.1f} GB usable",
        "try more chips (--chips/--tp/--pp) or a narrower --precision",
    )


def _cmd_evaluate(args):
    from ._evaluation._evaluate import evaluate
    from ._evaluation._report import metrics_dict

    batch_given = args.batch is not None
    batch = args.batch if batch_given else DEFAULT_BATCH
    hw, model, wl, par = _design(args, batch)
    tech = _technology(args)
    m = evaluate(hw, model, wl, par, technology=tech)
    notes = []
    if not bool(m.fits):
        if batch_given:
            raise InputError(
                "--batch", args.batch,
                f"at most {int(m.max_batch)} (the largest batch whose KV cache fits on "
                f"{int(round(float(par.chips)))} x {hw.name})"
                if float(m.max_batch) >= 1 else "a batch that fits, but the weights alone do not fit",
            )
        if float(m.max_batch) < 1:
            raise _fit_error(hw, model, m, par)
        notes.append(f"batch lowered from {DEFAULT_BATCH} to {int(m.max_batch)}, the largest that fits")
        hw, model, wl, par = _design(args, float(m.max_batch))
        m = evaluate(hw, model, wl, par, technology=tech)
    d = metrics_dict(m, hw, model, wl, par)
    d["notes"] = notes
    _emit(args, d, "evaluate")


def _cmd_max_throughput(args):
    from ._evaluation._evaluate import max_throughput
    from ._evaluation._report import metrics_dict

    hw, model, wl, par = _design(args, 1.0)
    tpot = check_positive("--tpot-slo-ms", args.tpot_slo_ms) / 1e3 if args.tpot_slo_ms is not None else math.inf
    ttft = check_positive("--ttft-slo-ms", args.ttft_slo_ms) / 1e3 if args.ttft_slo_ms is not None else math.inf
    r = max_throughput(hw, model, wl, par, tpot_limit_s=tpot, ttft_limit_s=ttft, technology=_technology(args))
    if float(r.metrics.max_batch) < 1:
        raise _fit_error(hw, model, r.metrics, par)
    import equinox as eqx

    wl_b = eqx.tree_at(lambda w: w.batch, wl, max(float(r.batch), 1.0))
    d = metrics_dict(r.metrics, hw, model, wl_b, par)
    d["batch"] = int(float(r.batch))
    d["batch_continuous"] = float(r.batch_continuous)
    d["feasible"] = bool(r.feasible)
    d["tpot_slo_s"] = None if math.isinf(tpot) else tpot
    d["ttft_slo_s"] = None if math.isinf(ttft) else ttft
    d["notes"] = [] if bool(r.feasible) else ["no batch meets the limits: metrics shown at batch 1"]
    _emit(args, d, "max-throughput")


def _cmd_presets(args):
    from . import presets

    out = {}
    if args.kind in (None, "hardware"):
        out["hardware"] = {n: presets.hardware_description(n) for n in presets.list_hardware()}
    if args.kind in (None, "models"):
        out["models"] = {n: presets.model_description(n) for n in presets.list_models()}
    if args.kind in (None, "profiles"):
        out["profiles"] = {n: presets.profile_description(n) for n in presets.list_profiles()}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for kind, items in out.items():
        print(f"{kind}:")
        width = max(len(n) for n in items)
        for n, desc in items.items():
            print(f"  {n:<{width}}  {desc}")


def _emit(args, d, command):
    if args.json:
        print(json.dumps(d, indent=2))
        return
    print(_table(d, command))


def _fmt_s(x):
    if x < 1e-3:
        return f"{x * 1e6:.1f} us"
    if x < 1:
        return f"{x * 1e3:.2f} ms"
    return f"{x:.3f} s"


def _years(seconds):
    y = seconds / (365.25 * 24 * 3600)
    return "unlimited" if y > 1e6 else f"{y:,.1f} years"


def _table(d, command):
    gb = 1e9
    lines = [
        (
            f"diffhw {command}: {d['model']} on {d['chips']} x {d['hardware']} "
            f"(tp={d['tp']} pp={d['pp']} dp={d['dp']} ep={d['ep']}, profile {d['profile']})"
        ),
        (
            f"  batch {d['batch']:g}, {d['input_tokens']:g} in / {d['output_tokens']:g} out tokens, "
            f"weights {d['weight_precision']}, activations {d['activation_precision']}, "
            f"KV {d['kv_precision']}"
        ),
        "",
    ]
    rows = [
        ("time per output token (TPOT)", _fmt_s(d["tpot_s"])),
        ("time to first token (TTFT)", _fmt_s(d["ttft_s"])),
        ("end-to-end latency", _fmt_s(d["e2e_latency_s"])),
        ("output tokens/s (system, incl. prefill)", f"{d['output_tokens_per_s']:,.0f}"),
        ("decode tokens/s (system)", f"{d['decode_tokens_per_s']:,.0f}"),
        ("tokens/s per user", f"{d['per_user_tokens_per_s']:,.1f}"),
        ("memory per chip: required / usable", f"{d['memory_required_bytes'] / gb:,.1f} / {d['memory_usable_bytes'] / gb:,.1f} GB"),
        ("  weights / KV cache / activations", " / ".join(f"{v / gb:,.1f}" for v in d["memory_breakdown_bytes"].values()) + " GB"),
        ("fits", "yes" if d["fits"] else "NO"),
        ("largest batch that fits", f"{d['max_batch']:,}"),
        ("decode step bound by", d["bound"]),
    ]
    if command == "max-throughput":
        rows.insert(0, ("best batch", f"{d['batch']} (continuous optimum {d['batch_continuous']:.1f})"))
    if "energy_per_token_j" in d:
        rows += [
            ("energy per output token", f"{d['energy_per_token_j']:.3f} J"),
            ("power per chip: average / peak (model)", f"{d['average_power_w']:,.0f} / {d['peak_power_w']:,.0f} W"),
            ("chip area (logic) / dies", f"{d['chip_area_mm2']:,.0f} mm2 / {d['chiplets']:.2f}"),
            ("chip cost (manufacturing)", f"${d['chip_cost_usd']:,.0f}"),
            ("system capex / TCO per year", f"${d['system_capex_usd']:,.0f} / ${d['tco_usd_per_year']:,.0f}"),
            ("$ per million output tokens", f"${d['usd_per_million_tokens']:.3f}"),
            ("kgCO2e per million output tokens", f"{d['kgco2e_per_million_tokens']:.4f}"),
            ("embodied kgCO2e / operational per year", f"{d['embodied_kgco2e']:,.0f} / {d['operational_kgco2e_per_year']:,.0f}"),
            ("tokens/s per facility W / per $ of TCO/yr", f"{d['tokens_per_s_per_watt']:.3f} / {d['tokens_per_s_per_usd']:.2e}"),
        ]
    w = max(len(r[0]) for r in rows)
    lines += [f"  {k:<{w}}  {v}" for k, v in rows]
    lines.append("")
    lines.append("  decode step breakdown:  " + ", ".join(
        f"{k} {_fmt_s(v)}" for k, v in d["step_time_breakdown_s"].items()))
    lines.append("  prefill breakdown:      " + ", ".join(
        f"{k} {_fmt_s(v)}" for k, v in d["prefill_time_breakdown_s"].items()))
    if len(d.get("tiers", [])) > 1:
        lines.append("  memory tiers:           " + "; ".join(
            f"{t['name']} {t['occupancy_bytes'] / 1e9:,.0f}/{t['capacity_bytes'] / 1e9:,.0f} GB, "
            f"lifetime {_years(t['lifetime_s'])}" for t in d["tiers"]))
    for n in d.get("notes", []):
        lines.append(f"  note: {n}")
    return "\n".join(lines)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    try:
        commands = {"evaluate": _cmd_evaluate, "max-throughput": _cmd_max_throughput, "presets": _cmd_presets}
        commands.update({name: run for name, (_, run) in _extensions().items()})
        commands[args.command](args)
    except InputError as e:
        print(f"diffhw: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
