import os

# The tests' own jax.jit/grad programs (and the CLI and notebook subprocesses) compile
# with the options diffhw's entry points use (diffhw/_jit.py): half the compile time.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0")

# One JAX persistent compilation cache for the whole run, shared by the two xdist workers
# and every subprocess (notebook kernels, sweeps): a program one of them compiled is
# loaded, not compiled, by the others. The folder is new and empty each run (a run starts
# cold, as on CI) and removed at the end by the process that made it (the controller,
# whose environment the workers inherit). Tests of the caches themselves set their own
# folders (test_programs, test_cli, test_experiments).
if "DIFFHW_TESTS_JAX_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["DIFFHW_TESTS_JAX_CACHE"] = tempfile.mkdtemp(prefix="diffhw-tests-jax-")
    atexit.register(shutil.rmtree, os.environ["DIFFHW_TESTS_JAX_CACHE"], ignore_errors=True)
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["DIFFHW_TESTS_JAX_CACHE"]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.3"

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

import diffhw


@pytest.fixture(scope="session")
def h100():
    return diffhw.presets.hardware("h100-sxm")


@pytest.fixture(scope="session")
def llama70b():
    return diffhw.presets.model("llama-3.1-70b")


class CliRun:
    """What one in-process `diffhw` command did: exit status and captured output."""

    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def _cli(capsys):
    """Run ``diffhw ARGS...`` in this process (programs compiled by earlier tests are
    reused): ``_cli("serve", "--json")`` -> `CliRun`."""
    from diffhw._cli._main import main

    def run(*args):
        code = main(list(args))
        out = capsys.readouterr()
        return CliRun(code, out.out, out.err)

    return run


def tiny_model():
    """A 2-layer dense model small enough to check rooflines by hand."""
    return diffhw.Transformer(
        d_model=1024, head_dim=128, ffn_dim=4096, vocab_size=1000, expert_ffn_dim=0,
        shared_expert_ffn_dim=0, sliding_window=1e12, q_lora_rank=0, kv_lora_rank=0,
        qk_nope_dim=0, qk_rope_dim=0, v_head_dim=0, n_layers=2, n_heads=8, n_kv_heads=8,
        n_experts=0, experts_per_token=0, n_shared_experts=0, gated_ffn=False,
        tied_embeddings=True, mla=False, layer_groups=((False, False, 2),),
    )


def ideal_profile(**overrides):
    """A profile with no losses: peaks reached, no overheads (for hand-checked rooflines)."""
    values = dict(
        bandwidth_efficiency=1.0,
        compute_efficiency=1.0,
        compute_half_rows=0.0,
        network_efficiency=1.0,
        collective_latency_s=0.0,
        step_overhead_s=0.0,
        layer_overhead_s=0.0,
        memory_utilization=1.0,
        max_batched_tokens=1e9,
    )
    values.update(overrides)
    return diffhw.Profile(**values, name="ideal")


#: Seconds each test module took on the 2-core machine (a full run on 2026-12-07, after issue 15).
#: Modules run slowest first, so the two workers (`-n 2 --dist loadscope`, one module per
#: worker at a time) finish together instead of one waiting on a long module that
#: started last. A module missing here runs last; the numbers only order the modules.
MODULE_SECONDS = {  # summed --durations=0 times per module (2026-12-07, a loaded machine, / 3)
    "test_serving_goal": 69, "test_notebooks": 55, "test_experiments": 49, "test_sensitivity": 37,
    "test_memory": 30, "test_network": 28, "test_serving": 28, "test_calibrate": 27, "test_sizing": 27,
    "test_api": 25, "test_near_memory": 23, "test_programs": 22, "test_cli": 18, "test_sweep": 14,
    "test_serving_spread": 13, "test_topology": 12, "test_economics": 12, "test_fuzz": 11, "test_routing": 10,
    "test_gradients": 9, "test_design": 8, "test_trends": 7, "test_profile_limits": 4, "test_min_chips": 4,
    "test_quant_formats": 4, "test_beam": 3, "test_moe_kernels": 3, "test_stack_profiles": 2, "test_jit": 2,
    "test_roofline": 2, "test_accuracy_rows": 1, "test_layouts": 1, "test_loader_input": 1,
    "test_architecture": 1, "test_model": 1, "test_model_input": 1, "test_smooth": 1, "test_config": 1,
    "test_measurements": 1,
}


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.path.stem, 0))  # stable: order within a module kept
