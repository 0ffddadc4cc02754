"""Sweeps: vmapped grids and samples equal a loop over `evaluate`; exact Pareto fronts;
CSV, plot, CLI; bad input; the sharded sweep on 4 (forced host) devices equals the
unsharded one."""

import contextlib
import io
import itertools
import json
import os
import socket
import subprocess
import sys
import textwrap

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import InputError, SweepResult, pareto_front
from diffhw._cli import main
from diffhw._cli._sweep import parse_objectives, parse_vary
from diffhw._tools._sweep import axis_label, design_points

BW = "hardware.memory_bandwidth_bytes_per_s"
BANDWIDTHS = [1e12, 2e12, 4e12]
BATCHES = [1.0, 16.0, 4096.0]  # 4096 does not fit on one H100 at these lengths
LENGTHS = dict(input_tokens=512, output_tokens=64)


@pytest.fixture(scope="module")
def design():
    return diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=8, **LENGTHS)


@pytest.fixture(scope="module")
def grid(design):
    # chunk=4: 9 designs in 3 chunks, the last one padded (one compile)
    return diffhw.sweep(design, {BW: BANDWIDTHS, "workload.batch": BATCHES}, chunk=4, progress=False)


def test_grid_equals_a_loop_over_evaluate(design, grid):
    assert len(grid) == 9 and grid.devices == 1
    assert list(grid.inputs) == [BW, "workload.batch"]
    assert set(grid.metrics) == set(diffhw.metric_names(design))
    for i, (bw, b) in enumerate(itertools.product(BANDWIDTHS, BATCHES)):  # first axis slowest
        assert grid[BW][i] == bw and grid["workload.batch"][i] == b
        d = diffhw.set_values(design, {BW: bw, "workload.batch": b})
        m = diffhw.evaluate(d.hardware, d.model, d.workload, d.parallelism, technology=d.technology)
        want = diffhw.metric_values(m, d)
        for k, v in want.items():
            np.testing.assert_allclose(grid[k][i], float(v), rtol=1e-12, err_msg=k)
        assert bool(grid.feasible[i]) == bool(m.fits)
    assert not grid.feasible[np.asarray(grid["workload.batch"]) == 4096.0].any()
    assert grid.feasible[np.asarray(grid["workload.batch"]) < 4096.0].all()


def test_samples_are_seeded_log_uniform_within_bounds(design):
    axes = {BW: (1e11, 1e13), "workload.batch": (1.0, 64.0, "linear"), "technology.wafer_usd": (-5.0, 5.0)}
    a = design_points(design, axes, samples=4000, seed=3)
    b = design_points(design, axes, samples=4000, seed=3)
    c = design_points(design, axes, samples=4000, seed=4)
    for k in axes:
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])
        lo, hi = axes[k][:2]
        assert a[k].min() >= lo and a[k].max() <= hi
    # log-uniform: each decade holds about half; linear: the median sits mid-range
    assert 0.45 < np.mean(a[BW] < 1e12) < 0.55
    assert 28 < np.median(a["workload.batch"]) < 37
    assert 0.45 < np.mean(a["technology.wafer_usd"] < 0) < 0.55  # a range through 0 is linear


def _brute_front(f, senses):
    g = f * np.array([1.0 if s == "min" else -1.0 for s in senses])
    ok = ~np.isnan(g).any(axis=1)
    out = []
    for i in np.flatnonzero(ok):
        dominated = np.all(g[ok] <= g[i], axis=1) & np.any(g[ok] < g[i], axis=1)
        if not dominated.any():
            out.append(i)
    return np.array(out, dtype=int)


def test_pareto_front_hand_made_with_ties():
    pts = np.array([
        [1.0, 5.0],   # 0 front
        [2.0, 3.0],   # 1 front
        [2.0, 3.0],   # 2 front (a copy of 1: copies do not dominate each other)
        [3.0, 3.0],   # 3 dominated by 1 (same y, worse x)
        [4.0, 1.0],   # 4 front
        [1.0, 6.0],   # 5 dominated by 0 (same x, worse y)
        [5.0, 1.0],   # 6 dominated by 4
        [0.5, 10.0],  # 7 front
        [np.nan, 0.0],  # 8 never on the front
    ])
    np.testing.assert_array_equal(pareto_front(pts, ["min", "min"]), [0, 1, 2, 4, 7])
    # maximising the negated values is the same problem
    np.testing.assert_array_equal(pareto_front(-pts, {0: "max", 1: "max"}), [0, 1, 2, 4, 7])
    # a dict: infeasible rows (memory_margin < 0) are left out unless asked
    cols = {"tpot_s": pts[:, 0], "usd": pts[:, 1], "memory_margin": np.array([1, 1, -1, 1, -1, 1, 1, 1, 1.0])}
    np.testing.assert_array_equal(pareto_front(cols, {"tpot_s": "min", "usd": "min"}), [0, 1, 6, 7])
    np.testing.assert_array_equal(pareto_front(cols, {"tpot_s": "min", "usd": "min"}, feasible_only=False),
                                  [0, 1, 2, 4, 7])
    # one objective: every copy of the best
    np.testing.assert_array_equal(pareto_front(pts[:8], {1: "min"}), [4, 6])


@pytest.mark.parametrize("k, senses", [(2, ["min", "max"]), (3, ["min", "min", "max"]), (4, ["max"] * 4)])
def test_pareto_front_random_vs_brute_force(k, senses):
    rng = np.random.default_rng(k)
    for n, levels in [(300, 6), (300, None), (1, None)]:  # few levels: many ties
        f = rng.integers(0, levels, (n, k)).astype(float) if levels else rng.random((n, k))
        np.testing.assert_array_equal(pareto_front(f, senses), _brute_front(f, senses))


def test_pareto_front_large_is_fast_enough():
    f = np.random.default_rng(0).random((100_000, 3))
    idx = pareto_front(f, ["min", "min", "min"])
    assert 10 < idx.size < 2000
    sub = np.concatenate([idx, np.arange(500)])
    front_of_sub = set(sub[_brute_front(f[sub], ["min"] * 3)])
    assert set(idx) <= front_of_sub


def test_sweep_result_pareto_and_rows(grid):
    idx = grid.pareto({"tpot_s": "min", "usd_per_million_tokens": "min"})
    assert idx.size >= 2 and grid.feasible[idx].all()
    rows = grid.rows(idx)
    assert rows[0]["feasible"] is True and isinstance(rows[0]["tpot_s"], float)
    with pytest.raises(InputError, match="tpot_ms"):
        grid.pareto({"tpot_ms": "min"})


def test_csv_round_trip(grid, tmp_path):
    path = tmp_path / "sweep.csv"
    grid.to_csv(path)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:2] == [BW, "workload.batch"] and header[-1] == "feasible"
    back = SweepResult.from_csv(path)
    assert list(back.inputs) == list(grid.inputs) and list(back.metrics) == list(grid.metrics)
    for k, v in grid.columns.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)


def test_csv_flags_nan_rows(tmp_path):
    r = SweepResult({"workload.batch": np.array([1.0, 2.0])},
                    {"tpot_s": np.array([0.01, np.nan]), "memory_margin": np.array([0.5, 0.5])},
                    np.array([True, False]))
    path = tmp_path / "nan.csv"
    r.to_csv(path)
    lines = path.read_text().splitlines()
    assert lines[2].split(",")[-1] == "0" and "nan" in lines[2]
    np.testing.assert_array_equal(SweepResult.from_csv(path).feasible, [True, False])


def test_plot_written(grid, tmp_path):
    path = tmp_path / "front.png"
    grid.plot("tpot_s", "usd_per_million_tokens", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert axis_label("tpot_s") == "tpot_s [s]"
    assert axis_label(BW) == f"{BW} [bytes/s]"
    assert axis_label("hardware.flop_per_s_bf16") == "hardware.flop_per_s_bf16 [FLOP/s]"
    assert axis_label("embodied_kgco2e_per_chip") == "embodied_kgco2e_per_chip [kgCO2e per chip]"
    assert axis_label("usd_per_million_tokens") == "usd_per_million_tokens [$ per million tokens]"


@pytest.mark.parametrize("kwargs, words", [
    (dict(axes={"hardware.bandwith": [1.0]}), ["design path", "hardware.bandwith", "memory_bandwidth_bytes_per_s"]),
    (dict(axes={}), ["axes", "non-empty"]),
    (dict(axes={BW: []}), [BW, "non-empty 1-D"]),
    (dict(axes={BW: [1e12, np.nan]}), [BW, "finite"]),
    (dict(axes={BW: [1e12]}, metrics=["tpot_ms"]), ["metric", "tpot_ms", "tpot_s"]),
    (dict(axes={BW: (0.0, 1e12, "log")}, samples=8), [BW, "positive bounds"]),
    (dict(axes={BW: (-1.0, 1e12, "log")}, samples=8), [BW, "positive bounds"]),
    (dict(axes={BW: (2e12, 1e12)}, samples=8), [BW, "low <= high"]),
    (dict(axes={BW: [1e12]}, samples=0), ["samples", ">= 1"]),
    (dict(axes={BW: np.ones(2000), "workload.batch": np.ones(1000)}), ["2000 x 1000 = 2,000,000", "1,000,000"]),
    (dict(axes={BW: [1e12]}, chunk=0), ["chunk"]),
])
def test_bad_input_names_the_field(design, kwargs, words):
    with pytest.raises(InputError) as e:
        diffhw.sweep(design, progress=False, **kwargs)
    for w in words:
        assert w in str(e.value)


def test_bad_swept_values_mark_their_designs_infeasible_with_a_reason(design):
    r = diffhw.sweep(design, {BW: [1e12], "workload.batch": [8.0, -1.0, 0.0]}, progress=False)
    assert list(r.feasible) == [True, False, False]
    assert r.reasons[0] == ""
    assert "workload.batch" in r.reasons[1] and "> 0" in r.reasons[1]
    assert "workload.batch" in r.reasons[2]
    assert np.all(np.isfinite(r.metrics["tpot_s"][:1]))


def test_a_bad_leaf_no_axis_sweeps_is_an_input_error(design):
    bad = eqx.tree_at(lambda d: d.technology.pue, design, jnp.asarray(np.nan))
    with pytest.raises(InputError, match="technology.pue"):
        diffhw.sweep(bad, {BW: [1e12, 2e12]}, progress=False)
    # swept, it only marks the designs with a bad value
    r = diffhw.sweep(bad, {"technology.pue": [1.2, 0.5]}, progress=False)
    assert list(r.feasible) == [True, False] and "technology.pue" in r.reasons[1]


def test_pareto_bad_input():
    with pytest.raises(InputError, match="'min' or 'max'"):
        pareto_front(np.zeros((3, 2)), {0: "smallest"})
    with pytest.raises(InputError, match="column index"):
        pareto_front(np.zeros((3, 2)), {2: "min"})
    with pytest.raises(InputError, match="tpot_s"):
        pareto_front({"a": np.zeros(3)}, {"tpot_s": "min"})


def test_parse_vary_and_objectives():
    path, v = parse_vary(f"{BW}=1e12:8e12:4", sampling=False)
    assert path == BW
    np.testing.assert_allclose(v, [1e12, 2e12, 4e12, 8e12])
    np.testing.assert_allclose(parse_vary("workload.batch=0:30:4:lin", False)[1], [0, 10, 20, 30])
    np.testing.assert_array_equal(parse_vary("workload.batch=1,8,64", False)[1], [1, 8, 64])
    assert parse_vary(f"{BW}=1e12:8e12", sampling=True)[1] == (1e12, 8e12)
    assert parse_vary(f"{BW}=1e12:8e12:lin", sampling=True)[1] == (1e12, 8e12, "linear")
    assert parse_objectives("tpot_s:min,tokens_per_s_per_watt:max") == {"tpot_s": "min",
                                                                       "tokens_per_s_per_watt": "max"}
    for bad in [f"{BW}", f"{BW}=1e12:8e12", f"{BW}=8e12:1e12:3", f"{BW}=0:1:3:log", f"{BW}=a:b:3",
                f"{BW}=1:2:2.5"]:
        with pytest.raises(InputError, match="--vary"):
            parse_vary(bad, sampling=False)
    with pytest.raises(InputError, match="--vary"):
        parse_vary(f"{BW}=1:2:3", sampling=True)
    with pytest.raises(InputError, match="--pareto"):
        parse_objectives("tpot_s:lowest")


def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_cli_end_to_end(grid, tmp_path):
    csv_path, png_path = tmp_path / "s.csv", tmp_path / "s.png"
    base = ["sweep", "--model", "llama-3.1-8b", "--chips", "1", "--batch", "8", "--input-tokens", "512",
            "--output-tokens", "64", "--vary", f"{BW}=" + ",".join(map(str, BANDWIDTHS)),
            "--vary", "workload.batch=" + ",".join(map(str, BATCHES)), "--chunk", "4", "--no-progress"]
    rc, out, err = _cli([*base, "--csv", str(csv_path), "--plot", str(png_path), "--json"])
    assert rc == 0, err
    s = json.loads(out)
    assert s["designs"] == 9 and s["mode"] == "grid" and s["devices"] == 1
    assert s["feasible_designs"] == int(grid.feasible.sum())
    assert s["axes"][0] == {"path": BW, "low": 1e12, "high": 4e12, "points": 3}
    assert s["objectives"] == {"tpot_s": "min", "usd_per_million_tokens": "min"}
    want = grid.pareto(s["objectives"])
    assert s["pareto_front_size"] == want.size
    got = sorted((r[BW], r["workload.batch"]) for r in s["pareto_front"])
    assert got == sorted((grid[BW][i], grid["workload.batch"][i]) for i in want)
    np.testing.assert_allclose(sorted(r["tpot_s"] for r in s["pareto_front"]), sorted(grid["tpot_s"][want]),
                               rtol=1e-12)
    back = SweepResult.from_csv(csv_path)
    np.testing.assert_allclose(back["usd_per_million_tokens"], grid["usd_per_million_tokens"], rtol=1e-12)
    assert png_path.stat().st_size > 10_000
    rc, out, _ = _cli(base)
    assert rc == 0 and "Pareto front" in out and "9 designs" in out


@pytest.mark.parametrize("args, words", [
    (["--vary", "hardware.bandwith=1:2:3"], ["design path", "bandwith"]),
    (["--vary", f"{BW}=1e12:2e12"], ["--vary", "point count"]),
    ([], ["--vary", "at least one"]),
    (["--vary", f"{BW}=1e12:2e12:2", "--metrics", "tpot_ms"], ["metric", "tpot_ms"]),
    (["--vary", f"{BW}=1e12:2e12:2", "--pareto", "tpot_ms:min"], ["--pareto", "tpot_ms"]),
    (["--vary", f"{BW}=0:2e12:log", "--samples", "4"], ["--vary", "positive LOW and HIGH"]),
    (["--vary", "workload.batch=-4:8:2:lin"], ["workload.batch", "> 0"]),
])
def test_cli_bad_input_is_one_line_exit_2(args, words):
    rc, out, err = _cli(["sweep", "--model", "llama-3.1-8b", "--chips", "1", *args])
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("diffhw: error:")
    for w in words:
        assert w in err


_SHARDED = textwrap.dedent("""
    import json
    import sys

    import jax

    jax.config.update("jax_enable_x64", True)
    if sys.argv[1] == "multi":  # two processes with two CPU devices each
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"localhost:{sys.argv[2]}", num_processes=2, process_id=int(sys.argv[3]))
        assert jax.process_count() == 2 and jax.local_device_count() == 2
    import diffhw

    assert jax.device_count() == 4, jax.devices()
    d = diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=8, input_tokens=512, output_tokens=64)
    axes = {"hardware.memory_bandwidth_bytes_per_s": (1e12, 8e12), "workload.batch": (1.0, 8192.0),
            "hardware.flop_per_s_bf16": (2e14, 2e15)}
    kw = dict(samples=22, seed=7, chunk=8, metrics=["tpot_s", "ttft_s", "usd_per_million_tokens"],
              progress=False)
    cols = lambda r: {k: [float(x) for x in v] for k, v in r.columns.items()}
    sharded = diffhw.sweep(d, axes, **kw)  # every device: 3 chunks of 8, the last one padded
    out = {"sharded": cols(sharded), "devices": [sharded.devices]}
    if sys.argv[1] == "single":
        single = diffhw.sweep(d, axes, devices=jax.devices()[:1], **kw)
        out["single"], out["devices"] = cols(single), [sharded.devices, single.devices]
    print(json.dumps(out))
""")


def _run_script(args, devices_per_process):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}",
               JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, "-c", _SHARDED, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(p):
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_sharded_sweep_equals_unsharded_on_4_devices_and_2_processes():
    """One process with 4 forced host devices: the sharded sweep equals the one on a
    single device. Two processes (jax.distributed, 2 devices each, gloo collectives on
    CPU): each evaluates its half of every chunk and both return the same full result."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = str(sock.getsockname()[1])
    procs = [_run_script(["single"], 4)] + [_run_script(["multi", port, str(i)], 2) for i in range(2)]
    one, *multi = [_result(p) for p in procs]
    assert one["devices"] == [4, 1]  # the output arrays of each chunk spanned 4 devices, then 1
    sharded, single = one["sharded"], one["single"]
    assert set(sharded) == set(single) and len(sharded["tpot_s"]) == 22
    assert 0 < sum(sharded["feasible"]) < 22  # batches up to 8192: some do not fit
    for k in sharded:
        np.testing.assert_allclose(sharded[k], single[k], rtol=1e-12, atol=0, err_msg=k)
    for r in multi:
        assert r["devices"] == [4]
        for k in single:
            np.testing.assert_allclose(r["sharded"][k], single[k], rtol=1e-12, atol=0, err_msg=k)
