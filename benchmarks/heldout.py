"""diffhw judged on published points that are NOT in ../shared/data (never fitted on).

The project fits only on ``../shared/data``; it is judged on other published
measurements too. This script keeps one such set: TensorRT-LLM's perf-overview tables
(``trtllm-bench`` maximum throughput, total output tokens/s, ten ISL/OSL pairs per chip;
docs at commit 00f37686, URL below), the points of its Llama-3.1-405B, Llama-3.3-70B,
Qwen3-235B and Llama-4-Maverick tables that the data folder does not hold. Each column is
predicted like the data row of the same table (``benchmarks/accuracy.py``: its layout,
precisions and trtllm-bench limits), with only the prompt and output lengths (and, for
the columns without a data row, the chip) changed. Judge with it; do not tune on it, or
it stops being held out.

Usage::

    python benchmarks/heldout.py            # a table: per column, the predicted/measured ratios
    python benchmarks/heldout.py --json
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy as A  # the sibling benchmark's point machinery

SOURCE = ("https://github.com/NVIDIA/TensorRT-LLM/blob/00f37686aa854010d68bcbd0f4ab000221541ca6/"
          "docs/source/performance/perf-overview.md")
#: The tables' (ISL, OSL) rows, in order.
PAIRS = ((128, 128), (128, 2048), (128, 4096), (500, 2000), (1000, 1000), (1000, 2000), (2048, 128),
         (2048, 2048), (5000, 500), (20000, 2000))
N = None
#: (table, chip preset) -> (reference data row, model preset or None for the row's,
#: precisions taken from this row or None for the reference's, measured tokens/s per
#: PAIRS row; None where the doc has no value). A point the data folder holds (the
#: reference row's own ISL/OSL, or another row of the same chip, model, precision and
#: ISL/OSL) is skipped.
COLUMNS = {
    ("Llama-3.1-405B", "b200"): ("M072", None, None, [6281, 8020, 6345, 6244, 5209, 4933, 749, 4212, 1048, 672]),
    ("Llama-3.1-405B", "gb200"): ("M073", None, None, [6740, 8151, 6608, 6540, 5389, 5135, 797, 4407, 1112, 739]),
    ("Llama-3.1-405B", "h200-sxm"): ("M071", None, None, [3814, 5348, 4741, 4724, 3330, 3722, 456, 2948, 650, 505]),
    ("Llama-3.1-405B", "h100-sxm"): ("M070", None, None, [3627, 4340, 3116, 3994, 2919, 2895, 453, 2296, 610, 345]),
    ("Llama-3.3-70B", "b200"): ("M055", None, None, [11147, 9922, 6831, 7762, 7007, 6271, 1339, 4783, 1459, 665]),
    ("Llama-3.3-70B", "h200-sxm"): ("M057", None, None, [3803, 4336, 2872, 3666, 2909, 2994, 442, 2003, 566, 283]),
    ("Llama-3.3-70B", "h100-sxm"): ("M058", None, None, [6378, 6651, 4199, 5222, 4205, 4146, 762, 3082, 898, 437]),
    ("Qwen3-235B", "b200"): ("M076", None, None, [63362, 66057, 39496, 57117, 42391, 34105, 7329, 26854, 8190, 4453]),
    ("Qwen3-235B", "h200-sxm"): ("M075", None, None, [30429, 42821, 26852, 28026, 23789, 22061, 3331, 16672, 3623, 1876]),
    ("Qwen3-235B", "h100-sxm"): ("M074", None, None, [N, 19658, 12447, 18351, 14898, 15136, N, 9924, 3225, N]),
    ("Llama-4-Maverick", "h200-sxm"): ("M077", None, None,
                                       [63994, 40572, 24616, 37835, 31782, 34734, 7307, 20957, 8456, 4106]),
    # no data row: the H200 row's layout and model with this chip and the Qwen3 column's precisions
    ("Llama-4-Maverick", "b200"): ("M077", None, "M076", [124323, 112676, 68170, N, 79617, 63766, 18088, 52195, N, 12678]),
    ("Llama-4-Maverick", "h100-sxm"): ("M077", None, "M074", [N, 10829, 6744, 10108, 9677, 9151, N, 6916, 3457, N]),
}
_PRECISIONS = ("weight_precision", "activation_precision", "kv_precision")


def points():
    """Every held-out point: (table, chip, (isl, osl), measured, point dict for `A.predict`)."""
    published = A.published_points()[0]
    ref = {p["id"]: p for p in published}
    # what the data folder holds already (any source): not held out
    held = {(p["hardware"], p["model"], p["weight_precision"], p["input_tokens"], p["output_tokens"])
            for p in published if p["metric"] == "max_throughput"}
    out = []
    for (table, chip), (rid, model, prec_from, values) in COLUMNS.items():
        base = dict(ref[rid], hardware=chip)
        if model is not None:
            base["model"] = model
        if prec_from is not None:
            base.update({k: ref[prec_from][k] for k in _PRECISIONS if k in ref[prec_from]})
        for (isl, osl), measured in zip(PAIRS, values, strict=True):
            if measured is None or (chip, base["model"], base["weight_precision"], float(isl), float(osl)) in held:
                continue
            p = dict(base, input_tokens=float(isl), output_tokens=float(osl), measured=float(measured),
                     id=f"{rid}@{chip}:{isl}/{osl}")
            if "max_batch_size" in base:  # trtllm-bench's limit for this pair's request count
                p["max_batch_size"] = min(A.TRTLLM_BENCH_MAX_BATCH, A.TRTLLM_BENCH_REQUESTS[(isl, osl)] / base["dp"])
            out.append((table, chip, (isl, osl), float(measured), p))
    return out


def run(profile="default"):
    rows = []
    for table, chip, pair, measured, p in points():
        ratio = A.predict(p, profile) / measured
        rows.append(dict(table=table, chip=chip, isl=pair[0], osl=pair[1], measured=measured, ratio=ratio))
    summary = {}
    for key in sorted({(r["table"], r["chip"]) for r in rows}):
        errs = [abs(r["ratio"] - 1) for r in rows if (r["table"], r["chip"]) == key]
        summary[f"{key[0]} {key[1]}"] = dict(n=len(errs), median=statistics.median(errs), mean=statistics.mean(errs))
    errs = [abs(r["ratio"] - 1) for r in rows]
    summary["all"] = dict(n=len(errs), median=statistics.median(errs), mean=statistics.mean(errs))
    return {"source": SOURCE, "profile": profile, "points": rows, "summary": summary}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = run(args.profile)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"held-out: {r['source']} (profile {r['profile']}); predicted / measured per ISL/OSL")
    for key, s in r["summary"].items():
        if key == "all":
            continue
        ratios = " ".join(f"{x['isl']}/{x['osl']}:{x['ratio']:.2f}" for x in r["points"]
                          if f"{x['table']} {x['chip']}" == key)
        print(f"  {key:<28} n {s['n']:>2}  median {s['median']:6.1%}  mean {s['mean']:6.1%}  {ratios}")
    a = r["summary"]["all"]
    print(f"  {'all':<28} n {a['n']:>2}  median {a['median']:6.1%}  mean {a['mean']:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
