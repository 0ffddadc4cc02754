"""experiments/: the paper's 17 claims, each a runnable experiment.

One run of ``experiments/run.py --quick`` (a fresh process with an empty program cache,
as on a new machine) feeds every test here: the summary's contract, the figures, and the
numbers each claim stands on.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
CLAIMS = range(1, 18)
KEYS = {"claim", "title", "status", "paper", "diffhw", "figure", "seconds"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments")
    env = {**os.environ, "DIFFHW_CACHE_DIR": str(out / "cache"), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, str(EXPERIMENTS / "run.py"), "--quick", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    return out, summary, r.stdout


@pytest.fixture(scope="module")
def by_claim(quick):
    return {e["claim"]: e for e in quick[1]}


def test_summary_has_every_claim_once(quick):
    _, summary, _ = quick
    assert [e["claim"] for e in summary] == list(CLAIMS)


def test_summary_entries_follow_the_contract(quick):
    out, summary, stdout = quick
    for e in summary:
        assert KEYS <= set(e), e
        assert e["status"] in ("reproduced", "partial", "contradicted"), e
        assert e["title"] and e["paper"] and e["diffhw"], e
        assert f"=== claim {e['claim']}:" in stdout
        if e["figure"] is not None:
            png = out / e["figure"]
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
            assert png.stat().st_size > 10_000, f"{png} looks empty"


def test_every_claim_runs_alone():
    """Each module is also a script: ``python experiments/claim_NN_*.py --help``."""
    mods = sorted(EXPERIMENTS.glob("claim_*.py"))
    assert len(mods) == len(CLAIMS)
    numbers = sorted(int(re.match(r"claim_(\d\d)_", m.name).group(1)) for m in mods)
    assert numbers == list(CLAIMS)
    r = subprocess.run([sys.executable, str(mods[0]), "--help"], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0 and "--quick" in r.stdout, r.stderr


def test_readme_lists_every_claim_with_its_figure():
    """experiments/README.md's table names every claim; each figure it embeds is shipped."""
    text = (EXPERIMENTS / "README.md").read_text()
    for n in CLAIMS:
        assert re.search(rf"^\| {n} \|", text, re.MULTILINE), f"claim {n} missing from experiments/README.md"
    for fig in re.findall(r"\(figures/([\w.-]+\.png)\)", text):
        assert (EXPERIMENTS / "figures" / fig).exists(), fig


def _data(by_claim, n):
    return by_claim[n]["data"]


def test_claim_01_decode_memory_prefill_compute(by_claim):
    d = _data(by_claim, 1)
    assert d["decode_memory_bound"] and d["prefill_compute_bound"] and d["disaggregated_decode_memory_bound"]
    assert d["kv_ai_spread"] < 1.05  # KV reads: the same FLOP/B at every batch
    assert d["weight_ai_growth"] == pytest.approx(d["batches"][-1] / d["batches"][0], rel=0.05)
    assert d["decode_ai_kv"][0] == pytest.approx(8.0, rel=0.05)  # GQA 8:1 in bf16
    assert d["ridge_flop_per_byte"] == pytest.approx(295.3, rel=0.01)  # H100 SXM: 989 TFLOP/s / 3.35 TB/s
    assert max(d["kv_gb_per_seq"]) == pytest.approx(min(d["kv_gb_per_seq"]), rel=1e-6)


def test_claim_02_memory_wall(by_claim):
    d = _data(by_claim, 2)
    assert d["flops_growth_k20x"] == pytest.approx(51.1, rel=0.01)
    assert d["bandwidth_growth_k20x"] == pytest.approx(13.4, rel=0.01)
    assert d["fraction_hardware_only"] == pytest.approx(d["fraction_roofline"], rel=0.02)
    assert d["falls_overall"] and not d["monotone_hardware_only"]
    assert d["overhead_share"][-1] > d["overhead_share"][0]


def test_claim_03_memory_cost_divergence(by_claim):
    d = _data(by_claim, 3)
    assert d["ratio_growth_2023_2025"] == pytest.approx(2.036, rel=0.01)
    assert d["hbm_mtok_change_2023_2025"] > 1 and d["lpddr_mtok_change_2022_2025"] < 1
    assert d["lpddr_over_hbm_2025"] == pytest.approx(1.17, rel=0.15)


def test_claim_04_density(by_claim):
    d = _data(by_claim, 4)
    assert d["dram_years_to_4x_before_2014"] == [5, 5]
    assert d["dram_years_to_4x_from_2014"] == 10
    assert 2 <= d["nand_years_per_doubling_since_2015"] <= 4


def test_claim_05_table3(by_claim):
    d = _data(by_claim, 5)
    assert d["max_error_vs_arithmetic"] < 1e-3
    assert d["pj_per_bit"] == pytest.approx([6.105, 3.053, 29.41, 7.353, 1562.5], rel=0.005)
    assert d["gb_s_per_w"][1] == pytest.approx(40.95, rel=0.005)


def test_claim_14_trend_matrix(by_claim):
    d = _data(by_claim, 14)
    assert d["baseline_bound"] == "memory" and d["compute_bound"] == ["diffusion"]
    assert all(d["agrees"][t] for t in ("moe", "reasoning", "multimodal", "long_context", "rag", "diffusion"))
    assert d["stressed"]["diffusion"] == ["compute"]
    assert set(d["stressed"]["moe"]) == {"bandwidth", "capacity", "latency"}
    assert d["ratios"]["diffusion"]["compute"] == pytest.approx(32.0, rel=1e-6)  # 32 denoising passes
    assert d["ratios"]["moe"]["capacity"] == pytest.approx(18.9, rel=0.1)
    assert d["ratios"]["long_context"]["capacity"] == pytest.approx(9.1, rel=0.1)


def test_claim_09_pim_vs_pnm(by_claim):
    d = _data(by_claim, 9)
    assert d["pnm_over_pim_perf_per_w"] > 1 and d["pnm_over_pim_perf_per_tco"] > 1  # the datacenter claim
    assert d["pnm_over_pim_perf_per_w"] == pytest.approx(2.24, rel=0.15)
    assert d["pnm_over_pim_perf_per_tco"] == pytest.approx(3.22, rel=0.15)
    assert d["pnm_over_pim_perf_per_w_batch1"] < 1  # at batch 1 PIM wins
    assert d["shards_per_chip_pim"] / d["shards_per_chip_pnm"] == pytest.approx(1500, rel=0.15)
    assert d["pim_shard_exchange_share"] > 20 * d["pim_shard_exchange_share_batch1"]


def test_claim_10_pim_on_a_phone(by_claim):
    d = _data(by_claim, 10)
    assert d["speedup_batch1_short"] == pytest.approx(3.77, rel=0.15) and d["speedup_batch1_short"] > 1.2
    assert d["energy_ratio_batch1_short"] < 0.9
    assert d["speedup_large_batch_short"] < d["speedup_batch1_short"]


def test_claim_11_3d_thermal(by_claim):
    d = _data(by_claim, 11)
    assert d["infeasible_below_w_per_mm2"] == pytest.approx(0.180, rel=0.02)
    assert d["decode_at_operating"] > 0.9 and d["prefill_at_operating"] < 0.7
    assert d["base_die_tpot_ratio_batch1"] == pytest.approx(1.0, rel=0.05)
    assert d["base_die_energy_ratio_batch1"] < 1


def test_claim_12_interconnect(by_claim):
    d = _data(by_claim, 12)
    assert min(d["latency_share_8"][:2]) > 0.5 and min(d["latency_share_64"][:2]) > 0.5
    assert d["crossover_bytes_8"] > 1e5 and d["crossover_bytes_64"] > 1e5
    hops = [d["mean_hops"][t][1] for t in ("torus2d", "torus3d", "torus_hd", "dragonfly", "fat_tree")]
    assert hops == sorted(hops, reverse=True) and hops[0] == pytest.approx(16.0, rel=0.05)
    assert d["innet_speedup_8"] > 1 and d["innet_speedup_64"] > d["innet_speedup_8"]
    assert max(d["tpot_lowlat_ratio"]) < 1
    assert 1.0 <= d["p2p_fabric_us"] <= 2.0 + 1e-3  # the paper's NVLink small-message band


def test_claim_13_stragglers(by_claim):
    d = _data(by_claim, 13)
    harmonic = [sum(1.0 / k for k in range(1, int(n) + 1)) for n in d["n"]]
    assert d["expected_slowest_over_scale"] == pytest.approx(harmonic, rel=1e-4)
    assert d["timeout_over_scale"] == pytest.approx([2.303, 4.605, 6.908], rel=1e-3)
    assert max(d["monte_carlo_rel_error"]) < 0.03


def test_claim_07_hbf_endurance(by_claim):
    d = _data(by_claim, 7)
    assert d["append_write_amplification"] == pytest.approx(4096 / 576, rel=1e-3)
    assert d["lifetime_years_buffered_1e5"] == pytest.approx(31.62, rel=0.05)
    assert d["lifetime_years_unbuffered_1e5"] == pytest.approx(18.84, rel=0.05)
    ratio = d["lifetime_years_buffered_1e5"] / d["lifetime_years_unbuffered_1e5"]
    assert 1 < ratio < d["append_write_amplification"]
    assert d["lifetime_years_buffered_3e3"] < 5 and d["lifetime_years_unbuffered_3e3"] < 5  # TLC wears out
    for k in ("endurance_for_5_years_buffered", "endurance_for_5_years_unbuffered"):
        assert 3e3 < d[k] < 1e5
    assert d["weights_only_write_bytes_per_s"] == 0.0 and d["weights_only_lifetime_years"] > 1e6


def test_claim_08_hbf_access(by_claim):
    d = _data(by_claim, 8)
    assert d["hbf_efficiency_64b"] == pytest.approx(64 / 4096, rel=1e-3)
    assert d["hbm4_efficiency_64b"] == pytest.approx(1.0, abs=1e-3)
    assert d["needed_buffer_mb"] == pytest.approx(d["bandwidth_x_latency_mb"], rel=1e-3)
    assert 0.8 <= d["saturation_over_needed"] <= 1.25  # the model saturates where the rule says
    assert d["tpot_ms_needed"] / d["tpot_ms_flat"] <= 1.01
    assert d["tpot_ms_half_needed"] / d["tpot_ms_flat"] >= 1.2
    assert d["tpot_ms_h3_40mb"] == pytest.approx(d["tpot_ms_flat"], rel=1e-4)


def test_claim_06_hbf_min_system(by_claim):
    d = _data(by_claim, 6)
    s = d["systems"]["llama-3.1-405b"]
    assert s["b200"]["chips"] == 3 and s["b200"]["fewest_tp_only"] == 4  # pipeline parallelism finds 3
    assert s["b200-hbf"]["chips"] == 1
    assert all(v < 1 for v in d["hbf_over_hbm"]["llama-3.1-405b"].values()), d["hbf_over_hbm"]


def test_claim_15_sram_only(by_claim):
    d = _data(by_claim, 15)
    assert d["min_chips"]["cerebras-wse-3/llama-3.1-70b"] == 4  # Cerebras ran it on 4 WSE-3
    assert 500 <= d["min_chips"]["groq-lpu/llama-3.1-70b"] <= 1200
    assert 0.5 <= d["groq_70b_over_published"] <= 2
    assert d["capacity_bound"]["groq-lpu/llama-3.1-70b"] == pytest.approx(682, rel=0.05)
    assert d["min_chips"]["b200/llama-3.1-70b"] <= 2 and d["min_chips"]["h100-sxm/llama-3.1-70b"] <= 2


def test_claim_16_rankings(by_claim):
    d = _data(by_claim, 16)
    for k in ("tokens_per_s_per_kusd", "tokens_per_s_per_w", "tokens_per_kgco2e"):
        assert d["correlation"][k]["spearman"] < 0.5, k
    assert d["top"]["peak_bf16_tflops"] != d["top"]["tokens_per_s_per_kusd"]


def test_claim_17_external_ballparks(by_claim):
    d = _data(by_claim, 17)
    assert 0 <= d["sandisk"]["gap"] <= 0.05  # SanDisk: within 2.2% of unlimited HBM
    h3 = d["h3"]["10000000"]
    assert h3["gpus"] == 36 and h3["batch_gain"] > 5  # B200 at NVML's 179 GiB (40 at a decimal 180 GB)
    assert 0.9 <= h3["speedup"] <= 1.2  # the disagreement with SK hynix's 6.14x, recorded
    assert d["attention_tflop_per_token_10m"] == pytest.approx(82.6, rel=0.01)
