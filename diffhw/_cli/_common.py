"""What every command shares: the design flags (hardware, model, parallelism, lengths,
precisions, economics), their defaults, and turning them into checked pytrees."""

import json
import math
import os

from .. import presets
from .._errors import InputError, check_positive
from .._evaluation._design import Design
from .._serving._goal import serving_goal
from .._serving._traffic import disaggregated, speculative
from .._hardware._collectives import ScaleOut
from .._hardware._technology import KWH_J, YEAR_S
from .._io._hardware import DEFAULT_SCALE_OUT_LATENCY_US
from .._workload._trends import TRENDS
from .._workload._trends import apply as apply_trends
from .._workload._trends import parse as parse_trend
from .._workload._workload import parallelism, validate_parallelism, workload

DEFAULT_HARDWARE = "h100-sxm"
DEFAULT_MODEL = "llama-3.1-70b"
DEFAULT_BATCH = 64
DEFAULT_INPUT = 2048
DEFAULT_OUTPUT = 256


def add_design_flags(p):
    p.add_argument("--hardware", default=DEFAULT_HARDWARE, help="preset name or TOML file (default: %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="preset name or HF config.json (default: %(default)s)")
    p.add_argument("--profile", default=None, help="calibration profile name or TOML file (default: the hardware's, 'default')")
    p.add_argument("--chips", type=float, default=None, help="chips in the system (default: tp*pp*dp, else the hardware's scale-up unit)")
    p.add_argument("--tp", type=float, default=None, help="tensor-parallel degree (default: chips / (pp*dp))")
    p.add_argument("--pp", type=float, default=None, help="pipeline-parallel degree (default: 1)")
    p.add_argument("--dp", type=float, default=None, help="data-parallel replicas (default: 1)")
    p.add_argument("--ep", type=float, default=None, help="expert-parallel degree (default: 1); attention data parallel "
                   "with wide expert parallel is --tp 1 --dp N --ep N (each rank its own sequences and KV, experts "
                   "over all N)")
    p.add_argument("--scale-up-chips", type=float, default=None,
                   help="chips per scale-up domain of a multi-node system (an NVLink node or rack); traffic between "
                        "domains uses the scale-out network (default: the hardware's [scale_out], e.g. 8 on "
                        "h100-sxm, 72 on gb200; without one, all chips in one domain)")
    p.add_argument("--nic-gb-s", type=float, default=None,
                   help="scale-out bandwidth per chip between domains, GB/s one direction (default: the hardware's, "
                        "e.g. 50 = 400 Gb/s ConnectX-7)")
    p.add_argument("--scale-out-latency-us", type=float, default=None,
                   help="latency of one message between domains, us (default: the hardware's, else 2)")
    p.add_argument("--input-tokens", type=float, default=DEFAULT_INPUT, help="prompt tokens per request (default: %(default)s)")
    p.add_argument("--output-tokens", type=float, default=DEFAULT_OUTPUT, help="generated tokens per request (default: %(default)s)")
    p.add_argument("--precision", default="bf16", help="weights and activations: fp32, bf16, fp16, fp8, int8, fp4, int4, mxfp4, nvfp4, or bits; a "
                   "weight-only format (q4_0, q4_k, nf4, awq, gptq, fp8_weight_only) sets the weights and 16-bit "
                   "activations (default: %(default)s)")
    p.add_argument("--weight-precision", default=None, help="weights only (e.g. awq, gptq, nf4, q4_0 for W4A16: bits with their scales and the "
                   "dequantising kernel's cost); default: --precision")
    p.add_argument("--kv-precision", default=None, help="KV cache (default: --precision)")
    p.add_argument("--shared-context-tokens", type=float, default=0.0,
                   help="read-only context every request attends to, stored once (a shared prompt, a RAG corpus)")
    p.add_argument("--routing-skew", type=float, default=0.0,
                   help="MoE routing skew: coefficient of variation of the tokens each expert receives "
                        "(default 0, uniform routing)")
    p.add_argument("--beam-width", type=float, default=1.0,
                   help="beam search: sequences each request decodes, sharing its prompt's KV; throughput "
                        "counts one returned sequence per request (default 1: no beam search; MLPerf GPT-J: 4)")
    p.add_argument("--trend", action="append", default=None, metavar="NAME[:KEY=VALUE,...]",
                   help="apply one of the paper's six trends to the workload (repeatable, in order): "
                        + ", ".join(TRENDS) + "; e.g. rag:shared_tokens=1e6 (diffhw.trends)")
    p.add_argument("--electricity-usd-per-kwh", type=float, default=None, help="electricity price (default: 0.08, US industrial)")
    p.add_argument("--pue", type=float, default=None, help="datacenter power usage effectiveness, >= 1 (default: 1.10)")
    p.add_argument("--grid-gco2e-per-kwh", type=float, default=None, help="grid carbon intensity (default: 369, US 2023)")
    p.add_argument("--lifetime-years", type=float, default=None, help="hardware lifetime for amortisation (default: 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


#: File types matplotlib writes (`FigureCanvasBase.get_supported_filetypes()` of its
#: Agg, PDF, PS, SVG and PGF backends), for checking a plot path before any work.
PLOT_TYPES = ("eps", "jpeg", "jpg", "pdf", "pgf", "png", "ps", "raw", "rgba", "svg", "svgz", "tif", "tiff", "webp")

#: Output-path options (any command that has them) -> whether the file is a plot.
OUTPUT_FLAGS = {"plot": True, "csv": False, "out": False}


def check_output_paths(args):
    """Refuse an output file that cannot be written (its folder missing or read-only,
    the path a folder, a plot type matplotlib does not write) before any work starts."""
    for key, is_plot in OUTPUT_FLAGS.items():
        path = getattr(args, key, None)
        if not path:
            continue
        flag, folder = f"--{key}", os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise InputError(flag, path, "a file name, not a folder")
        if not os.path.isdir(folder):
            raise InputError(flag, path, f"a file in an existing folder ({folder} does not exist)")
        if not os.access(folder, os.W_OK):
            raise InputError(flag, path, f"a file in a folder you can write to ({folder} is not writable)")
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if is_plot and ext not in PLOT_TYPES:
            raise InputError(flag, path, "a file ending in one of ." + ", .".join(PLOT_TYPES))


#: Numeric options of any command -> (lowest, highest, whole, unit). Values outside are
#: refused before any work, with the range stated: they lie far outside what any real
#: deployment has (the largest served batches are ~1e4 requests, the longest contexts
#: ~1e7 tokens, the largest systems ~1e5 chips), so a value beyond the range is a typo
#: or a probe, and inside the model it would only produce overflow or NaN.
NUMERIC_FLAGS = {
    "batch": (1, 1e7, True, "requests"),
    "input_tokens": (1, 1e8, True, "tokens"),
    "output_tokens": (1, 1e8, True, "tokens"),
    "shared_context_tokens": (0, 1e8, True, "tokens"),
    "routing_skew": (0, 10, False, ""),
    # beam search: widths in use are 2-10 (MLPerf GPT-J: 4); 1,024 leaves headroom
    "beam_width": (1, 1024, True, "beams"),
    "chips": (1, 1e6, True, "chips"),
    "tp": (1, 1e6, True, ""), "pp": (1, 1e6, True, ""), "dp": (1, 1e6, True, ""), "ep": (1, 1e6, True, ""),
    # multi-node: shipped domains of 8 (HGX) and 72 (NVL72) chips, NICs of 50-100 GB/s (400-800 Gb/s), ~2 us
    "scale_up_chips": (1, 1e6, True, "chips"), "nic_gb_s": (1e-3, 1e6, False, "GB/s"),
    "scale_out_latency_us": (0, 1e6, False, "us"),
    # electricity: US industrial ~0.08 $/kWh, the dearest retail ~0.6 $/kWh
    "electricity_usd_per_kwh": (0, 10, False, "USD/kWh"),
    # PUE: 1.0 is the ideal; the worst surveyed datacenters are ~2.5 (Uptime Institute survey)
    "pue": (1, 5, False, ""),
    # grid carbon: 0 (hydro, nuclear) to ~1,100 g/kWh (coal); 3,000 leaves headroom
    "grid_gco2e_per_kwh": (0, 3000, False, "gCO2e/kWh"),
    "lifetime_years": (0.1, 50, False, "years"),
    "tpot_slo_ms": (0, 1e7, False, "ms"), "ttft_slo_ms": (0, 1e7, False, "ms"),
    "area_budget_mm2": (0, 1e6, False, "mm2"), "power_budget_w": (0, 1e7, False, "W"),
    "starts": (1, 4096, True, ""), "steps": (1, 1e6, True, ""), "outer": (1, 1000, True, ""),
    "top": (1, 1e6, True, ""), "samples": (1, 1e8, True, "designs"), "chunk": (1, 1e6, True, "designs"),
    "max_points": (1, 1e9, True, "designs"), "learning_rate": (1e-9, 10, False, ""),
    "huber_delta": (0, 1e3, False, ""),
    "seed": (0, 2**32 - 1, True, ""),
    # serve: the busiest public services take ~1e5 requests/s across all their fleets
    "request_rate": (0, 1e7, False, "requests/s"), "min_request_rate": (0, 1e7, False, "requests/s"), "ttft_p99_ms": (0, 1e7, False, "ms"),
    "tpot_p99_ms": (0, 1e7, False, "ms"), "serving_ttft_p99_ms": (0, 1e7, False, "ms"),
    "serving_tpot_p99_ms": (0, 1e7, False, "ms"), "prefix_hit": (0, 1, False, ""), "input_cv": (0, 100, False, ""),
    "output_cv": (0, 100, False, ""),
    "max_sequences": (1, 1e7, True, "sequences"), "draft_tokens": (0, 64, False, "tokens"),
    "acceptance": (0, 1, False, ""), "prefill_chips": (1, 1e6, True, "chips"),
    "decode_chips": (1, 1e6, True, "chips"), "transfer_gbps": (0, 1e6, False, "GB/s"),  # numpy.random.default_rng takes non-negative seeds
}


#: The largest magnitude a --vary bound may have: far beyond any physical quantity in SI
#: units (1e30 B/s, 1e30 FLOP/s), and far inside float32's 3.4e38.
MAX_MAGNITUDE = 1e30


def check_numbers(args, prefix="--", flags=None):
    """Refuse a numeric option that is not finite, outside its range (`NUMERIC_FLAGS`)
    or, for a count, not whole; before any work. Options a command lacks, or left unset,
    are skipped."""
    for key, (lo, hi, whole, unit) in NUMERIC_FLAGS.items():
        if flags is not None and key not in flags:
            continue
        v = getattr(args, key, None)
        if v is None:
            continue
        flag = prefix + key.replace("_", "-")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(flag, v, "a number")
        if not math.isfinite(v):
            raise InputError(flag, v, "a finite number")
        if whole and 0 < v <= hi and v != int(v):
            raise InputError(flag, v, "a whole number (fractional, relaxed counts are for the Python API "
                                      "and the optimiser, not the command line)")
        if not lo <= v <= hi:
            u = f" {unit}" if unit else ""
            raise InputError(flag, v, f"between {lo:g} and {hi:g}{u}")


def positive_int(field, value):
    v = check_positive(field, value)
    if v != int(v):
        raise InputError(field, value, "a whole number")
    return int(v)


def technology_from_args(args):
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


def design_from_args(args, batch, ep_follows_tp=False):
    """The checked pytrees the flags describe. Without `--ep`, ep is 1, or with
    `ep_follows_tp` (`size`, whose chips variable moves tp and ep together) tp for an
    expert model whose experts split that way."""
    hw = with_scale_out(args, presets.hardware(args.hardware, profile=args.profile))
    model = presets.model(args.model)
    pp = positive_int("--pp", args.pp) if args.pp is not None else 1
    dp = positive_int("--dp", args.dp) if args.dp is not None else 1
    if args.tp is not None:
        tp = positive_int("--tp", args.tp)
        if args.chips is not None and positive_int("--chips", args.chips) != tp * pp * dp:
            raise InputError("--chips", args.chips, f"tp*pp*dp = {tp}*{pp}*{dp} = {tp * pp * dp}")
    else:
        chips = positive_int("--chips", args.chips) if args.chips is not None else hw.default_chips
        if chips % (pp * dp):
            raise InputError("--chips", chips, f"a multiple of pp*dp = {pp * dp}")
        tp = chips // (pp * dp)
    if args.ep is not None:
        ep = positive_int("--ep", args.ep)
    else:
        ep = tp if ep_follows_tp and model.n_experts and model.n_experts % tp == 0 else 1
    par = parallelism(tp=tp, pp=pp, dp=dp, ep=ep)
    validate_parallelism(model, par)
    specs = []
    for t in getattr(args, "trend", None) or []:
        try:
            specs.append(parse_trend(t))
        except InputError as e:
            raise InputError("--trend", t, e.allowed) from None
    if not specs:
        check_context(model, args.input_tokens, args.output_tokens, args.shared_context_tokens)
    wl = workload(
        batch=batch,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        precision_=args.precision,
        kv_precision=args.kv_precision,
        weight_precision=args.weight_precision,
        shared_context_tokens=args.shared_context_tokens,
        routing_skew=args.routing_skew,
        beam_width=getattr(args, "beam_width", 1.0),
    )
    if specs:
        model, wl, par = apply_trends(model, wl, specs, par)
        validate_parallelism(model, par)
        total = float(wl.input_tokens) + float(wl.output_tokens) + float(wl.shared_context_tokens)
        if model.max_context and total > model.max_context:
            raise InputError("--trend", " ".join(args.trend),
                             f"a request within {model.name}'s context window of {model.max_context:,} tokens; "
                             f"with the trends it is {total:,.0f} (prompt + output + shared context)")
    return hw, model, wl, par


def with_scale_out(args, hw):
    """`hw` with the multi-node flags (--scale-up-chips, --nic-gb-s, --scale-out-latency-us)
    applied to its `ScaleOut` (one is made where the hardware has none: --nic-gb-s then
    required)."""
    s, nic, lat = (getattr(args, k, None) for k in ("scale_up_chips", "nic_gb_s", "scale_out_latency_us"))
    if s is None and nic is None and lat is None:
        return hw
    so = hw.scale_out
    if so is None and nic is None:
        raise InputError("--nic-gb-s", None, f"a scale-out bandwidth per chip in GB/s (e.g. 50 for 400 Gb/s): "
                         f"{hw.name} has no scale-out network of its own")
    domain = positive_int("--scale-up-chips", s) if s is not None else (
        so.domain_chips if so is not None else hw.default_chips)
    bw = check_positive("--nic-gb-s", nic) * 1e9 if nic is not None else so.bandwidth_bytes_per_s
    latency = check_positive("--scale-out-latency-us", lat, allow_zero=True) * 1e-6 if lat is not None else (
        so.latency_s if so is not None else DEFAULT_SCALE_OUT_LATENCY_US * 1e-6)
    return hw.replace(scale_out=ScaleOut(float(domain), bw, latency))


def refuse_what_serving_ignores(args, wl):
    """Serving under load (`serve`, `--serving`) models autoregressive Decode of text
    prompts by one sequence per request: refuse the diffusion and multimodal-encoder
    trends and beam search, which it would ignore."""
    if float(wl.decode_block_tokens) != 1.0 or float(wl.denoising_steps) != 1.0 or wl.encoder_params is not None:
        raise InputError("--trend", " ".join(args.trend or []),
                         "moe, reasoning, long_context or rag with serving (diffusion and a multimodal encoder "
                         "are modelled by evaluate, size and sweep without --serving)")
    if float(wl.beam_width) != 1.0:
        raise InputError("--beam-width", getattr(args, "beam_width", float(wl.beam_width)),
                         "1 with serving (beam search is modelled by evaluate, max-throughput, size and sweep "
                         "without --serving)")


def check_context(model, input_tokens, output_tokens, shared_context_tokens=0.0):
    """Refuse a sequence longer than the model's context window (its config's
    ``max_position_embeddings``): the model cannot attend that far."""
    total = float(input_tokens) + float(output_tokens) + float(shared_context_tokens or 0.0)
    if model.max_context and total > model.max_context:
        shared = " + --shared-context-tokens" if shared_context_tokens else ""
        raise InputError("--input-tokens", input_tokens,
                         f"--input-tokens + --output-tokens{shared} at most {model.name}'s context window of "
                         f"{model.max_context:,} tokens (max_position_embeddings); asked {total:,.0f}",
                         "set --input-tokens and --output-tokens to fit it")


def fit_error(hw, model, m, par):
    need = float(m.weight_bytes) / 1e9
    usable = float(m.memory_usable_bytes) / 1e9
    return InputError(
        "--chips", int(round(float(par.chips))),
        f"enough chips to hold {model.name}: its weights need {need:.1f} GB per chip but "
        f"{hw.name} offers {usable:.1f} GB usable",
        "try more chips (--chips/--tp/--pp) or a narrower --precision",
    )


#: Latency limits of MLPerf Inference's LLM scenarios (p99 TTFT, p99 TPOT; seconds), for
#: Llama-2-70B (MLPerf Inference v4.1+ rules, "llama2-70b" Server: TTFT 2 s, TPOT 200 ms;
#: "llama2-70b-interactive": TTFT 450 ms, TPOT 40 ms).
#: "long-context" (the main job's): TTFT 6 s, MLPerf's limit for its long-context LLM
#: (Llama-3.1-405B Server, MLPerf Inference v5.0, prompts of ~10K tokens), with TPOT 50 ms
#: (20 tokens/s per user, the main job's TPOT budget since its first release).
SCENARIOS = {"server": (2.0, 0.2), "interactive": (0.45, 0.04), "long-context": (6.0, 0.05)}

SCENARIO_HELP = "server: TTFT 2 s, TPOT 200 ms; interactive: 450 ms, 40 ms; long-context: 6 s, 50 ms"


def add_serving_flags(p, default=None, off=False):
    """`--serving` and its limits: the design's metrics gain the ``serving_*`` metrics
    (`diffhw.ServingGoal`), usable as objectives and constraints. `off`: also accept
    ``--serving off`` (when `default` is a scenario)."""
    p.add_argument("--serving", choices=sorted(SCENARIOS) + (["off"] if off else []), default=default,
                   help="add serving_* metrics of a continuous-batching engine under p99 limits ("
                        + SCENARIO_HELP + ")" + (f"; default {default}, 'off' for none" if default else ""))
    p.add_argument("--serving-ttft-p99-ms", type=float, default=None, help="replace the scenario's p99 TTFT limit, ms")
    p.add_argument("--serving-tpot-p99-ms", type=float, default=None, help="replace the scenario's p99 TPOT limit, ms")
    p.add_argument("--input-cv", type=float, default=None,
                   help="with --serving: coefficient of variation of prompt lengths (default 0)")
    p.add_argument("--output-cv", type=float, default=None,
                   help="with --serving: coefficient of variation of output lengths (default 0: every request at "
                        "the mean; 1: about exponential)")
    p.add_argument("--prefill-hardware", default=None,
                   help="with --serving: disaggregated, a Prefill pool of this hardware (default: --hardware); "
                        "size varies it with prefill_compute, prefill_memory_bandwidth, ..., prefill_replicas")
    p.add_argument("--prefill-chips", type=float, default=None,
                   help="with --serving: disaggregated, Prefill pool chips, one tensor-parallel replica "
                        "(default: the Decode pool's)")
    add_speculation_flags(p, "with --serving: ")


def add_speculation_flags(p, prefix=""):
    """Speculative decoding: a draft model or multi-token-prediction heads."""
    p.add_argument("--draft-model", default=None, help=prefix + "speculative decoding: draft model preset or config.json")
    p.add_argument("--draft-tokens", type=float, default=None, help=prefix + "tokens drafted per verification step (default 4)")
    p.add_argument("--acceptance", type=float, default=None,
                   help=prefix + "per-token acceptance rate of drafts, [0, 1] (default 0.7)")
    p.add_argument("--mtp", action="store_true", help=prefix + "speculative decoding with multi-token-prediction heads")


def speculation_of_args(args):
    """The `Speculation` of ``--draft-model M`` or ``--mtp`` (with ``--draft-tokens``,
    ``--acceptance``), checked; None without either."""
    if args.acceptance is not None and not 0.0 <= args.acceptance <= 1.0:
        raise InputError("--acceptance", args.acceptance, "in [0, 1]")
    if args.draft_tokens is not None and not (math.isfinite(args.draft_tokens) and 0 <= args.draft_tokens <= 64):
        raise InputError("--draft-tokens", args.draft_tokens, "between 0 and 64")
    if args.draft_model is not None and args.mtp:
        raise InputError("--mtp", True, "either --draft-model or --mtp, not both")
    if args.draft_model is None and not args.mtp:
        if args.draft_tokens is not None or args.acceptance is not None:
            flag, value = ("--draft-tokens", args.draft_tokens) if args.draft_tokens is not None else (
                "--acceptance", args.acceptance)
            raise InputError(flag, value, "used with --draft-model M or --mtp")
        return None
    draft = presets.model(args.draft_model) if args.draft_model is not None else None
    if draft is not None:
        check_context(draft, args.input_tokens, args.output_tokens, getattr(args, "shared_context_tokens", 0.0))
    return speculative(args.draft_tokens if args.draft_tokens is not None else 4,
                       args.acceptance if args.acceptance is not None else 0.7, draft)


def serving_of_args(args, load="max_rate", hw=None, model=None, par=None):
    """The `ServingGoal` of `--serving` (None without it), at `load` (`ServingGoal`);
    disaggregated with `--prefill-hardware` / `--prefill-chips` (`hw`, `model`, `par`:
    the Decode pool)."""
    if getattr(args, "serving", None) in (None, "off"):
        for flag in ("serving_ttft_p99_ms", "serving_tpot_p99_ms", "input_cv", "output_cv", "prefill_hardware",
                     "prefill_chips", "draft_model", "draft_tokens", "acceptance", "mtp"):
            if getattr(args, flag, None) not in (None, False):
                raise InputError("--" + flag.replace("_", "-"), getattr(args, flag),
                                 "used with --serving " + "|".join(sorted(SCENARIOS)))
        return None
    ttft, tpot = SCENARIOS[args.serving]
    if args.serving_ttft_p99_ms is not None:
        ttft = check_positive("--serving-ttft-p99-ms", args.serving_ttft_p99_ms) / 1e3
    if args.serving_tpot_p99_ms is not None:
        tpot = check_positive("--serving-tpot-p99-ms", args.serving_tpot_p99_ms) / 1e3
    if args.output_tokens < 2:
        raise InputError("--output-tokens", args.output_tokens, ">= 2 with --serving (serving needs a Decode phase)")
    dis = None
    if getattr(args, "prefill_hardware", None) is not None or getattr(args, "prefill_chips", None) is not None:
        dis = prefill_pool_of_args(args, hw, model, par)
    cvs = {k: getattr(args, k) for k in ("input_cv", "output_cv") if getattr(args, k, None) is not None}
    return serving_goal(ttft, tpot, load=load, disaggregation=dis, speculation=speculation_of_args(args), **cvs)


def prefill_pool_of_args(args, hw, model, par, transfer_bytes_per_s=None):
    """The `Disaggregation` of `--prefill-hardware` (default `--hardware`) and
    `--prefill-chips` (one tensor-parallel replica; default the Decode pool's chips),
    beside the Decode pool `hw`, `model`, `par`."""
    ph = presets.hardware(args.prefill_hardware or args.hardware, profile=args.profile)
    pchips = positive_int("--prefill-chips", args.prefill_chips) if args.prefill_chips is not None \
        else int(round(float(par.chips)))
    ppar = parallelism(tp=pchips)
    try:
        validate_parallelism(model, ppar)
    except InputError as e:
        raise InputError("--prefill-chips", pchips, f"a Prefill tensor-parallel degree the model takes ({e})") from None
    return disaggregated(ph, ppar, transfer_bytes_per_s, decode_hardware=hw)


def design_of_args(args, batch, ep_follows_tp=False, serving_load="max_rate"):
    """The `Design` the flags describe, with its technology (economics) and, with
    `--serving`, its serving goal (at `serving_load`)."""
    hw, model, wl, par = design_from_args(args, batch, ep_follows_tp)
    goal = serving_of_args(args, serving_load, hw, model, par)
    if goal is not None:
        refuse_what_serving_ignores(args, wl)
    return Design(hw, model, wl, par, technology_from_args(args), goal)


def fmt_seconds(x):
    """Seconds in the unit that reads best (us, ms, s); ``inf`` as is."""
    if not math.isfinite(x):
        return "inf"
    if x < 1e-3:
        return f"{x * 1e6:.1f} us"
    if x < 1:
        return f"{x * 1e3:.2f} ms"
    return f"{x:.3f} s"


def fmt_number(x):
    """A number for a table: 4 significant digits, scientific when very large or small."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:,.4g}"


def _finite_only(x, path, reasons):
    if isinstance(x, dict):
        return {k: _finite_only(v, f"{path}.{k}" if path else str(k), reasons) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_only(v, f"{path}[{i}]", reasons) for i, v in enumerate(x)]
    if isinstance(x, float) and not math.isfinite(x):
        reasons[path] = f"not a finite number ({x})"
        return None
    return x


def dumps_json(d) -> str:
    """`d` as strict JSON (RFC 8259 has no NaN or Infinity): a non-finite number becomes
    null, and ``null_reasons`` maps its path (``"metrics.tpot_s"``) to why."""
    reasons = {}
    clean = _finite_only(d, "", reasons)
    if reasons and isinstance(clean, dict):
        clean["null_reasons"] = reasons
    return json.dumps(clean, indent=2, allow_nan=False)
