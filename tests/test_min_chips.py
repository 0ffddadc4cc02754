"""The minimum-system search: every valid parallel layout, the fewest chips that fit
(pipeline parallelism included: 3 B200s hold Llama-3.1-405B in FP8), the largest
pipeline stage's whole layers, and bad inputs."""

import numpy as np
import pytest

import diffhw
from diffhw import InputError
from diffhw._tools._min_chips import layouts

WL = diffhw.workload(16, 8192, 1024, "fp8")


@pytest.fixture(scope="module")
def m405():
    return diffhw.presets.model("llama-3.1-405b")


@pytest.fixture(scope="module")
def b200_405b(m405):
    design = diffhw.Design(diffhw.presets.hardware("b200"), m405, WL, diffhw.parallelism())
    return diffhw.min_chips(design, max_chips=16)


def test_layouts_are_valid_sorted_and_include_every_pipeline_depth(m405):
    table = layouts(m405, 16)
    chips = table[:, 0] * table[:, 1] * table[:, 2]
    assert np.all(np.diff(chips) >= 0) and chips.max() <= 16
    for row in table:
        diffhw.validate_parallelism(m405, diffhw.parallelism(*row))  # raises if invalid
    assert {3.0, 5.0, 7.0} <= set(table[(table[:, 0] == 1) & (table[:, 2] == 1), 1])  # pp not only powers of two
    moe = diffhw.presets.model("deepseek-v3")
    t = layouts(moe, 8)
    for row in t:
        diffhw.validate_parallelism(moe, diffhw.parallelism(*row))
    assert np.any((t[:, 3] > t[:, 0]) & (t[:, 2] > 1))  # ep spanning data-parallel replicas
    assert np.all(layouts(moe, 8, data_parallel=False)[:, 2] == 1)


def test_405b_fp8_fits_three_b200s_with_pipeline_parallelism(b200_405b, m405):
    r = b200_405b
    assert r.chips == 3
    assert float(r.parallelism.pp) == 3.0 and float(r.parallelism.tp) == 1.0
    assert r.fewest_by_layout()["tp"] == 4  # what the old tp-only search found
    chips = r.layouts[:, 0] * r.layouts[:, 1] * r.layouts[:, 2]
    assert not r.fits[chips < 3].any()
    # By hand: 2 chips cannot hold 405e9 FP8 bytes in 2 x 0.9 x 180 GB usable.
    usable = float(diffhw.presets.hardware("b200").memory_capacity_bytes) * 0.9
    assert float(m405.total_params()) > 2 * usable
    # the chosen layout's margin is evaluate's exact one (126 layers / 3 stages: no correction)
    exact = diffhw.evaluate(diffhw.presets.hardware("b200"), m405, WL, r.parallelism, tau=0.0)
    i = int(np.flatnonzero((r.layouts == [1, 3, 1, 1]).all(axis=1))[0])
    assert r.margin[i] == pytest.approx(float(exact.memory_margin), rel=1e-5)
    assert float(r.metrics.tpot_s) == pytest.approx(r.tpot_s[i])


def test_largest_pipeline_stage_holds_whole_layers(b200_405b):
    r = b200_405b
    # pp = 4 over 126 layers: stages of 32 layers, not 31.5; the margin is charged for it
    i = int(np.flatnonzero((r.layouts == [1, 4, 1, 1]).all(axis=1))[0])
    exact = diffhw.evaluate(diffhw.presets.hardware("b200"), diffhw.presets.model("llama-3.1-405b"), WL,
                            diffhw.parallelism(pp=4), tau=0.0)
    assert r.margin[i] == pytest.approx((float(exact.memory_margin) + 1.0) * 31.5 / 32.0 - 1.0, rel=1e-5)


def test_hbf_holds_405b_on_one_chip_and_economics_choose(m405):
    hw = diffhw.presets.hardware("b200-hbf")
    design = diffhw.Design(hw, m405, WL, diffhw.parallelism(), diffhw.presets.technology_for("b200-hbf"))
    r = diffhw.min_chips(design, max_chips=4, prefer="usd_per_million_tokens")
    assert r.chips == 1 and r.metrics.economics is not None
    assert np.isfinite(float(r.metrics.economics.tco_usd_per_year))


def test_nothing_fits_and_bad_inputs(m405):
    design = diffhw.Design(diffhw.presets.hardware("h100-sxm"), m405, WL, diffhw.parallelism())
    r = diffhw.min_chips(design, max_chips=2, data_parallel=False)
    assert r.chips is None and r.parallelism is None and not r.fits.any()
    with pytest.raises(InputError, match="prefer"):
        diffhw.min_chips(design, prefer="peak_flops")
    with pytest.raises(InputError, match="prefer"):
        diffhw.min_chips(design, prefer="tco_usd_per_year")  # no technology
    with pytest.raises(InputError, match="max_chips"):
        diffhw.min_chips(design, max_chips=0)
