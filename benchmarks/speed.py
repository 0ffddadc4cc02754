"""How fast is diffhw, alone and next to peer analytical models?

One workload throughout: Llama-3.1-70B on 8 x H100 SXM, tensor parallel 8, batch 64,
2048 input tokens, 256 output tokens, bf16. What is measured (wall clock,
``time.perf_counter``, on whatever JAX backend is the default here):

1. ``diffhw.evaluate`` single-call latency: the median of many calls after the first
   (compiling) one, blocking on the whole returned `Metrics` pytree.
2. ``jax.jit(jax.vmap(f))`` throughput, in designs/s, for N = 1e3 ... 1e6 random designs
   (seeded; memory bandwidth, bf16 FLOP/s, link bandwidth and batch vary). Each N is
   compiled by a first call; the median of the following calls is timed. Every design
   yields the full metric set (latency, throughput, memory, breakdowns). N above
   ``--chunk`` (default 1e4) is also timed as a vmap over chunks (``jax.lax.map`` with
   ``batch_size``, still one compiled call returning all N results), which keeps the
   working set in cache; the goal uses the faster of the two at the largest N.
3. ``jax.grad`` of TPOT with respect to every float leaf of the hardware (jitted;
   median of single calls after compilation).
4. Peers, if installed, each with its own defaults: GenZ (``genz-llm``; one evaluation
   = ``prefill_moddeling`` + ``decode_moddeling``, giving TTFT and TPOT) and
   llm-analysis (``llm-analysis``; one evaluation = ``llm_analysis.analysis.infer``).
   The median of several evaluations after a warm-up call gives evals/s. Predicted TPOT
   and TTFT are printed side by side (diffhw is also run on the peer's model where the
   peer lacks Llama-3.1-70B).

The goal, printed with the verdict: diffhw's vmap throughput at the largest N is at
least 1e5x GenZ's and 1e3x llm-analysis's evaluations per second.

Usage::

    python benchmarks/speed.py            # full run
    python benchmarks/speed.py --quick    # small version (< ~1 minute), for smoke tests
    python benchmarks/speed.py --json     # the same results as JSON
"""

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import diffhw

BATCH, INPUT_TOKENS, OUTPUT_TOKENS, TP = 64, 2048, 256, 8
GOALS = {"GenZ": 1e5, "llm-analysis": 1e3}  # required diffhw-vmap / peer evals-per-s ratio
INSTALL_HINT = "not installed (pip install 'diffhw[benchmark]')"


def _median_time(fn, repeats):
    """Median wall time of `repeats` calls of `fn` (call it once before to warm up)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# --------------------------------------------------------------------------- diffhw


def _setup(model_name="llama-3.1-70b"):
    hw = diffhw.presets.hardware("h100-sxm")
    model = diffhw.presets.model(model_name)
    wl = diffhw.workload(batch=BATCH, input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS,
                         precision_="bf16")
    return hw, model, wl, diffhw.parallelism(tp=TP)


def _ready(tree):
    """`tree` once every JAX array in it is computed. A top-level `diffhw.evaluate`
    returns NumPy arrays (computed already); `jax.block_until_ready` would try and fail
    a method call on each of them (~1 us apiece), which no user pays."""
    for x in jax.tree_util.tree_leaves(tree):
        if isinstance(x, jax.Array):
            x.block_until_ready()
    return tree


def diffhw_single(repeats):
    """Latency of one compiled `diffhw.evaluate` call (public API, `eqx.filter_jit`
    dispatch), of the same call wrapped in `jax.jit` over the hardware (plain `jax.jit`
    dispatch on array leaves), and the predictions."""
    hw, model, wl, par = _setup()
    jitted = jax.jit(lambda h: diffhw.evaluate(h, model, wl, par))
    out = {}
    for key, fn in [("", lambda: diffhw.evaluate(hw, model, wl, par)), ("jit_", lambda: jitted(hw))]:
        call = lambda fn=fn: _ready(fn())
        t0 = time.perf_counter()
        m = call()
        out[key + "compile_s"] = time.perf_counter() - t0
        out[key + "latency_s"] = _median_time(call, repeats)
    p = hw.profile
    out.update(
        tpot_s=float(m.tpot_s),
        ttft_s=float(m.ttft_s),
        profile=f"bandwidth_efficiency {float(p.bandwidth_efficiency):g}, compute_efficiency "
                f"{float(p.compute_efficiency):g}, step_overhead {float(p.step_overhead_s) * 1e3:g} ms",
    )
    return out


def diffhw_predictions(model_name):
    """diffhw's TPOT and TTFT for `model_name` on the benchmark workload."""
    m = diffhw.evaluate(*_setup(model_name))
    return {"tpot_s": float(m.tpot_s), "ttft_s": float(m.ttft_s)}


def diffhw_gradient(repeats):
    """Latency of one jitted `jax.grad` of TPOT w.r.t. all hardware float leaves."""
    hw, model, wl, par = _setup()
    grad = jax.jit(jax.grad(lambda h: diffhw.evaluate(h, model, wl, par).tpot_s))
    call = lambda: jax.block_until_ready(grad(hw))
    t0 = time.perf_counter()
    g = call()
    compile_s = time.perf_counter() - t0
    leaves = jax.tree_util.tree_leaves(g)
    return {
        "latency_s": _median_time(call, repeats),
        "compile_s": compile_s,
        "leaves": len(leaves),
        "finite": bool(all(np.isfinite(np.asarray(x)).all() for x in leaves)),
    }


def _random_designs(n, seed):
    """Seeded designs: memory bandwidth 1-8 TB/s, bf16 0.2-2.5 PFLOP/s, link 50-900 GB/s,
    batch 1-256 (uniform)."""
    rng = np.random.default_rng(seed)
    ranges = [(1e12, 8e12), (2e14, 2.5e15), (5e10, 9e11), (1.0, 256.0)]
    return [jnp.asarray(rng.uniform(lo, hi, n), dtype=jnp.float32) for lo, hi in ranges]


def diffhw_vmap(sizes, repeats, chunk, seed=0):
    """Designs/s for each N: one `jax.jit(jax.vmap(f))` call over all N designs and, for
    N > `chunk` (if nonzero), `jax.lax.map(f, ..., batch_size=chunk)` (a vmap over chunks
    of `chunk` designs, looped inside one compiled call). `repeats(n)` gives the number of
    timed calls."""
    hw, model, wl, par = _setup()

    def f(bw, flops, link, batch):
        h = hw.replace(memory_bandwidth_bytes_per_s=bw, flop_per_s_bf16=flops,
                       link_bandwidth_bytes_per_s=link)
        return diffhw.evaluate(h, model, eqx.tree_at(lambda w: w.batch, wl, batch), par)

    vf = jax.jit(jax.vmap(f))
    mf = jax.jit(lambda *xs: jax.lax.map(lambda x: f(*x), xs, batch_size=chunk))
    rows = []
    for n in sizes:
        args = _random_designs(n, seed)
        modes = [("one vmap call", vf)]
        if chunk and n > chunk:
            modes.append((f"vmap in chunks of {chunk}", mf))
        for mode, fn in modes:
            t0 = time.perf_counter()
            out = jax.block_until_ready(fn(*args))  # compiles for this N
            compile_s = time.perf_counter() - t0
            ok = bool(np.isfinite(np.asarray(out.tpot_s)).all())
            del out
            run_s = _median_time(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)), repeats(n))
            rows.append({"n": n, "mode": mode, "run_s": run_s, "compile_s": compile_s,
                         "designs_per_s": n / run_s, "all_finite": ok})
    return rows


# --------------------------------------------------------------------------- peers


@contextlib.contextmanager
def _quiet():
    """Silence a peer's prints and warnings (its own output is not what we time)."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield


def peer_genz(repeats):
    """GenZ (genz-llm): one evaluation = prefill_moddeling + decode_moddeling."""
    try:
        with _quiet():
            import GenZ
    except ImportError:
        return {"name": "GenZ", "status": INSTALL_HINT}
    except Exception as exc:  # a broken install must not crash the benchmark either
        return {"name": "GenZ", "status": _first_line(exc)}
    model = "meta-llama/Llama-3.1-70B"
    common = dict(model=model, batch_size=BATCH, input_tokens=INPUT_TOKENS,
                  system_name="H100_GPU", bits="bf16", tensor_parallel=TP)

    def evaluate():
        pre = GenZ.prefill_moddeling(**common)
        dec = GenZ.decode_moddeling(**common, output_tokens=OUTPUT_TOKENS, Bb=1)
        return pre, dec

    try:
        with _quiet():
            pre, dec = evaluate()  # warm-up (imports, caches)
            latency_s = _median_time(evaluate, repeats)
    except Exception as exc:  # a peer must never crash the benchmark
        return {"name": "GenZ", "status": _first_line(exc)}
    return {
        "name": "GenZ",
        "status": "ok",
        "version": _version("genz-llm"),
        "model": model,
        "call": (
            f"GenZ.prefill_moddeling(model={model!r}, batch_size={BATCH}, input_tokens={INPUT_TOKENS}, "
            f"system_name='H100_GPU', bits='bf16', tensor_parallel={TP}) + GenZ.decode_moddeling(same, "
            f"output_tokens={OUTPUT_TOKENS}, Bb=1)"
        ),
        "latency_s": latency_s,
        "tpot_s": dec["Latency"] / 1e3,  # GenZ reports milliseconds
        "ttft_s": pre["Latency"] / 1e3,
        "diffhw_model": "llama-3.1-70b",
    }


def peer_llm_analysis(repeats):
    """llm-analysis: one evaluation = llm_analysis.analysis.infer (prefill and decode)."""
    try:
        with _quiet():
            from llm_analysis.analysis import infer
    except ImportError:
        return {"name": "llm-analysis", "status": INSTALL_HINT}
    except Exception as exc:  # a broken install must not crash the benchmark either
        return {"name": "llm-analysis", "status": _first_line(exc)}
    # Bundled config (no Llama-3.1-70B is bundled; others would be fetched from the Hub).
    model = "upstage_Llama-2-70b-instruct-v2"
    kwargs = dict(model_name=model, gpu_name="h100-sxm-80gb", dtype_name="w16a16e16", log_level="ERROR",
                  batch_size_per_gpu=BATCH, tp_size=TP, seq_len=INPUT_TOKENS,
                  num_tokens_to_generate=OUTPUT_TOKENS)
    evaluate = lambda: infer(**kwargs)
    try:
        with _quiet():
            summary = evaluate()  # warm-up
            latency_s = _median_time(evaluate, repeats)
    except Exception as exc:
        return {"name": "llm-analysis", "status": _first_line(exc)}
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return {
        "name": "llm-analysis",
        "status": "ok",
        "version": _version("llm-analysis"),
        "model": model + " (Llama-2-70B)",
        "call": f"llm_analysis.analysis.infer({args})",
        "latency_s": latency_s,
        "tpot_s": summary["decode_latency"],
        "ttft_s": summary["prefill_latency"],
        "diffhw_model": "llama-2-70b",
    }


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "?"


# --------------------------------------------------------------------------- report


def run(quick, chunk):
    sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    reps = dict(single=50, grad=20, small=5, large=2, genz=2, la=20) if quick else \
        dict(single=500, grad=200, small=20, large=3, genz=10, la=300)
    t0 = time.perf_counter()
    single = diffhw_single(reps["single"])
    grad = diffhw_gradient(reps["grad"])
    vmap = diffhw_vmap(sizes, lambda n: reps["small"] if n <= 100_000 else reps["large"], chunk)
    peers = [peer_genz(reps["genz"]), peer_llm_analysis(reps["la"])]
    n_max = max(v["n"] for v in vmap)
    best = max((v for v in vmap if v["n"] == n_max), key=lambda v: v["designs_per_s"])
    for p in peers:
        if p["status"] != "ok":
            continue
        p["evals_per_s"] = 1.0 / p["latency_s"]
        p["single_speedup"] = p["latency_s"] / single["latency_s"]
        p["jit_single_speedup"] = p["latency_s"] / single["jit_latency_s"]
        p["vmap_speedup"] = best["designs_per_s"] * p["latency_s"]
        p["goal"] = GOALS[p["name"]]
        p["goal_met"] = p["vmap_speedup"] >= p["goal"]
        p["diffhw_on_peer_model"] = diffhw_predictions(p["diffhw_model"])
    return {
        "workload": f"Llama-3.1-70B, 8 x H100 SXM, TP {TP}, batch {BATCH}, {INPUT_TOKENS} in, "
                    f"{OUTPUT_TOKENS} out, bf16",
        "goal": "diffhw vmap designs/s (largest N, full metric set) >= 1e5 x GenZ and 1e3 x "
                "llm-analysis evaluations/s",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"JAX {jax.__version__} on {jax.default_backend()} ({jax.devices()[0].device_kind}), "
                   f"Python {platform.python_version()}",
        "quick": quick,
        "single": single,
        "gradient": grad,
        "vmap": vmap,
        "vmap_best_at_largest_n": best,
        "peers": peers,
        "wall_s": time.perf_counter() - t0,
    }


def _si(x, unit=""):
    for scale, prefix in [(1e9, "G"), (1e6, "M"), (1e3, "k")]:
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def format_table(r):
    line = "-" * 96
    out = [
        "diffhw speed benchmark" + ("  [--quick]" if r["quick"] else ""),
        f"Workload: {r['workload']}",
        f"Machine:  {r['machine']}",
        f"Goal:     {r['goal']}",
        line,
        f"{'measurement':<44}{'time / call':>16}{'evals/s':>14}{'compile':>12}",
        line,
    ]
    s, g = r["single"], r["gradient"]
    out.append(f"{'diffhw.evaluate, single call (median)':<44}{s['latency_s'] * 1e6:>13.1f} us"
               f"{_si(1 / s['latency_s']):>14}{s['compile_s']:>10.2f} s")
    out.append(f"{'jax.jit(diffhw.evaluate), single call':<44}{s['jit_latency_s'] * 1e6:>13.1f} us"
               f"{_si(1 / s['jit_latency_s']):>14}{s['jit_compile_s']:>10.2f} s")
    grad_label = f"jax.grad(tpot) w.r.t. {g['leaves']} hardware leaves"
    out.append(f"{grad_label:<44}"
               f"{g['latency_s'] * 1e6:>13.1f} us{_si(1 / g['latency_s']):>14}{g['compile_s']:>10.2f} s")
    out.append("jax.jit(jax.vmap(evaluate)) over random designs (full Metrics per design):")
    for v in r["vmap"]:
        label = f"  N = {v['n']:.0e}, {v['mode']}"
        out.append(f"{label:<44}{v['run_s'] * 1e3:>13.2f} ms{_si(v['designs_per_s']):>14}"
                   f"{v['compile_s']:>10.2f} s")
    out.append("Peers, one evaluation = TTFT + TPOT (median):")
    for p in r["peers"]:
        if p["status"] != "ok":
            out.append(f"{'  ' + p['name']:<44}{p['status']}")
            continue
        out.append(f"{'  ' + p['name'] + ' ' + p['version']:<44}"
                   f"{p['latency_s'] * 1e3:>13.2f} ms{_si(p['evals_per_s']):>14}{'-':>12}")
    best = r["vmap_best_at_largest_n"]
    out += [line, "Speed-ups over peers: evals/s of diffhw / evals/s of the peer", line,
            "single call, jit single: the two single-call rows above, one design per call",
            f"vmap: N = {best['n']:.0e}, {best['mode']} (the fastest mode at the largest N)"]
    out.append(f"{'peer':<16}{'single call':>14}{'jit single':>14}{'vmap':>18}{'goal':>10}"
               "   verdict (vmap vs goal)")
    for p in r["peers"]:
        if p["status"] != "ok":
            out.append(f"{p['name']:<16}{'n/a (' + p['status'] + ')'}")
            continue
        verdict = "MET" if p["goal_met"] else "NOT MET"
        out.append(f"{p['name']:<16}{p['single_speedup']:>13.3g}x{p['jit_single_speedup']:>13.3g}x"
                   f"{p['vmap_speedup']:>17.3g}x"
                   f"{p['goal']:>9.0e}x   {verdict}")
    out += [line, "Predictions (same workload; TPOT = one decode step, TTFT = prefill of the batch)", line]
    out.append(f"{'tool':<16}{'model':<46}{'TPOT':>14}{'TTFT':>12}")
    out.append(f"{'diffhw':<16}{'llama-3.1-70b':<46}{s['tpot_s'] * 1e3:>11.2f} ms{s['ttft_s']:>10.3f} s")
    for p in r["peers"]:
        if p["status"] != "ok":
            continue
        out.append(f"{p['name']:<16}{p['model']:<46}{p['tpot_s'] * 1e3:>11.2f} ms{p['ttft_s']:>10.3f} s")
        if p["diffhw_model"] != "llama-3.1-70b":
            d = p["diffhw_on_peer_model"]
            out.append(f"{'diffhw':<16}{p['diffhw_model']:<46}{d['tpot_s'] * 1e3:>11.2f} ms"
                       f"{d['ttft_s']:>10.3f} s")
    out += [line, "Notes:"]
    out.append("  diffhw runs in float32 and averages TPOT over the generated context; GenZ and llm-analysis")
    out.append(f"  model the decode step at the full context ({INPUT_TOKENS} + {OUTPUT_TOKENS} tokens).")
    out.append(f"  diffhw applies its default profile ({s['profile']});")
    out.append("  the peers' defaults assume 100% of peak FLOP/s and bandwidth (hence lower TPOT, TTFT).")
    out.append("  Peer time per evaluation excludes the import and a warm-up call.")
    for p in r["peers"]:
        if p["status"] == "ok":
            out.append(f"  {p['name']}: {p['call']}")
    out.append(f"Total benchmark wall time: {r['wall_s']:.1f} s")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small version (N up to 1e5, fewer repeats)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--chunk", type=int, default=10_000, metavar="SIZE",
                        help="also time N > SIZE designs as a vmap over chunks of SIZE "
                             "(jax.lax.map with batch_size; 0: only one vmap call; default 10000)")
    args = parser.parse_args(argv)
    results = run(args.quick, args.chunk)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
