"""Property tests of bad input (hypothesis, derandomised so every run draws the same
cases): random command lines, and random mutations of real preset files and Hugging Face
configs. Every case ends in exit 0 with strict JSON (no NaN, no Infinity), or exit 2 with
one line on stderr; never a traceback.

`evaluate` runs for real. The commands whose work is long (`max-throughput`, `size`,
`sensitivity`, `sweep`, `calibrate`) are stopped where their first compiled evaluation
would begin (`_WORK`): reaching it is a pass, and proves that every check ran before it.
"""

import contextlib
import io
import json
import math
import re
from pathlib import Path

import jax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffhw._cli import main
from diffhw._io._files import DATA


class WorkStarted(Exception):
    """Raised where a long command's first compiled evaluation would begin."""


def _stop(*args, **kwargs):
    raise WorkStarted


#: Where each long command's work begins: (module, name) replaced by `_stop`.
_WORK = [
    ("diffhw._cli._evaluate", "max_throughput"),
    ("diffhw._tools._sizing._size", "_baseline"),
    ("diffhw._cli._sensitivity", "design_values"),
    ("diffhw._cli._sensitivity", "sensitivity"),
    ("diffhw._tools._sweep", "_chunk_jit"),
    ("diffhw._tools._calibrate", "_fit_jit"),
]

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _long_work_stops():
    import importlib

    with pytest.MonkeyPatch.context() as mp:
        for module, name in _WORK:
            mp.setattr(importlib.import_module(module), name, _stop)
        yield


def _strict(constant):
    raise AssertionError(f"{constant} in JSON output")


def run_cli(argv):
    """(exit status or "work", stdout, stderr) of ``diffhw *argv``, in-process."""
    out, err = io.StringIO(), io.StringIO()
    # in float32, as the `diffhw` command runs (the suite's conftest turns on float64)
    with jax.enable_x64(False), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
        except WorkStarted:
            code = "work"
    return code, out.getvalue(), err.getvalue()


def _finite(x):
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    return True


def check_outcome(argv, code, out, err):
    """The contract: exit 2 with one line, or exit 0 with strict, finite JSON."""
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("diffhw"), (argv, err)
        assert out == "", (argv, out)
    elif code == 0:
        assert err == "", (argv, err)
        if "--json" in argv:
            d = json.loads(out, parse_constant=_strict)
            assert _finite(d), (argv, out)
    else:
        assert code == "work", (argv, code, err)


# ---- random command lines

_NUMBERS = st.sampled_from(["1", "2", "8", "16", "64", "128", "2048", "4096", "0", "-1", "0.5", "1e7", "1e8", "1e9", "1e300", "1e-300",
                            "nan", "inf", "-inf", "x", "", "3", "7", "1e-3", "100000"])
_NUMERIC = ["--batch", "--chips", "--tp", "--pp", "--dp", "--ep", "--input-tokens", "--output-tokens",
            "--shared-context-tokens", "--electricity-usd-per-kwh", "--pue", "--grid-gco2e-per-kwh",
            "--lifetime-years"]
_NAMES = {
    "--hardware": ["h100-sxm", "l4", "h100-sxn", "/no/such.toml", "", "b200-hbf"],
    "--model": ["llama-3.1-8b", "mixtral-8x7b", "llama-3.1-70", "/no/such.json", ""],
    "--precision": ["bf16", "fp8", "int4", "fp7", "3", "0", ""],
    "--kv-precision": ["fp8", "int8", "xx"],
    "--profile": ["default", "nope"],
}
_COMMAND_FLAGS = {
    "evaluate": [],
    "max-throughput": [("--tpot-slo-ms", _NUMBERS), ("--ttft-slo-ms", _NUMBERS)],
    "size": [("--steps", _NUMBERS), ("--starts", _NUMBERS), ("--outer", _NUMBERS), ("--top", _NUMBERS),
             ("--tpot-slo-ms", _NUMBERS), ("--area-budget-mm2", _NUMBERS), ("--power-budget-w", _NUMBERS),
             ("--vary", st.sampled_from(["batch=1:64", "batch=0.5:0.9", "memory_bandwidth=1e12:2e13", "x=1:2",
                                         "batch=64:1", "batch=1:nan", "tp=1:8:int", "chips"])),
             ("--workload", st.sampled_from(["model=llama-3.1-8b,batch=0.5", "model=llama-3.1-8b,share=0",
                                             "batch=1e300", "nokey=1", "model=nope", "chips=1,share=2"])),
             ("--constraint", st.sampled_from(["tpot_s<=0.05", "nope<=1", "tpot_s<=x", "tpot_s<=-1",
                                               "tpot_s<=1e300", "peak_power_w>=nan"])),
             ("--objective", st.sampled_from(["usd_per_million_tokens", "tpot_s*2,energy_per_token_j", "nope",
                                              "tpot_s*nan", "tpot_s*-1"])),
             ("--seed", _NUMBERS),
             ("--plot", st.sampled_from(["/no/dir/x.png", "x.txt"]))],
    "sensitivity": [("--step", _NUMBERS), ("--top", _NUMBERS),
                    ("--metric", st.sampled_from(["tpot_s", "ttft_s", "nope"])),
                    ("--plot", st.sampled_from(["/no/dir/t.png", "t.docx"]))],
    "sweep": [("--vary", st.sampled_from(["hardware.memory_bandwidth_bytes_per_s=1e12:2e12:3",
                                          "workload.batch=-4:8:2:lin", "workload.batch=1:1e300:2",
                                          "nope=1:2:2", "workload.batch=1:8", "workload.batch=1,x"])),
              ("--samples", _NUMBERS), ("--chunk", _NUMBERS), ("--top", _NUMBERS),
              ("--pareto", st.sampled_from(["tpot_s:min,usd_per_million_tokens:min", "tpot_s:up", "nope:min"])),
              ("--csv", st.sampled_from(["/no/dir/x.csv"]))],
}


@st.composite
def command_lines(draw):
    cmd = draw(st.sampled_from(["evaluate", "evaluate", *sorted(_COMMAND_FLAGS)]))
    argv = [cmd]
    options = [(f, _NUMBERS) for f in _NUMERIC] + [(f, st.sampled_from(v)) for f, v in _NAMES.items()]
    options += _COMMAND_FLAGS[cmd]
    if cmd == "sweep":  # without --vary it stops at once
        argv += ["--vary", draw(dict(_COMMAND_FLAGS["sweep"])["--vary"])]
    for flag, values in draw(st.lists(st.sampled_from(options), max_size=4, unique_by=lambda o: o[0])):
        argv += [flag, draw(values)]
    if draw(st.booleans()):
        argv.append("--json")
    return argv


@settings(max_examples=70, **SETTINGS)
@given(command_lines())
def test_random_command_lines(argv):
    check_outcome(argv, *run_cli(argv))


@pytest.mark.parametrize("argv", [
    ["evaluate", "--input-tokens", "1e8", "--output-tokens", "1e8", "--json"],
    ["evaluate", "--batch", "1e7", "--model", "llama-3.1-8b", "--json"],
    ["evaluate", "--shared-context-tokens", "1e8", "--json"],
    ["evaluate", "--chips", "1e6", "--model", "llama-3.1-8b", "--json"],
    ["evaluate", "--lifetime-years", "0.1", "--electricity-usd-per-kwh", "10", "--pue", "5", "--json"],
])
def test_the_edges_of_every_range(argv):
    check_outcome(argv, *run_cli(argv))


# ---- random mutations of real files

_LITERALS = ['"x"', "5", "-1", "0", "1e300", "1e-300", "nan", "inf", "-inf", "true", "[1, 2]", '{ a = 1 }',
             '""', "0.5", "9223372036854775807"]


@st.composite
def mutated_toml(draw, text):
    lines = text.splitlines()
    assignments = [i for i, ln in enumerate(lines) if re.match(r"\s*[A-Za-z_]+\s*=", ln)]
    kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "truncate", "binary", "empty"]))
    if kind == "empty":
        return ""
    if kind == "binary":
        return text[: draw(st.integers(0, len(text)))] + "\x00\xff\xfe\x81"
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    i = draw(st.sampled_from(assignments))
    if kind == "delete":
        return "\n".join(lines[:i] + lines[i + 1:])
    key = lines[i].split("=", 1)[0]
    return "\n".join(lines[:i] + [f"{key}= {draw(st.sampled_from(_LITERALS))}"] + lines[i + 1:])


_H100 = (DATA / "hardware" / "h100-sxm.toml").read_text()
_HBF = (DATA / "hardware" / "b200-hbf.toml").read_text()


@settings(max_examples=40, **SETTINGS)
@given(st.one_of(mutated_toml(_H100), mutated_toml(_HBF)))
def test_mutated_hardware_files(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("hw") / "chip.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
    argv = ["evaluate", "--hardware", path, "--model", "llama-3.1-8b", "--json"]
    check_outcome(argv, *run_cli(argv))


@st.composite
def based_on_chains(draw):
    """Files each ``based_on`` the one before (the first on a preset), each overriding
    one value, sometimes badly; sometimes the chain loops back on itself."""
    depth = draw(st.integers(1, 8))
    overrides = [draw(st.sampled_from(['[memory]\nbandwidth_tb_s = 4.0', '[compute]\nbf16_tflops = 800',
                                       '[network]\nlink_latency_us = 0.3', '[memory]\ncapacity_gb = "x"',
                                       '[power]\ntdp_w = -5', 'name = 5', 'based_on = 7', '[memory]\ntype = 3']))
                 for _ in range(depth)]
    loop = draw(st.booleans()) and depth > 1
    return overrides, loop


@settings(max_examples=25, **SETTINGS)
@given(based_on_chains())
def test_based_on_chains(tmp_path_factory, chain):
    overrides, loop = chain
    folder = tmp_path_factory.mktemp("chain")
    paths = [folder / f"c{i}.toml" for i in range(len(overrides))]
    for i, (path, body) in enumerate(zip(paths, overrides, strict=True)):
        base = "h100-sxm" if i == 0 and not loop else str(paths[i - 1])
        path.write_text(f'based_on = "{base}"\nname = "c{i}"\n{body}\n')
    argv = ["evaluate", "--hardware", paths[-1], "--model", "llama-3.1-8b", "--json"]
    check_outcome(argv, *run_cli(argv))


_BAD_JSON_VALUES = st.sampled_from(["x", -1, 0, 0.5, 1e300, 1e-300, math.nan, math.inf, True, None, [1], {"a": 1},
                                    10**30, 3, 7, 1e9])


@st.composite
def mutated_config(draw):
    cfg = json.loads((DATA / "models" / draw(st.sampled_from(["llama-3.1-8b.json", "mixtral-8x7b.json"])))
                     .read_text())
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(cfg)))
        if draw(st.integers(0, 4)) == 0:
            cfg.pop(key)
        else:
            cfg[key] = draw(_BAD_JSON_VALUES)
    return json.dumps(cfg)  # NaN and Infinity as JavaScript literals, as a careless tool writes them


@settings(max_examples=25, **SETTINGS)
@given(mutated_config())
def test_mutated_model_configs(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("hf") / "config.json"
    path.write_text(text)
    argv = ["evaluate", "--model", path, "--hardware", "h100-sxm", "--chips", "8", "--json"]
    check_outcome(argv, *run_cli(argv))


def test_the_long_commands_are_stopped_where_their_work_begins():
    """The stops of `_WORK` are reached by a valid command line (else the fuzzing above
    would run the long work, or test nothing)."""
    for argv in (["size", "--model", "llama-3.1-8b", "--chips", "1"], ["sensitivity"],
                 ["sweep", "--vary", "workload.batch=1:8:2"], ["max-throughput"]):
        assert run_cli(argv)[0] == "work", argv
    data = Path(__file__).parent / "data"
    csvs = sorted(data.rglob("*.csv")) + sorted((DATA / "calibration").glob("*.csv"))
    assert run_cli(["calibrate", csvs[0]])[0] == "work"
