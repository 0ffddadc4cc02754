"""`diffhw serve`: a serving system under load (continuous batching, SLO percentiles,
speculative decoding, prefix caching, disaggregated Prefill and Decode)."""

import math

from .._errors import InputError, check_positive
from .._evaluation._report import ECONOMICS_KEYS
from .._serving._serve import serve
from .._serving._traffic import traffic
from ._common import (
    SCENARIO_HELP,
    SCENARIOS,
    add_speculation_flags,
    design_from_args,
    dumps_json,
    fmt_number,
    fmt_seconds,
    prefill_pool_of_args,
    refuse_what_serving_ignores,
    speculation_of_args,
    technology_from_args,
)



def _add_serve(sub, common):
    sv = sub.add_parser("serve", help="a serving system under load: TTFT/TPOT percentiles, max request rate")
    common(sv)
    sv.add_argument("--request-rate", type=float, default=None,
                    help="requests per second (whole system); without it, the largest rate meeting the limits")
    sv.add_argument("--ttft-p99-ms", type=float, default=None, help="limit on p99 time to first token, ms")
    sv.add_argument("--tpot-p99-ms", type=float, default=None, help="limit on p99 time per output token, ms")
    sv.add_argument("--scenario", choices=sorted(SCENARIOS), default=None,
                    help="p99 latency limits: " + SCENARIO_HELP)
    sv.add_argument("--prefix-hit", type=float, default=0.0, help="fraction of each prompt in the prefix cache, [0, 1)")
    sv.add_argument("--input-cv", type=float, default=0.0, help="coefficient of variation of prompt lengths (default 0)")
    sv.add_argument("--output-cv", type=float, default=0.0,
                    help="coefficient of variation of output lengths (default 0: all at the mean); widens TPOT "
                         "percentiles and lengthens the contexts in flight")
    sv.add_argument("--max-sequences", type=float, default=None,
                    help="engine cap on decoding sequences per replica (vLLM max_num_seqs; default: memory decides)")
    add_speculation_flags(sv)
    sv.add_argument("--prefill-hardware", default=None, help="disaggregated: Prefill pool hardware (default: --hardware)")
    sv.add_argument("--prefill-chips", type=float, default=None, help="disaggregated: Prefill pool chips (one replica)")
    sv.add_argument("--decode-hardware", default=None, help="disaggregated: Decode pool hardware (default: --hardware)")
    sv.add_argument("--decode-chips", type=float, default=None, help="disaggregated: Decode pool chips (default: --chips)")
    sv.add_argument("--transfer-gbps", type=float, default=None,
                    help="disaggregated: KV transfer bandwidth, GB/s (default: 50 GB/s per Prefill chip)")


def _limits(args):
    ttft = tpot = math.inf
    if args.scenario is not None:
        ttft, tpot = SCENARIOS[args.scenario]
    if args.ttft_p99_ms is not None:
        ttft = check_positive("--ttft-p99-ms", args.ttft_p99_ms) / 1e3
    if args.tpot_p99_ms is not None:
        tpot = check_positive("--tpot-p99-ms", args.tpot_p99_ms) / 1e3
    return ttft, tpot


def _check_args(args):
    if args.prefix_hit is not None and not 0.0 <= args.prefix_hit < 1.0:
        raise InputError("--prefix-hit", args.prefix_hit, "in [0, 1) (a fraction of each prompt)")
    if args.input_cv is not None and not (math.isfinite(args.input_cv) and 0.0 <= args.input_cv <= 100.0):
        raise InputError("--input-cv", args.input_cv, "between 0 and 100")
    if not (math.isfinite(args.output_cv) and 0.0 <= args.output_cv <= 100.0):
        raise InputError("--output-cv", args.output_cv, "between 0 and 100")
    if args.output_tokens < 2:
        raise InputError("--output-tokens", args.output_tokens, ">= 2 (the first token comes from Prefill; "
                                                                  "serving needs a Decode phase)")
    if args.request_rate is not None and not (math.isfinite(args.request_rate) and 0 < args.request_rate <= 1e7):
        raise InputError("--request-rate", args.request_rate, "between 0 (exclusive) and 1e7 requests/s")
    if args.max_sequences is not None and not (math.isfinite(args.max_sequences) and args.max_sequences >= 1):
        raise InputError("--max-sequences", args.max_sequences, ">= 1 and finite")
    if args.transfer_gbps is not None and not (math.isfinite(args.transfer_gbps) and args.transfer_gbps > 0):
        raise InputError("--transfer-gbps", args.transfer_gbps, "> 0 and finite")
    for flag in ("prefill_chips", "decode_chips"):
        v = getattr(args, flag)
        if v is not None and not (math.isfinite(v) and v >= 1 and v == int(v) and v <= 1e6):
            raise InputError("--" + flag.replace("_", "-"), v, "a whole number between 1 and 1e6")


def _cmd_serve(args):
    _check_args(args)
    ttft_limit, tpot_limit = _limits(args)
    if args.request_rate is None and math.isinf(ttft_limit) and math.isinf(tpot_limit):
        raise InputError("--request-rate", None, "a rate in requests/s, or latency limits "
                         "(--ttft-p99-ms / --tpot-p99-ms / --scenario) to find the largest rate under")
    disagg = any(x is not None for x in (args.prefill_hardware, args.prefill_chips, args.decode_hardware,
                                         args.decode_chips))
    if args.decode_hardware is not None:
        args.hardware = args.decode_hardware
    if args.decode_chips is not None:
        args.chips, args.tp = args.decode_chips, None
    hw, model, wl, par = design_from_args(args, 1.0)
    refuse_what_serving_ignores(args, wl)
    tech = technology_from_args(args)
    tr = traffic(args.request_rate if args.request_rate is not None else 1.0, float(wl.input_tokens),
                 float(wl.output_tokens), args.precision, args.kv_precision, args.weight_precision,
                 input_cv=args.input_cv, prefix_hit=args.prefix_hit,
                 shared_context_tokens=float(wl.shared_context_tokens),
                 max_sequences=args.max_sequences if args.max_sequences is not None else math.inf,
                 routing_skew=args.routing_skew, output_cv=args.output_cv)
    spec = speculation_of_args(args)
    dis = None
    pool = None
    if disagg:
        bw = args.transfer_gbps * 1e9 if args.transfer_gbps is not None else None
        dis = prefill_pool_of_args(args, hw, model, par, bw)
        pchips = int(round(float(dis.prefill_parallelism.tp)))
        pool = {"hardware": dis.prefill_hardware.name, "chips": pchips, "tp": pchips}
    r = serve(hw, model, tr, par, ttft_limit_s=ttft_limit, tpot_limit_s=tpot_limit,
              at_max_rate=args.request_rate is None, speculation=spec, disaggregation=dis, technology=tech)
    if not float(r.kv_capacity_sequences) >= 1:
        raise InputError("--chips", int(round(float(par.chips))),
                         f"enough chips to hold {model.name} and some KV cache on {hw.name}",
                         "try more chips (--chips/--tp/--pp) or a narrower --precision")
    d = _serving_dict(r, hw, model, par, tr, args, ttft_limit, tpot_limit, spec, pool)
    if args.json:
        print(dumps_json(d))
        return
    print(_table(d))


def max_rate_under_scenario(args, ttft_limit, tpot_limit):
    """`diffhw max-throughput --scenario server|interactive`: `serve` at the largest rate
    meeting the scenario's p99 limits (explicit limits replace the scenario's); the serve
    JSON dictionary plus max-throughput's `scenario`, `feasible`, `batch` (requests in
    flight, rounded), `tpot_s` / `ttft_s` (means) and `tpot_slo_s` / `ttft_slo_s`."""
    s_ttft, s_tpot = SCENARIOS[args.scenario]
    ttft_limit = s_ttft if math.isinf(ttft_limit) else ttft_limit
    tpot_limit = s_tpot if math.isinf(tpot_limit) else tpot_limit
    if args.output_tokens < 2:
        raise InputError("--output-tokens", args.output_tokens, ">= 2 (the first token comes from Prefill; "
                                                                  "serving needs a Decode phase)")
    hw, model, wl, par = design_from_args(args, 1.0)
    refuse_what_serving_ignores(args, wl)
    tr = traffic(1.0, float(wl.input_tokens), float(wl.output_tokens), args.precision, args.kv_precision,
                 args.weight_precision, shared_context_tokens=float(wl.shared_context_tokens),
                 routing_skew=args.routing_skew)
    r = serve(hw, model, tr, par, ttft_limit_s=ttft_limit, tpot_limit_s=tpot_limit, at_max_rate=True,
              technology=technology_from_args(args))
    if not float(r.kv_capacity_sequences) >= 1:
        raise InputError("--chips", int(round(float(par.chips))),
                         f"enough chips to hold {model.name} and some KV cache on {hw.name}",
                         "try more chips (--chips/--tp/--pp) or a narrower --precision")
    args.draft_model, args.request_rate = None, None
    d = _serving_dict(r, hw, model, par, tr, args, ttft_limit, tpot_limit, None, None)
    d.update(scenario=args.scenario, feasible=d["meets_slo"], batch=int(round(d["requests_in_flight"])),
             tpot_s=d["tpot_mean_s"], ttft_s=d["ttft_mean_s"], tpot_slo_s=tpot_limit, ttft_slo_s=ttft_limit)
    if args.json:
        print(dumps_json(d))
        return
    print(_table(d).replace("diffhw serve:", f"diffhw max-throughput --scenario {args.scenario}:", 1))


def _serving_dict(r, hw, model, par, tr, args, ttft_limit, tpot_limit, spec, pool):
    def f(x):
        return float(x)

    d = {
        "hardware": hw.name, "model": model.name, "profile": hw.profile.name,
        "chips": int(round(f(r.chips))), "tp": int(round(f(par.tp))), "pp": int(round(f(par.pp))),
        "dp": int(round(f(par.dp))), "ep": int(round(f(par.ep))),
        "input_tokens": f(tr.input_tokens), "output_tokens": f(tr.output_tokens),
        "weight_precision": tr.weight_precision.name, "activation_precision": tr.activation_precision.name,
        "kv_precision": tr.kv_precision.name, "prefix_hit": f(tr.prefix_hit), "input_cv": f(tr.input_cv),
        "output_cv": f(tr.output_cv),
        "shared_context_tokens": f(tr.shared_context_tokens), "routing_skew": f(tr.routing_skew),
        "max_batched_tokens": f(hw.profile.max_batched_tokens),
    }
    for k in ("request_rate_per_s", "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_mean_s",
              "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "e2e_mean_s", "output_tokens_per_s", "requests_per_s",
              "requests_in_flight", "decode_sequences", "step_time_s", "tokens_per_step",
              "prefill_tokens_per_step", "kv_cache_occupancy", "kv_capacity_sequences", "utilization", "prefill_utilization",
              "decode_utilization", "max_sustainable_rate_per_s"):
        d[k] = f(getattr(r, k))
    d["stable"] = bool(r.stable)
    d["meets_slo"] = bool(r.meets_slo)
    limited = not (math.isinf(ttft_limit) and math.isinf(tpot_limit))
    d["ttft_p99_limit_s"] = None if math.isinf(ttft_limit) else ttft_limit
    d["tpot_p99_limit_s"] = None if math.isinf(tpot_limit) else tpot_limit
    if limited:
        d["max_request_rate_per_s"] = f(r.max_request_rate_per_s)
    d["step_time_breakdown_s"] = {"compute": f(r.decode.compute_s), "memory": f(r.decode.memory_s),
                                  "communication": f(r.decode.communication_s),
                                  "overhead": f(r.decode.overhead_s), "total": f(r.decode.total_s)}
    d["speculative"] = None if spec is None else {
        "draft_model": args.draft_model if args.draft_model is not None else "mtp",
        "draft_tokens": f(spec.draft_tokens), "acceptance": f(spec.acceptance)}
    d["disaggregated"] = None if pool is None else {
        **pool, "decode_chips": int(round(f(par.chips))), "transfer_s": f(r.transfer_s),
        "balanced_prefill_chips": f(r.balanced_prefill_chips)}
    if r.economics is not None:
        d.update({k: f(getattr(r.economics, k)) for k in ECONOMICS_KEYS})
    notes = []
    if not d["stable"]:
        notes.append(f"overloaded: the rate exceeds the {d['max_sustainable_rate_per_s']:.3g} requests/s this "
                     "system sustains; queues grow without bound (latencies infinite, throughput at capacity)")
    elif limited and not d["meets_slo"]:
        notes.append("the latency limits are not met at this rate")
    if limited and args.request_rate is None and d["max_request_rate_per_s"] <= 0:
        notes.append("no rate meets the limits: even a lone request misses them")
    d["notes"] = notes
    return d


def _table(d):
    lines = [
        f"diffhw serve: {d['model']} on {d['chips']} x {d['hardware']} (tp={d['tp']} pp={d['pp']} dp={d['dp']} "
        f"ep={d['ep']}, profile {d['profile']})",
        f"  {d['input_tokens']:g} in / {d['output_tokens']:g} out tokens, prefix hit {d['prefix_hit']:g}, "
        f"token budget {d['max_batched_tokens']:g} per step",
        "",
    ]
    rows = [("request rate", f"{fmt_number(d['request_rate_per_s'])} req/s "
                             f"(sustainable up to {fmt_number(d['max_sustainable_rate_per_s'])})")]
    if "max_request_rate_per_s" in d:
        lim = []
        if d["ttft_p99_limit_s"] is not None:
            lim.append(f"TTFT p99 <= {fmt_seconds(d['ttft_p99_limit_s'])}")
        if d["tpot_p99_limit_s"] is not None:
            lim.append(f"TPOT p99 <= {fmt_seconds(d['tpot_p99_limit_s'])}")
        rows.append(("max rate meeting " + ", ".join(lim), f"{fmt_number(d['max_request_rate_per_s'])} req/s"))
    rows += [
        ("TTFT mean / p50 / p90 / p99", " / ".join(fmt_seconds(d[f"ttft_{q}_s"]) for q in ("mean", "p50", "p90", "p99"))),
        ("TPOT mean / p50 / p90 / p99", " / ".join(fmt_seconds(d[f"tpot_{q}_s"]) for q in ("mean", "p50", "p90", "p99"))),
        ("output tokens/s (system)", f"{d['output_tokens_per_s']:,.0f}"),
        ("requests in flight", f"{d['requests_in_flight']:,.1f}"),
        ("decoding sequences per replica", f"{d['decode_sequences']:,.1f}"),
        ("KV cache occupancy", f"{100 * d['kv_cache_occupancy']:.1f}%"),
        ("utilization (rate / sustainable)", f"{100 * d['utilization']:.1f}%"),
        ("prefill lane / decode utilization", f"{100 * d['prefill_utilization']:.1f}% / "
                                              f"{100 * d['decode_utilization']:.1f}%"),
        ("meets limits", "yes" if d["meets_slo"] else "NO"),
    ]
    if d["speculative"]:
        s = d["speculative"]
        rows.append(("speculative decoding", f"{s['draft_model']}, k={s['draft_tokens']:g}, acceptance "
                                             f"{s['acceptance']:g}: {d['tokens_per_step']:.2f} tokens/step"))
    if d["disaggregated"]:
        g = d["disaggregated"]
        rows.append(("disaggregated", f"prefill {g['chips']} x {g['hardware']}, decode {g['decode_chips']} chips; "
                                      f"KV transfer {fmt_seconds(g['transfer_s'])}; balanced prefill chips "
                                      f"{g['balanced_prefill_chips']:.1f}"))
    if "usd_per_million_tokens" in d:
        rows += [
            ("$ per million output tokens", f"${fmt_number(d['usd_per_million_tokens'])}"),
            ("energy per output token", f"{fmt_number(d['energy_per_token_j'])} J"),
            ("system power (IT)", f"{d['system_average_power_w']:,.0f} W"),
            ("kgCO2e per million output tokens", fmt_number(d["kgco2e_per_million_tokens"])),
        ]
    w = max(len(r[0]) for r in rows)
    lines += [f"  {k:<{w}}  {v}" for k, v in rows]
    for n in d["notes"]:
        lines.append(f"  note: {n}")
    return "\n".join(lines)


COMMANDS = {"serve": (_add_serve, _cmd_serve)}
