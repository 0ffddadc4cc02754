import os

# The tests' own jax.jit/grad programs (and the CLI and notebook subprocesses) compile
# with the options diffhw's entry points use (diffhw/_jit.py): half the compile time.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0")

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
