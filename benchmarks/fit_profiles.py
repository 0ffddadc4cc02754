"""The data behind the shipped calibration profiles, and the commands that fit them.

A thin wrapper over ``diffhw calibrate`` (`diffhw.calibrate`): it turns
``../shared/data`` into measurement CSVs under ``diffhw/data/calibration/`` (one
measured number per row, the columns `diffhw.load_points` reads) and runs the fits whose
results are ``diffhw/data/profiles/<name>.toml``:

    python benchmarks/fit_profiles.py export [NAME ...]  # rewrite the calibration CSVs
    python benchmarks/fit_profiles.py splitwise-2023 [--out FILE.toml]
    python benchmarks/fit_profiles.py trtllm-2024    [--out FILE.toml]
    python benchmarks/fit_profiles.py llamacpp-2025  [--out FILE.toml]
    python benchmarks/fit_profiles.py rocm-2025      [--out FILE.toml]   # a scan, not calibrate

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
- ``llamacpp-2025.csv``: the llama.cpp rows (llama-bench tg128 batch-1 decode and pp512
  Prefill; A100, H100 PCIe, RTX 4090, Apple M1 Max / M2 Ultra / M3 Max).
- ``rocm-2025.csv``: the AMD ROCm rows (MLPerf Offline and Server Llama-2-70B and
  Mixtral-8x7B on MI300X / MI325X / MI355X): max-throughput points only, which
  ``diffhw calibrate`` predicts but does not fit, so ``rocm-2025`` is a scan of the compute
  efficiency on the Offline rows (``accuracy.ROCM_SCAN``).

Stack profiles and an unknown stack (issue 16; numbers from ``accuracy.py`` on the 105
non-serving published points, mean |error|): each stack profile carried to the other
stacks' rows is worse than ``default`` on the same rows (trtllm-2024 25.1% vs 23.5%,
llamacpp-2025 32.2% vs 23.9%, rocm-2025 34.6% vs 21.2%, splitwise-2023 76.1% vs 22.7%), and
the default terms refitted with each stack left out (``diffhw.cross_validate(by="stack")``)
predict the stack left out at median 20.9%, mean 28.5%. So an unknown stack gets
``default``: chosen against every stack's rows, with the TensorRT-LLM max-throughput
optimum (a scan there lands on its compute share and FP4 ratio), not one stack's fit.
vLLM on CUDA (1 row), Hugging Face transformers (4 rows, one chip) and Saxml (1 row)
have no profile of their own: too few rows and chips to fit and hold one out.

Every row carries its serving ``stack`` (from the source's ``software`` column:
tensorrt-llm, vllm, llama.cpp, hf-transformers, saxml-jax, splitwise-2023), so that
``diffhw calibrate DATA.csv --cv hardware --cv-within stack`` fits one profile per stack.
"""

import argparse
import statistics
import sys
from pathlib import Path

import diffhw
from diffhw import _cli
from diffhw._io import _measurements
from diffhw._tools._calibrate import LEAVES

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
# llama.cpp (CUDA and Metal): batch-1 decode and pp512 Prefill; the leaves of
# accuracy.STACK_FIT (bandwidth, compute, per-step and per-layer kernel costs)
PROFILES["llamacpp-2025"] = (
    ",".join(accuracy.STACK_FIT["llama.cpp"]),
    [],
    "llama.cpp (llama-bench tg128 / pp512, CUDA and Metal, batch 1)",
)
# ROCm: max-throughput rows only, which diffhw.calibrate does not fit: a scan (see
# accuracy.ROCM_SCAN), written as a profile by `rocm()` below
SCANNED = {"rocm-2025": "AMD ROCm stacks (AMD's MLPerf harness, vLLM on ROCm; MI300X / MI325X / MI355X)"}
TRTLLM_IDS = ("M003", "M004")  # MLPerf v4.0 NVIDIA Llama-2-70B Offline / Server (TensorRT-LLM)


def datasets():
    """name -> list of `diffhw.Measurement`, from ../shared/data."""
    pub, _ = accuracy.published_points()
    trt = [p for p in pub if p["group"] in ("known-batch throughput", "first-token latency") or p["id"] in TRTLLM_IDS]
    return {
        "splitwise-2023": [accuracy.measurement(p) for p in accuracy.splitwise_points()],
        "trtllm-2024": [accuracy.measurement(p) for p in trt],
        "published-2024": [accuracy.measurement(p) for p in pub],
        "llamacpp-2025": [accuracy.measurement(p) for p in pub if p["stack"] == "llama.cpp"],
        # every ROCm point the scan sees or predicts (MLPerf Offline fitted, Server predicted)
        "rocm-2025": [accuracy.measurement(p) for p in pub
                      if p["stack"] == "vllm-rocm" and p["metric"] not in accuracy.SERVE_METRICS],
    }


def rocm(out=None):
    """Scan `accuracy.ROCM_SCAN` on the ROCm MLPerf Offline rows; write the profile."""
    pub, _ = accuracy.published_points()
    pts = [p for p in pub if accuracy._rocm_fitted(p)]
    allp = [p for p in pub if p["stack"] == "vllm-rocm" and p["metric"] not in accuracy.SERVE_METRICS]
    leaf, grid = accuracy.ROCM_SCAN
    best, errs = accuracy.scan_fit(pts, leaf, grid)
    err = lambda v, ps: [abs(accuracy.predict(p, hw=accuracy._with(leaf, v, p["hardware"])) / p["measured"] - 1)
                         for p in ps]
    d0, d1 = err(diffhw_profile()[leaf], allp), err(best, allp)
    stat = lambda e: f"median {statistics.median(e):.1%}, mean {sum(e) / len(e):.1%}"
    print("scan (mean |error| on the Offline rows): " + ", ".join(f"{v}: {e:.1%}" for v, e in errs.items()),
          file=sys.stderr)
    prof = dict(diffhw_profile(), **{leaf: best})
    lines = [
        "# AMD ROCm serving stacks (AMD's MLPerf Inference harness and vLLM on ROCm, 2024-25) on",
        "# MI300X / MI325X / MI355X, fitted to the rows in diffhw/data/calibration/rocm-2025.csv",
        "# (published_measurements.csv rows M016-M018, M029, M030, M050-M054: MLCommons inference",
        "# results v4.1-v5.1, AMD submissions; each row's source URL is in the CSV).",
        "# Every row is a max-throughput point, which diffhw.calibrate predicts but does not fit,",
        f"# so one general term, {leaf}, is a scan of {grid[0]}..{grid[-1]} (step 0.02) minimising",
        "# the mean |error| on the MLPerf Offline rows (M016, M017, M029, M050, M052, M053, M054;",
        "# the Server rows' static-batch search under latency limits is predicted, not fitted).",
        "# Every other value is the default profile's (its sources are in default.toml).",
        "# Reproduce: python benchmarks/fit_profiles.py rocm-2025 --out FILE.toml",
        f"# fitted error on the {len(allp)} rows: {stat(d1)} (default profile: {stat(d0)})",
        'name = "rocm-2025"',
        f'description = "{SCANNED["rocm-2025"]}"',
        (f'fitted_on = "diffhw/data/calibration/rocm-2025.csv (scan of {leaf} on the MLPerf Offline rows); '
         f'{stat(d1)} on {len(allp)} points (default profile: {stat(d0)})"'),
        "",
        "[values]",
    ]
    for k, v in prof.items():
        note = "fitted (scan, see header)" if k == leaf else "not fitted: from profile 'default'"
        lines.append(f"{k} = {v:g}  # {note}")
    text = "\n".join(lines) + "\n"
    if out:
        Path(out).write_text(text)
    else:
        print(text)
    return 0


def diffhw_profile():
    """The default profile's leaves, name -> float."""
    prof = diffhw.presets.profile("default")
    return {k: float(getattr(prof, k)) for k in LEAVES}


def export(names=()):
    CALIBRATION.mkdir(parents=True, exist_ok=True)
    for name, points in datasets().items():
        if names and name not in names:
            continue
        path = CALIBRATION / f"{name}.csv"
        _measurements.write_points(points, path)
        print(f"wrote {path.relative_to(ROOT)} ({len(points)} points)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["export", *PROFILES, *SCANNED])
    ap.add_argument("names", nargs="*", help="export: only these CSVs (default: all)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.what == "export":
        export(args.names)
        return 0
    if args.what == "rocm-2025":
        return rocm(args.out)
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
