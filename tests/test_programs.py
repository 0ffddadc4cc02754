"""The cache of compiled programs on disk (`diffhw._programs`): what it keeps, what it
refuses, and that a program loaded from it answers as a freshly compiled one."""

import json
import pickle
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import _programs
from diffhw._jit import filter_jit


@pytest.fixture
def cache(tmp_path):
    diffhw.enable_program_cache(tmp_path / "programs")
    yield tmp_path / "programs"
    diffhw.enable_program_cache(None)


def _files(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".program")


@filter_jit
def _scaled_sum(x, scale, label):
    return {"sum": jnp.sum(x) * scale, "label_length": jnp.asarray(len(label))}


def _compiles(monkeypatch):
    """Count the programs the cache compiles (a load compiles none)."""
    count = []
    compile_ = _programs._compile
    monkeypatch.setattr(_programs, "_compile", lambda *a: count.append(1) or compile_(*a))
    return count


def test_off_by_default_and_switchable(tmp_path):
    assert diffhw.program_cache_dir() is None
    assert diffhw.enable_program_cache(tmp_path / "p") == str(tmp_path / "p")
    assert diffhw.program_cache_dir() == str(tmp_path / "p") and (tmp_path / "p").is_dir()
    assert diffhw.enable_program_cache(None) is None and diffhw.program_cache_dir() is None
    assert diffhw.enable_program_cache("") is None


def test_a_program_is_kept_and_loaded_with_the_same_answer(tmp_path, monkeypatch):
    design = diffhw.from_presets(hardware="h100-sxm", model="llama-3.1-8b", chips=1, batch=8)
    other = diffhw.set_values(design, {"workload.batch": 32.0})
    plain, plain_other = (diffhw.design_values(d, checked=False) for d in (design, other))
    cache = tmp_path / "programs"
    diffhw.enable_program_cache(cache)
    try:
        compiles = _compiles(monkeypatch)
        first = diffhw.design_values(design, checked=False)
        assert len(_files(cache)) == 1 and compiles == [1]
        diffhw.enable_program_cache(cache)  # as a new process: nothing loaded in memory
        again = diffhw.design_values(design, checked=False)
        assert compiles == [1], "a second process must load, not compile"
        # other numbers with the same structure: the same program
        again_other = diffhw.design_values(other, checked=False)
        assert len(_files(cache)) == 1 and compiles == [1]
    finally:
        diffhw.enable_program_cache(None)
    for k in plain:
        np.testing.assert_array_equal(np.asarray(first[k]), np.asarray(plain[k]))
        np.testing.assert_array_equal(np.asarray(again[k]), np.asarray(plain[k]))
        np.testing.assert_array_equal(np.asarray(again_other[k]), np.asarray(plain_other[k]))


def test_module_outputs_come_back_as_modules(cache):
    design = diffhw.from_presets(hardware="h100-sxm", model="llama-3.1-8b", chips=1, batch=8)
    diffhw.evaluate_design(design, checked=False)
    assert len(_files(cache)) == 1
    diffhw.enable_program_cache(cache)
    m = diffhw.evaluate_design(design, checked=False)
    assert isinstance(m, diffhw.Metrics) and float(m.tpot_s) > 0


def test_static_structure_and_shapes_are_in_the_key(cache):
    x = jnp.ones(3)
    _scaled_sum(x, 2.0, "ab")
    _scaled_sum(x, 2.0, "ab")
    assert len(_files(cache)) == 1
    assert float(_scaled_sum(x, 3.0, "ab")["sum"]) == 9.0  # a Python number is static
    assert int(_scaled_sum(x, 3.0, "abc")["label_length"]) == 3
    assert float(_scaled_sum(jnp.ones(4), 3.0, "abc")["sum"]) == 12.0  # another shape
    assert float(_scaled_sum(np.ones(4), 3.0, "abc")["sum"]) == 12.0  # NumPy float64: JAX's dtype
    assert len(_files(cache)) == 4
    design = diffhw.from_presets(hardware="h100-sxm", model="llama-3.1-8b", chips=1, batch=8)
    other = diffhw.from_presets(hardware="h100-sxm", model="llama-3.1-70b", chips=1, batch=8)
    a, b = (float(diffhw.design_values(d, checked=False)["memory_required_bytes"]) for d in (design, other))
    assert b > 5 * a  # a different model is a different program
    assert len(_files(cache)) == 6


def test_64_bit_mode_is_in_the_key(cache):
    x = np.ones(3)
    with jax.enable_x64(False):
        assert _scaled_sum(x, 1.0, "a")["sum"].dtype == jnp.float32
    with jax.enable_x64(True):
        assert _scaled_sum(x, 1.0, "a")["sum"].dtype == jnp.float64
    assert len(_files(cache)) == 2


def test_a_damaged_file_is_replaced(cache, monkeypatch):
    x = jnp.arange(3.0)
    _scaled_sum(x, 1.0, "a")
    (path,) = cache.iterdir()
    path.write_bytes(b"not a program")
    diffhw.enable_program_cache(cache)
    compiles = _compiles(monkeypatch)
    assert float(_scaled_sum(x, 1.0, "a")["sum"]) == 3.0 and compiles == [1]
    with open(path, "rb") as f:
        assert pickle.load(f)["format"] == _programs.FORMAT


class _Opaque:
    pass


@filter_jit
def _with_static(x, thing):
    return x + 1.0


def test_what_it_cannot_describe_runs_uncached(cache):
    assert float(_with_static(jnp.ones(()), _Opaque())) == 2.0  # repr names an address
    assert float(_with_static(jnp.ones(()), len)) == 2.0  # a callable
    assert _files(cache) == []


@filter_jit
def _returns_a_number(x):
    return x * 2.0, 3


def test_a_non_array_output_runs_uncached(cache):
    y, n = _returns_a_number(jnp.ones(2))
    assert n == 3 and isinstance(n, int) and float(y[0]) == 2.0
    assert _files(cache) == []


def test_a_program_with_a_host_callback_is_not_kept(cache):
    """The traced value checks raise through a callback: a loaded copy would lack it."""
    design = diffhw.from_presets(hardware="h100-sxm", model="llama-3.1-8b", chips=1, batch=8)
    assert float(diffhw.design_values(design)["tpot_s"]) > 0  # checked inside: a callback
    assert _files(cache) == []
    out = eqx.filter_jit(lambda d: diffhw.design_values(d, checked=False)["tpot_s"])(design)
    assert float(out) > 0 and _files(cache) == []  # inside a user's jit: part of the user's program
    diffhw.design_values(design, checked=False)
    assert len(_files(cache)) == 1
    assert not _programs._self_contained(
        jax.jit(lambda x: jax.pure_callback(np.sin, x, x)).lower(jnp.ones(())).compile())


def test_the_folder_is_trimmed_to_its_limit(cache, monkeypatch):
    monkeypatch.setattr(_programs, "MAX_BYTES", 1)
    _scaled_sum(jnp.ones(2), 1.0, "a")
    _scaled_sum(jnp.ones(3), 1.0, "a")
    assert len(_files(cache)) <= 1


def test_later_processes_load_and_answer_the_same(tmp_path):
    """Processes as runs of a script, with JAX's persistent cache on as the CLI has it:
    the second loads what the first kept. The third compiles again (its program file
    removed) while JAX's cache holds the program: the executable it keeps must still
    run when the fourth loads it (one taken from JAX's cache serialises without its
    code)."""
    script = (
        "import json, sys, jax, diffhw\n"
        "from diffhw import _programs\n"
        "jax.config.update('jax_compilation_cache_dir', sys.argv[1] + '/jax')\n"
        "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)\n"
        "diffhw.enable_program_cache(sys.argv[1] + '/programs')\n"
        "n = []\n"
        "c = _programs._compile\n"
        "_programs._compile = lambda *a: n.append(1) or c(*a)\n"
        "d = diffhw.from_presets(hardware='h100-sxm', model='llama-3.1-8b', chips=1, batch=8)\n"
        "v = diffhw.design_values(d, checked=False)\n"
        "print(json.dumps({'compiled': len(n), 'tpot_s': float(v['tpot_s'])}))\n"
    )

    def run():
        r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                           timeout=600, check=False)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["compiled"] == 1 and second["compiled"] == 0
    for p in (tmp_path / "programs").iterdir():
        p.unlink()
    third, fourth = run(), run()
    assert third["compiled"] == 1 and fourth["compiled"] == 0
    assert first["tpot_s"] == second["tpot_s"] == third["tpot_s"] == fourth["tpot_s"]


def test_a_loaded_program_that_fails_to_run_is_dropped(cache, monkeypatch):
    x = jnp.arange(3.0)
    assert float(_scaled_sum(x, 2.0, "a")["sum"]) == 6.0
    assert len(_files(cache)) == 1
    diffhw.enable_program_cache(cache)  # a new process

    def broken(*a, **k):
        def run(*arrays):
            raise RuntimeError("NOT_FOUND: Function fusion not found")
        return run

    monkeypatch.setattr(_programs.serialize_executable, "deserialize_and_load", broken)
    assert float(_scaled_sum(x, 2.0, "a")["sum"]) == 6.0  # answered by a plain jit
    assert _files(cache) == []  # and the file is gone


def test_a_prepared_program_compiles_in_the_background_once(cache, monkeypatch):
    compiles = _compiles(monkeypatch)
    x = jnp.arange(3.0)
    _scaled_sum.prepare(jnp.zeros(3), 2.0, "ab")  # values do not matter, structure does
    _scaled_sum.prepare(jnp.ones(3), 2.0, "ab")  # announced twice: still one program
    out = _scaled_sum(x, 2.0, "ab")
    assert compiles == [1] and len(_files(cache)) == 1
    assert float(out["sum"]) == 6.0 and int(out["label_length"]) == 2
    _scaled_sum.prepare(jnp.zeros(4), 2.0, "ab")  # another shape: another program
    assert float(_scaled_sum(jnp.ones(4), 2.0, "ab")["sum"]) == 8.0 and compiles == [1, 1]


def test_prepare_does_nothing_while_the_cache_is_off(monkeypatch):
    assert diffhw.program_cache_dir() is None
    compiles = _compiles(monkeypatch)
    _scaled_sum.prepare(jnp.zeros(3), 2.0, "ab")
    assert compiles == [] and not _programs._loaded


@filter_jit
def _fails_to_trace(x, flag):
    if flag:
        raise ValueError("a trace error")
    return x + 1.0


def test_a_failed_background_compile_raises_where_the_call_is_made(cache):
    _fails_to_trace.prepare(jnp.zeros(2), True)
    with pytest.raises(ValueError, match="a trace error"):
        _fails_to_trace(jnp.zeros(2), True)
    np.testing.assert_array_equal(np.asarray(_fails_to_trace(jnp.zeros(2), False)), [1.0, 1.0])


def test_jax_cache_is_bypassed_only_in_the_compiling_thread(cache):
    from jax._src import compilation_cache as jax_cache

    backend = jax.devices()[0].client
    seen = {}
    with _programs._past_jax_cache():
        seen["inside"] = jax_cache.is_cache_used(backend)
        import threading

        t = threading.Thread(target=lambda: seen.update(other=jax_cache.is_cache_used(backend)))
        t.start()
        t.join()
    assert seen["inside"] is False
    assert seen["other"] == jax_cache.is_cache_used(backend) == _programs._JAX_IS_CACHE_USED(backend)
