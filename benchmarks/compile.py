"""Where the time to an answer goes: tracing, lowering, XLA compilation and running, per
entry point, cold and warm.

Each entry point runs in a fresh Python process (so nothing is compiled yet) with
JAX's compile log on (``jax_log_compiles``), which reports for every jitted program the
time spent tracing it, converting its jaxpr to MLIR and compiling it with XLA. *Cold*
is a process with empty caches, *warm* a second process that reads the caches the
first one wrote (both turned on as the CLI does, `diffhw._cli._cache`): diffhw's own
entry points load their kept executables (`diffhw._programs`: no tracing, lowering or
compiling), and other programs come from JAX's persistent compilation cache (which
skips XLA compilation only; e.g. the `grad` row, the user's own `jax.jit`). ``wall_s`` is the process's whole
time including ``import diffhw`` (``import_s``); ``other_s`` is what is left once
import, tracing, lowering and compilation are taken off (running, Python, I/O). The
CLI's `size` compiles its later programs in background threads while it works
(`diffhw._programs.prepare`): its trace, lower and compile times are summed over the
threads and can add up to more than the wall time (``other_s`` then reads 0).
``hlo_ops`` counts the operations of the largest lowered program (StableHLO), a
measure of how big the traced program is.

The main design throughout is the main job's: DeepSeek-V3 FP8 on 8 x H200-SXM, 32K
prompts, 1K outputs, batch 32, with technology (economics).

Usage::

    python benchmarks/compile.py                 # every entry point
    python benchmarks/compile.py --only evaluate,grad
    python benchmarks/compile.py --json          # the same results as JSON
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

#: Entry point -> the Python it runs (after `_PRELUDE`), timed in its own process.
ENTRY_POINTS = {
    "evaluate": "r = diffhw.evaluate(d.hardware, d.model, d.workload, d.parallelism, technology=d.technology)\n"
                "jax.block_until_ready(r)",
    "grad": "f = jax.jit(jax.grad(lambda d: jnp.log(diffhw.design_values(d, checked=False)['usd_per_million_tokens'])))\n"
            "jax.block_until_ready(f(d))",
    "sensitivity": "diffhw.sensitivity(d)",
    "sweep": "diffhw.sweep(d, {'hardware.memory_bandwidth_bytes_per_s': (1e12, 2e13), 'workload.batch': (1, 256)},"
             " metrics=['tpot_s', 'usd_per_million_tokens'], samples=4096, progress=False)",
    "size": "from diffhw._cli._size import DEFAULT_VARIABLES\n"
            "vs = [diffhw.variable(n, lo, hi, paths=p) for n, lo, hi, p in DEFAULT_VARIABLES]\n"
            "diffhw.size(d, vs, constraints=['tpot_s<=0.05', 'chip_area_mm2<=858', 'peak_power_w<=1000'])",
    # the console script itself (its exit included), on its defaults, as a user runs it
    "cli-evaluate": "_console('evaluate')",
    "cli-size": "_console('size')",  # the main job (sized for serving)
    "cli-size-static": "_console('size', '--serving', 'off')",  # the static-batch job
    "cli-sensitivity": "_console('sensitivity')",
    "cli-sweep": "_console('sweep', '--vary', 'workload.batch=1:256', '--samples', '4096')",
    # the llama.cpp stack's shipped rows (20 points), as `diffhw calibrate` fits them
    "cli-calibrate": "_console('calibrate', os.path.join(os.path.dirname(diffhw.__file__), 'data', 'calibration',"
                     " 'llamacpp-2025.csv'), '--profile', 'fitted')",
}

_PRELUDE = """
import time
t0 = time.perf_counter()
import logging, os, sys
import jax, jax.numpy as jnp
import diffhw
import_s = time.perf_counter() - t0
jax.config.update("jax_log_compiles", True)
logging.basicConfig(level=logging.WARNING, format="LOG %(message)s", stream=sys.stderr)
from diffhw._cli._cache import enable_compilation_cache
enable_compilation_cache()
from diffhw._cli._size import MAIN_JOB, SIZE_BATCH
d = diffhw.from_presets(**MAIN_JOB, batch=SIZE_BATCH)
print('IMPORT_S', import_s, flush=True)  # before `_console`, which leaves without returning


def _console(*argv):
    sys.argv = ['diffhw', *argv]
    from diffhw._cli import console
    console()
"""

_TRACE = re.compile(r"LOG Finished tracing (?:\+ transforming )?(\S+) for \w+ in ([0-9.e-]+) sec")
_LOWER = re.compile(r"LOG Finished jaxpr to MLIR module conversion \w+\((\S+)\) in ([0-9.e-]+) sec")
_COMPILE = re.compile(r"LOG Finished XLA compilation of \w+\((\S+)\) in ([0-9.e-]+) sec")


def _script(entry):
    return _PRELUDE + ENTRY_POINTS[entry] + "\n"


def _hlo_ops(entry):
    """Operations in the lowered StableHLO of the entry point's main program (evaluate
    and grad only: the others are built inside diffhw)."""
    if entry not in ("evaluate", "grad"):
        return None
    import jax
    import jax.numpy as jnp

    import diffhw
    from diffhw._cli._size import MAIN_JOB, SIZE_BATCH

    d = diffhw.from_presets(**MAIN_JOB, batch=SIZE_BATCH)
    if entry == "evaluate":
        f = jax.jit(lambda d: diffhw.design_values(d, checked=False))
    else:
        f = jax.jit(jax.grad(lambda d: jnp.log(diffhw.design_values(d, checked=False)["usd_per_million_tokens"])))
    text = f.lower(d).as_text()
    return sum(1 for line in text.splitlines() if re.search(r"= (stablehlo|chlo|mhlo)\.|^\s*(stablehlo|func)\.\w", line))


def _run(entry, cache_dir):
    env = dict(os.environ, DIFFHW_CACHE_DIR=cache_dir)
    import time

    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _script(entry)], check=False, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{entry} failed:\n{r.stderr[-2000:]}")
    lowered = {m.group(1): float(m.group(2)) for m in _LOWER.finditer(r.stderr)}
    compiled = {m.group(1): float(m.group(2)) for m in _COMPILE.finditer(r.stderr)}
    # A jit inside another is traced inside it (its time is part of the outer trace):
    # count the traces of programs that were lowered on their own.
    traced = {}
    for m in _TRACE.finditer(r.stderr):
        if m.group(1) in lowered:
            traced[m.group(1)] = traced.get(m.group(1), 0.0) + float(m.group(2))
    row = {"wall_s": wall, "trace_s": sum(traced.values()), "lower_s": sum(lowered.values()),
           "compile_s": sum(compiled.values()), "programs": len(lowered),
           "largest": max(lowered, key=lambda k: traced.get(k, 0.0) + lowered[k] + compiled.get(k, 0.0))
           if lowered else None}
    imp = re.search(r"IMPORT_S ([0-9.e-]+)", r.stdout)
    row["import_s"] = float(imp.group(1)) if imp else 0.0
    row["other_s"] = max(wall - row["import_s"] - row["trace_s"] - row["lower_s"] - row["compile_s"], 0.0)
    return row


def measure(entries):
    out = {}
    for entry in entries:
        with tempfile.TemporaryDirectory() as cache:
            cold = _run(entry, cache)
            warm = _run(entry, cache)
        out[entry] = {"cold": cold, "warm": warm, "hlo_ops": _hlo_ops(entry)}
    return out


def _table(results):
    cols = ("wall_s", "import_s", "trace_s", "lower_s", "compile_s", "other_s")
    w = max([len("entry point"), *map(len, results)])
    lines = [f"{'entry point':<{w}} {'':<5} " + " ".join(f"{c:>10}" for c in cols) + f" {'hlo_ops':>8}"]
    for entry, r in results.items():
        for phase in ("cold", "warm"):
            row = r[phase]
            ops = "" if phase == "warm" or r["hlo_ops"] is None else f"{r['hlo_ops']:>8}"
            lines.append(f"{entry:<{w}} {phase:<5} " + " ".join(f"{row[c]:>10.2f}" for c in cols) + f" {ops}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated entry points: " + ", ".join(ENTRY_POINTS))
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    entries = list(ENTRY_POINTS) if args.only is None else [e.strip() for e in args.only.split(",") if e.strip()]
    unknown = [e for e in entries if e not in ENTRY_POINTS]
    if unknown:
        print(f"compile.py: error: --only {unknown[0]!r} is not one of {', '.join(ENTRY_POINTS)}", file=sys.stderr)
        return 2
    results = measure(entries)
    print(json.dumps(results, indent=2) if args.json else _table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
