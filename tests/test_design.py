"""The Design pytree: dotted paths, flat metrics, exact (tau = 0) evaluation."""

import jax
import jax.numpy as jnp
import pytest

import diffhw
from diffhw import Design, InputError


@pytest.fixture(scope="module")
def design():
    return diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1, batch=8, input_tokens=512, output_tokens=64)


def test_get_and_set_paths(design):
    bw = diffhw.get_value(design, "hardware.memory_bandwidth_bytes_per_s")
    assert float(bw) == pytest.approx(3.35e12)
    d2 = diffhw.set_values(design, {"hardware.memory_bandwidth_bytes_per_s": 2 * bw, "workload.batch": 4.0,
                                    "technology.wafer_usd": 1.0})
    assert float(diffhw.get_value(d2, "hardware.memory_bandwidth_bytes_per_s")) == pytest.approx(6.7e12)
    assert float(d2.workload.batch) == 4.0
    assert float(d2.technology.wafer_usd) == 1.0
    assert float(design.workload.batch) == 8.0  # unchanged


def test_array_entry_and_tuple_paths():
    d = diffhw.from_presets("b200-hbf", "llama-3.1-8b", chips=1, batch=1)
    cap = diffhw.get_value(d, "hardware.tiers[0].capacity_bytes")
    assert float(cap) > 1e12
    f = diffhw.get_value(d, "hardware.placement.fractions[0,1]")
    d2 = diffhw.set_values(d, {"hardware.placement.fractions[0,1]": 0.5})
    assert float(diffhw.get_value(d2, "hardware.placement.fractions[0,1]")) == 0.5
    assert float(diffhw.get_value(d, "hardware.placement.fractions[0,1]")) == float(f)


@pytest.mark.parametrize("path, words", [
    ("hardware.bandwith", "memory_bandwidth_bytes_per_s"),
    ("hardware.tiers[0].capacity_bytes", "None"),  # h100 has no extra tier: index error
    ("hardware.profile", "float leaf"),
    ("", "dotted path"),
    ("hardware..x", "field"),
    ("hardware.near_memory.flop_per_s", "None"),
])
def test_bad_paths_name_the_path(design, path, words):
    with pytest.raises(InputError) as e:
        diffhw.get_value(design, path)
    assert "design path" in str(e.value)
    if words != "None":
        assert words in str(e.value)


def test_set_values_under_grad_and_vmap(design):
    def tpot(bw):
        d = diffhw.set_values(design, {"hardware.memory_bandwidth_bytes_per_s": bw})
        return diffhw.design_values(d)["tpot_s"]

    g = jax.grad(tpot)(jnp.asarray(3.35e12))
    assert jnp.isfinite(g) and g < 0
    v = jax.vmap(tpot)(jnp.asarray([2e12, 4e12]))
    assert v[0] > v[1]


def test_metric_names_match_values(design):
    values = diffhw.design_values(design)
    assert set(values) == set(diffhw.metric_names(design))
    assert float(values["system_area_mm2"]) == pytest.approx(float(values["chip_area_mm2"]) * float(values["chips"]))
    no_tech = Design(design.hardware, design.model, design.workload, design.parallelism, None)
    assert set(diffhw.design_values(no_tech)) == set(diffhw.metric_names(no_tech))
    assert "usd_per_million_tokens" not in diffhw.metric_names(no_tech)


def test_exact_evaluation_is_the_hard_limit(design):
    """tau = 0 is the hard max: between the smooth value and the tau -> 0 limit."""
    smooth = diffhw.design_values(design, 0.02)
    sharp = diffhw.design_values(design, 1e-4)
    exact = diffhw.design_values(design, 0)
    for k in ("tpot_s", "ttft_s", "chip_area_mm2", "energy_per_token_j"):
        assert float(exact[k]) == pytest.approx(float(sharp[k]), rel=2e-3)
        assert float(exact[k]) <= float(smooth[k]) * (1 + 1e-12)
    assert all(bool(jnp.isfinite(v)) for v in exact.values())


def test_placement_share_keeps_rows_summing_to_one():
    d = diffhw.from_presets("b200-hbf", "llama-3.1-8b", chips=1, batch=1)
    before = float(diffhw.get_value(d, "placement.kv_cache[1]"))
    d2 = diffhw.set_values(d, {"placement.kv_cache[1]": 0.3})
    frac = d2.hardware.placement.fractions
    assert float(frac[1, 1]) == pytest.approx(0.3)
    assert jnp.allclose(jnp.sum(frac, axis=1), 1.0)
    assert float(diffhw.get_value(d, "placement.kv_cache[1]")) == before  # the original is untouched
    # From hardware with no placement at all (everything in main memory).
    h = diffhw.from_presets("h100-sxm", "llama-3.1-8b", chips=1)
    with pytest.raises(InputError, match="tier from 1"):
        diffhw.set_values(h, {"placement.kv_cache[1]": 0.3})
    with pytest.raises(InputError, match="class of"):
        diffhw.get_value(d, "placement.kv[1]")
    # Differentiable: moving KV to HBF changes TPOT smoothly.
    g = jax.grad(lambda f: diffhw.design_values(diffhw.set_values(d, {"placement.kv_cache[1]": f}))["tpot_s"])(0.3)
    assert jnp.isfinite(g) and float(g) != 0.0
