"""`diffhw evaluate` and `diffhw max-throughput`: one design's metrics, as a table or JSON."""

import math

import equinox as eqx

from .._errors import InputError, check_positive
from .._evaluation._evaluate import evaluate, max_throughput
from .._evaluation._report import metrics_dict
from ._serve import max_rate_under_scenario
from ._common import DEFAULT_BATCH, design_from_args, dumps_json, fit_error, fmt_seconds, technology_from_args


def _add_evaluate(sub, common):
    ev = sub.add_parser("evaluate", help="latency, throughput and memory of one design")
    common(ev)
    ev.add_argument("--batch", type=float, default=None, help=f"concurrent requests (default: {DEFAULT_BATCH}, lowered to what fits)")


def _add_max_throughput(sub, common):
    mt = sub.add_parser("max-throughput", help="the batch that maximises tokens/s under memory and latency limits")
    common(mt)
    mt.add_argument("--tpot-slo-ms", type=float, default=None, help="limit on time per output token, ms")
    mt.add_argument("--ttft-slo-ms", type=float, default=None, help="limit on time to first token, ms")
    mt.add_argument("--scenario", choices=("offline", "server", "interactive"), default="offline",
                    help="offline (default): the best static batch; server, interactive: the largest request "
                         "rate a continuous-batching engine serves under MLPerf's p99 limits (server TTFT 2 s, "
                         "TPOT 200 ms; interactive 450 ms, 40 ms; --ttft-slo-ms / --tpot-slo-ms replace them), "
                         "as diffhw serve computes it")


def _cmd_evaluate(args):
    batch_given = args.batch is not None
    batch = args.batch if batch_given else DEFAULT_BATCH
    hw, model, wl, par = design_from_args(args, batch)
    tech = technology_from_args(args)
    m = evaluate(hw, model, wl, par, technology=tech)
    notes = []
    if not bool(m.fits):
        if float(m.max_batch) < 1:  # the weights alone do not fit: the chips are the problem, not the batch
            raise fit_error(hw, model, m, par)
        if batch_given:
            raise InputError(
                "--batch", args.batch,
                f"at most {int(m.max_batch)} (the largest batch whose KV cache fits on "
                f"{int(round(float(par.chips)))} x {hw.name})",
            )
        notes.append(f"batch lowered from {DEFAULT_BATCH} to {int(m.max_batch)}, the largest that fits")
        hw, model, wl, par = design_from_args(args, float(m.max_batch))
        m = evaluate(hw, model, wl, par, technology=tech)
    d = metrics_dict(m, hw, model, wl, par)
    d["notes"] = notes
    _emit(args, d, "evaluate")


def _cmd_max_throughput(args):
    tpot = check_positive("--tpot-slo-ms", args.tpot_slo_ms) / 1e3 if args.tpot_slo_ms is not None else math.inf
    ttft = check_positive("--ttft-slo-ms", args.ttft_slo_ms) / 1e3 if args.ttft_slo_ms is not None else math.inf
    if args.scenario != "offline":
        return max_rate_under_scenario(args, ttft, tpot)
    hw, model, wl, par = design_from_args(args, 1.0)
    r = max_throughput(hw, model, wl, par, tpot_limit_s=tpot, ttft_limit_s=ttft, technology=technology_from_args(args))
    if float(r.metrics.max_batch) < 1:
        raise fit_error(hw, model, r.metrics, par)

    wl_b = eqx.tree_at(lambda w: w.batch, wl, max(float(r.batch), 1.0))
    d = metrics_dict(r.metrics, hw, model, wl_b, par)
    d["batch"] = int(float(r.batch))
    d["batch_continuous"] = float(r.batch_continuous)
    d["feasible"] = bool(r.feasible)
    d["tpot_slo_s"] = None if math.isinf(tpot) else tpot
    d["ttft_slo_s"] = None if math.isinf(ttft) else ttft
    d["scenario"] = "offline"
    d["notes"] = [] if bool(r.feasible) else ["no batch meets the limits: metrics shown at batch 1"]
    _emit(args, d, "max-throughput")


def _emit(args, d, command):
    d["trends"] = list(args.trend or [])
    if args.json:
        print(dumps_json(d))
        return
    print(_table(d, command))


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
            f"KV {d['kv_precision']}" + (f"; trends {', '.join(d['trends'])}" if d.get("trends") else "")
        ),
        "",
    ]
    rows = [
        ("time per output token (TPOT)", fmt_seconds(d["tpot_s"])),
        ("time to first token (TTFT)", fmt_seconds(d["ttft_s"])),
        ("end-to-end latency", fmt_seconds(d["e2e_latency_s"])),
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
    if "thermal_margin_w" in d:
        rows.append(("near-memory FLOP/s (thermal cap) / margin",
                     f"{d['near_memory_flop_per_s'] / 1e12:,.1f} TFLOP/s / {d['thermal_margin_w']:,.0f} W"))
    w = max(len(r[0]) for r in rows)
    lines += [f"  {k:<{w}}  {v}" for k, v in rows]
    lines.append("")
    lines.append("  decode step breakdown:  " + ", ".join(
        f"{k} {fmt_seconds(v)}" for k, v in d["step_time_breakdown_s"].items()))
    lines.append("  prefill breakdown:      " + ", ".join(
        f"{k} {fmt_seconds(v)}" for k, v in d["prefill_time_breakdown_s"].items()))
    if len(d.get("tiers", [])) > 1:
        lines.append("  memory tiers:           " + "; ".join(
            f"{t['name']} {t['occupancy_bytes'] / 1e9:,.0f}/{t['capacity_bytes'] / 1e9:,.0f} GB, "
            f"lifetime {_years(t['lifetime_s'])}" for t in d["tiers"]))
    for n in d.get("notes", []):
        lines.append(f"  note: {n}")
    return "\n".join(lines)


COMMANDS = {"evaluate": (_add_evaluate, _cmd_evaluate), "max-throughput": (_add_max_throughput, _cmd_max_throughput)}
