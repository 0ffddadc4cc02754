"""The data behind the shipped calibration profiles, and the commands that fit them.

A thin wrapper over ``diffhw calibrate`` (`diffhw.calibrate`): it turns
``../shared/data`` into measurement CSVs under ``diffhw/data/calibration/`` (one
measured number per row, the columns `diffhw.load_points` reads) and runs the fits whose
results are ``diffhw/data/profiles/<name>.toml``:

    python benchmarks/fit_profiles.py export        # rewrite the calibration CSVs
    python benchmarks/fit_profiles.py splitwise-2023 [--out FILE.toml]
    python benchmarks/fit_profiles.py trtllm-2024    [--out FILE.toml]

Each name runs exactly ``diffhw calibrate diffhw/data/calibration/<name>.csv --profile
<name> --fit ... --base-profile default`` (printed first). The CSVs:

- ``splitwise-2023.csv``: SplitwiseSim's measured table (medians of repeated runs),
  TTFT and TPOT of Llama-2-70B and BLOOM-176B on DGX-A100 / DGX-H100, TP 2-8.
- ``trtllm-2024.csv``: TensorRT-LLM's published static-batch throughput and batch-1
  TTFT (v0.5-0.6) and NVIDIA's MLPerf v4.0 Llama-2-70B Offline and Server results
  (those two are max-throughput points: predicted, not fitted). MLPerf GPT-J is left
  out: it uses beam search with 4 beams, which diffhw does not model.
- ``published-2024.csv``: every usable row of ``published_measurements.csv`` (modern
  stacks: TensorRT-LLM, vLLM, llama.cpp, Hugging Face), the data the ``default``
  profile was chosen against.

Every row carries its serving ``stack`` (from the source's ``software`` column:
tensorrt-llm, vllm, llama.cpp, hf-transformers, saxml-jax, splitwise-2023), so that
``diffhw calibrate DATA.csv --cv hardware --cv-within stack`` fits one profile per stack.
"""

import argparse
import sys
from pathlib import Path

from diffhw import _cli
from diffhw._io import _measurements

sys.path.insert(0, str(Path(__file__).parent))
import accuracy

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "diffhw" / "data" / "calibration"
PROFILES = {
    # name: (leaves fitted, base-profile overrides, description)
    # the SplitwiseSim stack: software terms incl. the per-ring-step and per-sequence
    # costs, the same leaves as accuracy.py's cross-validation (see SPLITWISE_FIT there for why the
    # bandwidth fraction is not fitted)
    "splitwise-2023": (
        ",".join(accuracy.SPLITWISE_FIT),
        # the table's prompt times grow linearly with batch x prompt: one pass, no chunking
        ["max_batched_tokens=1e9"],
        "the 2023 serving stack of SplitwiseSim's measured table (large fixed overheads)",
    ),
    # batch-1 TTFT and large static batches: compute efficiency, its skinny-matrix
    # half-point and the per-step overhead are what these points constrain
    "trtllm-2024": (
        "bandwidth_efficiency,compute_efficiency,compute_half_rows,step_overhead_s",
        [],
        "TensorRT-LLM v0.5-0.6 class (static batching, NVIDIA's published tables and MLPerf v4.0)",
    ),
}
TRTLLM_IDS = ("M003", "M004")  # MLPerf v4.0 NVIDIA Llama-2-70B Offline / Server (TensorRT-LLM)


def datasets():
    """name -> list of `diffhw.Measurement`, from ../shared/data."""
    pub, _ = accuracy.published_points()
    trt = [p for p in pub if p["group"] in ("known-batch throughput", "first-token latency") or p["id"] in TRTLLM_IDS]
    return {
        "splitwise-2023": [accuracy.measurement(p) for p in accuracy.splitwise_points()],
        "trtllm-2024": [accuracy.measurement(p) for p in trt],
        "published-2024": [accuracy.measurement(p) for p in pub],
    }


def export():
    CALIBRATION.mkdir(parents=True, exist_ok=True)
    for name, points in datasets().items():
        path = CALIBRATION / f"{name}.csv"
        _measurements.write_points(points, path)
        print(f"wrote {path.relative_to(ROOT)} ({len(points)} points)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["export", *PROFILES])
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.what == "export":
        export()
        return 0
    data = CALIBRATION / f"{args.what}.csv"
    fit, sets, description = PROFILES[args.what]
    cmd = ["calibrate", str(data.relative_to(ROOT)), "--profile", args.what, "--fit", fit,
           "--base-profile", "default", "--description", description,
           "--huber-delta", str(accuracy.HUBER_DELTA)]
    for s in sets:
        cmd += ["--set", s]
    cmd += ["--out", args.out] if args.out else []
    cmd += ["--json"] if args.json else []
    print("diffhw " + " ".join(cmd), file=sys.stderr)
    return _cli.main(cmd)


if __name__ == "__main__":
    sys.exit(main())
