"""The CLI contract: names, JSON keys, and one clear line + exit 2 for bad input."""

import json
import os
import subprocess
import sys

import pytest

import diffhw._cli._main as cli_main
from diffhw._cli import _cache, _sensitivity, main
from diffhw._cli._common import design_from_args
from diffhw._errors import InputError
from diffhw._tools._sizing import _size as _size_module

REQUIRED_KEYS = {
    "tpot_s", "ttft_s", "e2e_latency_s", "output_tokens_per_s", "per_user_tokens_per_s",
    "memory_required_bytes", "memory_capacity_bytes", "fits", "max_batch", "bound",
    "step_time_breakdown_s",
}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_defaults_table(capsys):
    code, out, err = run(capsys, "evaluate")
    assert code == 0, err
    assert "llama-3.1-70b on 8 x h100-sxm" in out
    assert "batch 64, 2048 in / 256 out" in out
    assert "time per output token" in out


def test_evaluate_json_keys(capsys):
    code, out, _ = run(capsys, "evaluate", "--json")
    assert code == 0
    d = json.loads(out)
    assert REQUIRED_KEYS <= set(d)
    assert d["fits"] is True and d["bound"] in ("compute", "memory", "communication", "overhead")
    parts = d["step_time_breakdown_s"]
    assert parts["total"] == pytest.approx(d["tpot_s"])
    assert sum(parts[k] for k in ("compute", "memory", "communication", "overhead")) == pytest.approx(parts["total"])
    assert d["e2e_latency_s"] == pytest.approx(d["ttft_s"] + 255 * d["tpot_s"])


def test_evaluate_options(capsys):
    code, out, _ = run(
        capsys, "evaluate", "--hardware", "mi300x", "--model", "mixtral-8x7b", "--tp", "2", "--ep", "2",
        "--pp", "2", "--batch", "16", "--input-tokens", "512", "--output-tokens", "64",
        "--precision", "fp8", "--kv-precision", "fp8", "--json",
    )
    assert code == 0
    d = json.loads(out)
    assert (d["chips"], d["tp"], d["pp"], d["ep"]) == (4, 2, 2, 2)
    assert d["activation_precision"] == "fp8" and d["kv_precision"] == "fp8"


def test_max_throughput_respects_slo(capsys):
    code, out, _ = run(capsys, "max-throughput", "--tpot-slo-ms", "25", "--json")
    assert code == 0
    d = json.loads(out)
    assert "batch" in d and d["batch"] >= 1 and d["feasible"]
    assert d["tpot_s"] <= 0.025


def test_presets_listing(capsys):
    code, out, _ = run(capsys, "presets", "hardware")
    assert code == 0 and "h100-sxm" in out and "cerebras-wse-3" in out
    code, out, _ = run(capsys, "presets", "models", "--json")
    assert "deepseek-r1" in json.loads(out)["models"]


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["evaluate", "--hardware", "h100-sxn"], "did you mean h100-sxm"),
        (["evaluate", "--model", "llama-3.1-70"], "did you mean"),
        (["evaluate", "--batch", "-4"], "--batch = -4.0 is not allowed: between 1 and 1e+07"),
        (["evaluate", "--batch", "nan"], "a finite number"),
        (["evaluate", "--batch", "1e300"], "--batch = 1e+300 is not allowed: between 1 and 1e+07"),
        (["evaluate", "--batch", "0.5"], "a whole number (fractional, relaxed counts are for the Python API"),
        (["evaluate", "--input-tokens", "0"], "--input-tokens"),
        (["evaluate", "--output-tokens", "1e300"], "--output-tokens"),
        (["evaluate", "--shared-context-tokens", "1e300"], "--shared-context-tokens"),
        (["evaluate", "--model", "llama-2-7b", "--input-tokens", "8192"], "context window of 4,096 tokens"),
        (["evaluate", "--chips", "1e300"], "--chips"),
        (["evaluate", "--pue", "1e300"], "--pue"),
        (["evaluate", "--lifetime-years", "1e-300"], "--lifetime-years"),
        (["evaluate", "--electricity-usd-per-kwh", "1e300"], "--electricity-usd-per-kwh"),
        (["size", "--workload", "model=llama-3.1-8b,batch=0.5"], "--workload batch = 0.5"),
        (["size", "--constraint", "tpot_s<=1e300"], "magnitude at most 1e+30"),
        (["size", "--constraint", "tpot_s<=-1"], "an upper limit > 0"),
        (["size", "--objective", "tpot_s*nan"], "objective weight of tpot_s"),
        (["size", "--seed", "-1"], "--seed"),
        (["evaluate", "--tp", "3"], "a divisor of the model's 64 attention heads"),
        (["evaluate", "--chips", "7", "--tp", "8"], "--chips"),
        (["evaluate", "--ep", "2"], "dense model"),
        (["evaluate", "--hardware", "rtx-4090", "--batch", "1"], "weights need"),
        (["evaluate", "--model", "llama-3.1-405b", "--chips", "1", "--batch", "4"], "--chips = 1 is not allowed"),
        (["evaluate", "--batch", "100000"], "at most"),
        (["evaluate", "--hardware", "rtx-4090"], "weights need"),
        (["evaluate", "--precision", "fp7"], "precision"),
        (["max-throughput", "--tpot-slo-ms", "-1"], "--tpot-slo-ms"),
        (["evaluate", "--hardware", "/nonexistent/x.toml"], "existing file"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, expect):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert expect in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_hardware_files(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[compute]\nbf16_tflops = 100\n[memory]\ncapacity_gb = 80\nbandwidth_tb_s = -2\n"
                   "[network]\nlink_bandwidth_gb_s = 100\n")
    code, _, err = run(capsys, "evaluate", "--hardware", str(bad))
    assert code == 2 and "bandwidth_tb_s = -2 is not allowed" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    code, _, err = run(capsys, "evaluate", "--hardware", str(broken))
    assert code == 2 and "valid TOML" in err
    typo = tmp_path / "typo.toml"
    typo.write_text("[compute]\nbf16_tflop = 1\n")
    code, _, err = run(capsys, "evaluate", "--hardware", str(typo))
    assert code == 2 and "did you mean bf16_tflops" in err


def test_user_hardware_file_works(tmp_path, capsys):
    f = tmp_path / "mychip.toml"
    f.write_text(
        "name = 'mychip'\ndefault_chips = 8\n[compute]\nbf16_tflops = 2000\n"
        "[memory]\ncapacity_gb = 192\nbandwidth_tb_s = 8\n[network]\nlink_bandwidth_gb_s = 900\n"
    )
    code, out, _ = run(capsys, "evaluate", "--hardware", str(f), "--json")
    assert code == 0 and json.loads(out)["hardware"] == "mychip"


def test_bad_model_file(tmp_path, capsys):
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
                             "num_attention_heads": 32, "num_key_value_heads": 5, "vocab_size": 32000}))
    code, _, err = run(capsys, "evaluate", "--model", str(f))
    assert code == 2 and "num_key_value_heads" in err
    f.write_text("{not json")
    code, _, err = run(capsys, "evaluate", "--model", str(f))
    assert code == 2 and "valid config.json" in err


def test_console_script_entry_point():
    r = subprocess.run([sys.executable, "-m", "diffhw._cli", "evaluate", "--tp", "5"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_package_data_ships_every_data_file():
    """`pip install .` (the README's first command) must ship every data file the code
    reads: each file under diffhw/data matches a package-data glob of pyproject.toml."""
    import fnmatch
    import pathlib
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["diffhw"]
    data = root / "diffhw" / "data"
    files = [p.relative_to(root / "diffhw").as_posix() for p in data.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"not shipped by pip install: {missing}"


def test_console_keeps_compiled_programs_in_a_persistent_cache(tmp_path):
    """The console script (not `main`, which tests call in-process) keeps its compiled
    programs: diffhw's own (`diffhw._programs`, under ``programs/``) and JAX's
    persistent compilation cache for the rest, in $XDG_CACHE_HOME/diffhw/jax by default,
    moved by DIFFHW_CACHE_DIR. A second run reads what the first wrote, compiles and
    writes nothing new, and prints the same answer."""
    cmd = [sys.executable, "-m", "diffhw._cli", "evaluate", "--model", "llama-3.1-8b", "--chips", "1", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "DIFFHW_CACHE_DIR"}

    def run(**extra):
        r = subprocess.run(cmd, env={**env, **extra}, capture_output=True, text=True, timeout=600, check=False)
        assert r.returncode == 0, r.stderr
        return r.stdout

    first = run(XDG_CACHE_HOME=str(tmp_path / "xdg"))
    cache = tmp_path / "xdg" / "diffhw" / "jax"
    entries = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert any(e.startswith("programs/") and e.endswith(".program") for e in entries), entries
    assert any(e.startswith("jit_") for e in entries), entries  # JAX's, for the small programs
    assert run(XDG_CACHE_HOME=str(tmp_path / "xdg")) == first
    # a hit compiles and writes nothing new
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()) == entries
    # (an empty DIFFHW_CACHE_DIR turning the cache off: test_cache_dir_follows_diffhw_cache_dir)


def test_cache_dir_follows_diffhw_cache_dir(monkeypatch, tmp_path):
    cache_dir = _cache.cache_dir
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DIFFHW_CACHE_DIR", raising=False)
    assert cache_dir() == str(tmp_path / "xdg" / "diffhw" / "jax")
    monkeypatch.setenv("DIFFHW_CACHE_DIR", str(tmp_path / "moved"))
    assert cache_dir() == str(tmp_path / "moved")
    monkeypatch.setenv("DIFFHW_CACHE_DIR", "")
    assert cache_dir() is None
    # and then the console's set-up leaves JAX's cache alone
    calls = []
    monkeypatch.setattr(_cache.compilation_cache, "set_cache_dir", calls.append)
    monkeypatch.setattr(_cache.compilation_cache, "reset_cache", lambda: calls.append("reset"))
    monkeypatch.setattr(_cache, "enable_program_cache", lambda p: calls.append(("programs", p)))
    monkeypatch.setattr(_cache.jax.config, "update", lambda *a: calls.append(a))
    assert _cache.enable_compilation_cache() is None and calls == []
    monkeypatch.setenv("DIFFHW_CACHE_DIR", str(tmp_path / "moved"))
    assert _cache.enable_compilation_cache() == str(tmp_path / "moved")
    assert calls == [str(tmp_path / "moved"), ("jax_persistent_cache_min_compile_time_secs", 0.0),
                     ("programs", str(tmp_path / "moved" / "programs")), "reset"]


@pytest.mark.parametrize(("argv", "flag", "says"), [
    (["size", "--plot", "{tmp}/missing/x.png"], "--plot", "does not exist"),
    (["sensitivity", "--plot", "{tmp}/missing/t.png"], "--plot", "does not exist"),
    (["sweep", "--vary", "workload.batch=1,2", "--csv", "{tmp}"], "--csv", "not a folder"),
    (["sweep", "--vary", "workload.batch=1,2", "--pareto", "tpot_s:min,usd_per_million_tokens:min",
      "--plot", "{tmp}/front.gif"], "--plot", ".png"),
    (["calibrate", "data.csv", "--profile", "p", "--out", "{tmp}/missing/p.toml"], "--out", "does not exist"),
])
def test_output_paths_are_checked_before_any_work(capsys, tmp_path, monkeypatch, argv, flag, says):
    """A plot, CSV or profile file that cannot be written is refused at once (exit 2, one
    line naming the flag), not after the search or the fit that would have filled it."""
    def no_work(args):
        raise AssertionError("the command ran before its output path was checked")

    monkeypatch.setitem(cli_main.COMMANDS, argv[0], (cli_main.COMMANDS[argv[0]][0], no_work))
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and out == ""
    assert err.startswith(f"diffhw: error: {flag} = ") and says in err and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "flag"), [
    (["sensitivity", "--step", "2"], "--step"),
    (["sensitivity", "--step", "0"], "--step"),
    (["sensitivity", "--top", "0"], "--top"),
])
def test_sensitivity_options_are_checked_before_any_work(capsys, monkeypatch, argv, flag):
    """`--step` and `--top` were refused only after 20-30 s of compiling (issue 17)."""
    def no_work(*args, **kwargs):
        raise AssertionError("the sensitivities ran before the options were checked")

    monkeypatch.setattr(_sensitivity, "design_of_args", no_work)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith(f"diffhw: error: {flag} = ")


def test_whole_number_variable_without_a_whole_value_is_refused_before_the_search(capsys, monkeypatch):
    """`size --vary batch=0.5:0.9` was refused only after the search (issue 17)."""
    def no_search(*args, **kwargs):
        raise AssertionError("the search ran before the bounds were checked")

    monkeypatch.setattr(_size_module, "_search_relaxed", no_search)
    code, out, err = run(capsys, "size", "--vary", "batch=0.5:0.9")
    assert code == 2 and out == ""
    assert err == "diffhw: error: variable batch: bounds = '0.5:0.9' is not allowed: a range holding a whole number\n"


def test_size_defaults_follow_the_model(capsys):
    """The main job's ep = tp = 8 is derived, not a hidden default: a dense model gets
    ep = 1 (`size --hardware h100-sxm --model llama-3.1-70b` failed with "ep = 8 is not
    allowed"), an expert model ep = tp when its experts split that way, and --help says so."""
    def ep_of(*argv):
        args = cli_main._parser().parse_args(["size", *argv])
        return float(design_from_args(args, 1, ep_follows_tp=True)[3].ep)

    assert ep_of() == 8.0  # the main job: DeepSeek-V3 on the H200's 8 chips
    assert ep_of("--model", "llama-3.1-70b", "--hardware", "h100-sxm") == 1.0  # dense
    short = ("--input-tokens", "4096")  # the main job's 32k prompt is past Mixtral's 32k window
    assert ep_of("--model", "mixtral-8x7b", "--chips", "4", *short) == 4.0
    assert ep_of("--model", "mixtral-8x7b", "--chips", "16", *short) == 1.0  # 8 experts do not split 16 ways
    assert ep_of("--ep", "2") == 2.0
    with pytest.raises(SystemExit):
        main(["size", "--help"])
    assert "tp for an expert model" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command, module, name", [
    (["size", "--model", "llama-3.1-8b", "--chips", "1"], "diffhw._cli._size", "_prepare_size"),
    (["sweep", "--model", "llama-3.1-8b", "--chips", "1", "--vary", "workload.batch=1:8:2"],
     "diffhw._cli._sweep", "sweep"),
])
def test_long_commands_show_progress_on_a_terminal_and_none_with_json(capsys, monkeypatch, command, module,
                                                                      name):
    import importlib

    seen = []

    def stop(*args, progress=None, **kwargs):
        seen.append(progress)
        raise InputError("stopped", 0, "-")

    monkeypatch.setattr(importlib.import_module(module), name, stop)
    run(capsys, *command)
    run(capsys, *command, "--json")
    assert seen == [None, False]  # None: shown when stderr is a terminal


def test_the_sizing_progress_line_names_each_step(capsys):
    from diffhw._tools._sizing._size import _Steps

    s = _Steps(True, ("baseline", "search", "rounding", "report"))
    for _ in range(4):
        s.next()
    s.close()
    err = capsys.readouterr().err
    assert "size: step" in err and "search" in err
    quiet = _Steps(False, ("a", "b"))
    quiet.next()
    quiet.close()
    assert capsys.readouterr().err == ""
