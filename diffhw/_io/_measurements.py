"""Measurements (CSV) -> `Measurement`s: one measured number and the design it was
measured on per row, checked row by row; and back (`write_points`)."""

import csv
import dataclasses
import math
from pathlib import Path

from .._errors import InputError
from .._workload._precision import precision
from .._workload._workload import parallelism, validate_parallelism
from ._hardware import load_hardware
from ._models import load_model

#: Metrics a point may carry: CSV name -> (canonical name, factor to SI). The static ones
#: but ``max_output_tokens_per_s`` are fields of `diffhw.Metrics` at the point's batch and
#: are fitted; ``max_output_tokens_per_s`` is `diffhw.max_throughput` (the best batch under
#: the point's latency limits, as MLPerf Offline reports) and is only predicted. Serving
#: under load (`diffhw.serve`, Poisson arrivals to a continuous-batching engine; the batch
#: column is ignored) is fitted too: ``max_request_rate_per_s`` is the largest request rate
#: (whole system) whose p99 TTFT and TPOT meet the point's limits (MLPerf Server's
#: samples/s); ``serve_tpot_mean_s``, ``serve_tpot_p99_s``, ``serve_ttft_mean_s``,
#: ``serve_ttft_p99_s`` are the latencies at the point's ``request_rate``.
METRICS = {
    "tpot_s": ("tpot_s", 1.0),
    "tpot_ms": ("tpot_s", 1e-3),
    "ttft_s": ("ttft_s", 1.0),
    "ttft_ms": ("ttft_s", 1e-3),
    "e2e_latency_s": ("e2e_latency_s", 1.0),
    "e2e_latency_ms": ("e2e_latency_s", 1e-3),
    "output_tokens_per_s": ("output_tokens_per_s", 1.0),
    "decode_tokens_per_s": ("decode_tokens_per_s", 1.0),
    "max_output_tokens_per_s": ("max_output_tokens_per_s", 1.0),
    "max_request_rate_per_s": ("max_request_rate_per_s", 1.0),
    "serve_tpot_mean_s": ("serve_tpot_mean_s", 1.0),
    "serve_tpot_mean_ms": ("serve_tpot_mean_s", 1e-3),
    "serve_tpot_p99_s": ("serve_tpot_p99_s", 1.0),
    "serve_tpot_p99_ms": ("serve_tpot_p99_s", 1e-3),
    "serve_ttft_mean_s": ("serve_ttft_mean_s", 1.0),
    "serve_ttft_mean_ms": ("serve_ttft_mean_s", 1e-3),
    "serve_ttft_p99_s": ("serve_ttft_p99_s", 1.0),
    "serve_ttft_p99_ms": ("serve_ttft_p99_s", 1e-3),
}
#: Canonical serving metrics (`diffhw.serve`); the at-rate ones need ``request_rate``.
SERVE_METRICS = ("max_request_rate_per_s", "serve_tpot_mean_s", "serve_tpot_p99_s", "serve_ttft_mean_s",
                 "serve_ttft_p99_s")
#: The measurement CSV: one measured number per row. Required columns first.
CSV_COLUMNS = {
    "hardware": "hardware preset name (`diffhw presets hardware`) or a hardware TOML file",
    "model": "model preset name (`diffhw presets models`) or a Hugging Face config.json",
    "metric": "one of " + ", ".join(METRICS) + " (the unit is in the name)",
    "value": "the measured number, > 0, in the metric's unit",
    "batch": "concurrent requests (> 0; ignored by max_output_tokens_per_s and the serving metrics)",
    "input_tokens": "prompt tokens per request (> 0)",
    "output_tokens": "generated tokens per request (>= 1)",
    # optional
    "id": "a name for the point (default: row<N>)",
    "tp": "tensor-parallel degree, a whole number >= 1 (default 1)",
    "pp": "pipeline-parallel degree (default 1)",
    "dp": "data-parallel replicas (default 1)",
    "ep": "expert-parallel degree (default 1)",
    "precision": "weights and activations: bf16, fp16, fp8, int8, int4, nf4, q4_0, ... (default bf16)",
    "weight_precision": "weights only (default: precision)",
    "activation_precision": "activations only (default: precision)",
    "kv_precision": "KV cache (default: the activation precision)",
    "tpot_limit_ms": "max_output_tokens_per_s and max_request_rate_per_s only: limit on (p99) TPOT, ms "
                     "(default none)",
    "ttft_limit_ms": "max_output_tokens_per_s and max_request_rate_per_s only: limit on (p99) TTFT, ms "
                     "(default none)",
    "request_rate": "serve_tpot/ttft metrics only (required there): Poisson request rate of the whole "
                    "system the latencies were measured at, requests/s",
    "input_cv": "serving metrics only: coefficient of variation of prompt lengths (default 0)",
    "output_cv": "serving metrics only: coefficient of variation of output lengths (default 0)",
    "group": "a label for reports (default empty)",
    "stack": "the serving software stack that measured the point, e.g. tensorrt-llm, vllm, llama.cpp "
             "(default empty; `cross_validate(..., within=\"stack\")` folds within each stack)",
    "source": "where the number comes from (kept, not read)",
}
REQUIRED_COLUMNS = ("hardware", "model", "metric", "value", "batch", "input_tokens", "output_tokens")
#: Largest value of a numeric column: far past any measured serving run, so only a typo
#: or a unit slip is refused (the model would give inf/NaN or take minutes on it).
MAXIMA = {
    "batch": 1e7,  # concurrent requests; the largest published runs batch a few thousand
    "input_tokens": 1e8,  # per request; the longest contexts are 1e6-1e7 tokens
    "output_tokens": 1e8,
    "tp": 1e6, "pp": 1e6, "dp": 1e6, "ep": 1e6,  # chips: a million-chip cluster
    "request_rate": 1e7,  # requests/s (as `diffhw serve --request-rate`: the busiest services take ~1e5)
    "input_cv": 100.0, "output_cv": 100.0,  # as `diffhw.traffic`
}


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One measured number and the design it was measured on.

    `hardware` and `model` are preset names or file paths; `metric` is a canonical name
    (`METRICS` values: ``tpot_s``, ``ttft_s``, ``e2e_latency_s``,
    ``output_tokens_per_s``, ``decode_tokens_per_s``, ``max_output_tokens_per_s``, and the
    serving metrics `SERVE_METRICS`) and `value` is in SI units (seconds, tokens/s,
    requests/s). `beam_width`: beam search's beams per request (`diffhw.Workload`; MLPerf
    GPT-J runs 4). Serving points: `request_rate` (requests/s, whole system; the at-rate
    metrics), `input_cv`, `output_cv` (`diffhw.traffic`); the limits bound p99 latencies.
    """

    hardware: str
    model: str
    metric: str
    value: float
    batch: float = 1.0
    input_tokens: float = 128.0
    output_tokens: float = 128.0
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    weight_precision: str = "bf16"
    activation_precision: str = "bf16"
    kv_precision: str | None = None
    tpot_limit_s: float = math.inf
    ttft_limit_s: float = math.inf
    id: str = ""
    group: str = ""
    source: str = ""
    stack: str = ""
    beam_width: float = 1.0
    request_rate: float = 0.0
    input_cv: float = 0.0
    output_cv: float = 0.0


def _cell(row, key):
    v = row.get(key)
    return "" if v is None else str(v).strip()


def _number(where, key, text, *, minimum=0.0, strict=True, whole=False):
    """A checked number cell: finite, above `minimum` (or at it, unless `strict`), at most
    its `MAXIMA` entry and, if `whole`, a whole number."""
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{where}, column {key}", text, "a number") from None
    top = MAXIMA.get(key, math.inf)
    ok = math.isfinite(v) and (v > minimum if strict else v >= minimum) and v <= top
    if whole:
        ok = ok and v == int(v)
    if not ok:
        what = "a whole number" if whole else "a finite number"
        rng = f" and <= {top:g}" if math.isfinite(top) else ""
        raise InputError(f"{where}, column {key}", text, f"{what} {'>' if strict else '>='} {minimum:g}{rng}")
    return v


def load_points(path) -> list[Measurement]:
    """Read a measurement CSV (columns: `CSV_COLUMNS`; extra columns are ignored).

    Every row is checked: hardware and model must load, numbers must be finite and
    positive, the metric known, precisions parseable and parallel degrees valid for the
    model. A bad row raises `InputError` naming the file, the row (1 = first data row)
    and its line, the column, the value and what is allowed.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except OSError as e:
        raise InputError("data file", str(path), f"a readable CSV file ({e.strerror or e})") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise InputError("data file", str(path), f"a UTF-8 CSV text file ({e})") from None
    if not header:
        raise InputError("data file", str(path), "a CSV file with a header row naming its columns (it is empty)")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{path}: column", missing[0],
                         "present (required columns: " + ", ".join(REQUIRED_COLUMNS) + ")")
    if not rows:
        raise InputError(f"{path}: rows", 0, "at least one data row")
    hw_ok, model_cache = {}, {}
    points = []
    for i, (line, row) in enumerate(rows, start=1):
        where = f"{path}, row {i} (line {line})"
        if None in row:  # more cells than header fields
            raise InputError(f"{where}", row[None], f"at most {len(header)} cells (the header's)")
        get = lambda k, row=row: _cell(row, k)
        for key in REQUIRED_COLUMNS:
            if get(key) == "":
                raise InputError(f"{where}, column {key}", "", CSV_COLUMNS[key])
        hw_name, model_name = get("hardware"), get("model")
        if hw_name not in hw_ok:
            try:
                load_hardware(hw_name)
            except InputError as e:
                raise InputError(f"{where}, column hardware", hw_name, e.allowed, _hint(e)) from None
            hw_ok[hw_name] = True
        if model_name not in model_cache:
            try:
                model_cache[model_name] = load_model(model_name)
            except InputError as e:
                raise InputError(f"{where}, column model", model_name, e.allowed, _hint(e)) from None
        metric_text = get("metric")
        if metric_text not in METRICS:
            raise InputError(f"{where}, column metric", metric_text, CSV_COLUMNS["metric"])
        metric, factor = METRICS[metric_text]
        value = _number(where, "value", get("value")) * factor
        batch = _number(where, "batch", get("batch"))
        isl = _number(where, "input_tokens", get("input_tokens"))
        osl = _number(where, "output_tokens", get("output_tokens"), minimum=1.0, strict=False)
        degrees = {}
        for k in ("tp", "pp", "dp", "ep"):
            degrees[k] = int(_number(where, k, get(k), minimum=1.0, strict=False, whole=True)) if get(k) else 1
        prec = {}
        base = get("precision") or "bf16"
        for k, default in (("weight_precision", base), ("activation_precision", base), ("kv_precision", None)):
            text = get(k) or default
            if text is not None:
                try:
                    precision(text)
                except InputError as e:
                    raise InputError(f"{where}, column {k if get(k) else 'precision'}", text, e.allowed) from None
            prec[k] = text
        limits = {}
        for k in ("tpot_limit_ms", "ttft_limit_ms"):
            limits[k.replace("_ms", "_s")] = _number(where, k, get(k)) / 1e3 if get(k) else math.inf
        serving = {}
        for k in ("input_cv", "output_cv"):
            if get(k):
                serving[k] = _number(where, k, get(k), strict=False)
        if get("request_rate"):
            serving["request_rate"] = _number(where, "request_rate", get("request_rate"))
        elif metric in SERVE_METRICS[1:]:
            raise InputError(f"{where}, column request_rate", "", CSV_COLUMNS["request_rate"])
        if metric in SERVE_METRICS and osl < 2:
            raise InputError(f"{where}, column output_tokens", get("output_tokens"),
                             ">= 2 for a serving metric (serving under load needs a Decode phase)")
        par = parallelism(**degrees)
        try:
            validate_parallelism(model_cache[model_name], par)
        except InputError as e:
            raise InputError(f"{where}, column {e.field}", e.value, e.allowed) from None
        points.append(Measurement(
            hardware=hw_name, model=model_name, metric=metric, value=value, batch=batch, input_tokens=isl,
            output_tokens=osl, **degrees, **prec, **limits, id=get("id") or f"row{i}", group=get("group"),
            source=get("source"), stack=get("stack"), **serving,
        ))
    return points


def _hint(e: InputError):
    text = str(e)
    return text.split(" (", 1)[1].rstrip(")") if text.endswith(")") and " (" in text else ""


def write_points(points, path):
    """Write `points` as a measurement CSV that `load_points` reads back (SI metrics)."""
    cols = ["id", "hardware", "model", "tp", "pp", "dp", "ep", "weight_precision", "activation_precision",
            "kv_precision", "batch", "input_tokens", "output_tokens", "metric", "value", "tpot_limit_ms",
            "ttft_limit_ms", "group", "source", "stack"]
    if any(p.metric in SERVE_METRICS or p.input_cv or p.output_cv for p in points):
        cols += ["request_rate", "input_cv", "output_cv"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for p in points:
            d = dataclasses.asdict(p)
            d["tpot_limit_ms"] = "" if math.isinf(p.tpot_limit_s) else f"{p.tpot_limit_s * 1e3:.6g}"
            d["ttft_limit_ms"] = "" if math.isinf(p.ttft_limit_s) else f"{p.ttft_limit_s * 1e3:.6g}"
            d["kv_precision"] = d["kv_precision"] or ""
            d["value"] = f"{p.value:.9g}"
            d["request_rate"] = f"{p.request_rate:.9g}" if p.request_rate else ""
            for k in ("batch", "input_tokens", "output_tokens"):
                d[k] = f"{d[k]:g}"
            w.writerow([d[c] for c in cols])

