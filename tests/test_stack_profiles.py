"""Stack profiles fitted on their own stack's rows (issue 16): llamacpp-2025 and
rocm-2025 load, stay in physical ranges, cite the calibration CSV they were fitted on,
and the llama.cpp profile reproduces its in-sample error on a few of its rows."""

import re
from importlib import resources

import pytest

import diffhw

DATA = resources.files("diffhw") / "data"
STACK_PROFILES = ("llamacpp-2025", "rocm-2025")
FRACTIONS = ("bandwidth_efficiency", "compute_efficiency", "network_efficiency", "memory_utilization")


@pytest.mark.parametrize("name", STACK_PROFILES)
def test_stack_profile_loads_in_range_and_cites_its_rows(name):
    prof = diffhw.presets.profile(name)
    assert prof.name == name
    for leaf in FRACTIONS:
        assert 0.2 < float(getattr(prof, leaf)) <= 1.0, leaf
    for leaf in ("step_overhead_s", "layer_overhead_s", "collective_latency_s"):
        assert 0.0 <= float(getattr(prof, leaf)) < 0.01, leaf
    text = (DATA / "profiles" / f"{name}.toml").read_text()
    csv = f"diffhw/data/calibration/{name}.csv"
    assert csv in text and "fitted_on" in text and "Reproduce:" in text
    # the rows it was fitted on ship with it, every one with its stack and source URL
    points = diffhw.load_points(DATA / "calibration" / f"{name}.csv")
    assert points and all(p.source.startswith("https://") and p.stack for p in points)
    # every value says whether it was fitted or where it comes from
    values = text.split("[values]", 1)[1]
    for line in values.strip().splitlines():
        assert re.match(r"^\w+ = \S+\s+# \S", line), line


def test_llamacpp_profile_reproduces_in_sample_error():
    """Three llama.cpp rows (Llama-2-7B F16 decode on A100 and M2 Ultra, Llama-3-8B pp512
    on M2 Ultra) predicted with the shipped profile give the in-sample errors the fit gave
    (predicted / measured - 1, recorded when the profile was fitted; the profile's median
    |error| on its 20 rows is 5.7%, mean 8.8%), within 1 percentage point."""
    points = {p.id: p for p in diffhw.load_points(DATA / "calibration" / "llamacpp-2025.csv")}
    recorded = {"M097": -0.064, "M100": -0.021, "M109/pp": -0.189}
    model = {}
    for pid, want in recorded.items():
        p = points[pid]
        m = model.setdefault(p.model, diffhw.presets.model(p.model))
        wl = diffhw.workload(p.batch, p.input_tokens, p.output_tokens, weight_precision=p.weight_precision,
                             activation_precision=p.activation_precision, kv_precision=p.kv_precision)
        hw = diffhw.presets.hardware(p.hardware, profile="llamacpp-2025")
        y = float(getattr(diffhw.evaluate(hw, m, wl, diffhw.parallelism(tp=p.tp)), p.metric))
        assert y / p.value - 1.0 == pytest.approx(want, abs=0.01), pid
