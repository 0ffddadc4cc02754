"""Published names -> presets and precisions (`match_preset`, `match_precision`) and the
GB300 preset."""

from pathlib import Path

import pytest

import diffhw
from diffhw._io._names import match_precision, match_preset

ROOT = Path(__file__).resolve().parents[1]

HARDWARE_NAMES = {
    "NVIDIA H100-SXM-80GB (DGX H100)": "h100-sxm",
    "NVIDIA H100 SXM5 80GB": "h100-sxm",
    "NVIDIA H100 80GB (4 nodes x 8)": "h100-sxm",  # no board stated: the SXM part
    "NVIDIA H100 PCIe 80GB": "h100-pcie",
    "NVIDIA A100 (variant not stated)": "a100-sxm-80gb",
    "NVIDIA A100 80GB": "a100-sxm-80gb",
    "NVIDIA H200 SXM 141GB (HGX H200, NVLink 900 GB/s)": "h200-sxm",
    "NVIDIA B200 180GB (DGX B200)": "b200",  # the base part, not b200-hbf and the like
    "NVIDIA GB200 192GB (GB200 NVL72)": "gb200",
    "NVIDIA GB300 NVL72 (GB300-288GB)": "gb300",  # not b300: gb300 is its own token
    "NVIDIA L4 24GB": "l4",
    "NVIDIA L40S": "l40s",
    "NVIDIA RTX 4090 24GB": "rtx-4090",
    "AMD Instinct MI300X (192 GB HBM3, 750 W)": "mi300x",
    "AMD Instinct MI355X (288 GB HBM3E, 1400 W TGP, liquid-cooled)": "mi355x",
    "Apple M3 Max 40-core GPU 64GB": "apple-m3-max",
    "Apple M2 Ultra 76-core GPU 192GB": "apple-m2-ultra",
    "Google TPU v5e": "tpu-v5e",
    "h100-80gb-pcap": "h100-sxm",  # SplitwiseSim's names
    "a100-80gb": "a100-sxm-80gb",
}
MODEL_NAMES = {
    "Llama-3.3-70B-Instruct": "llama-3.3-70b",
    "Llama-3-70B": "llama-3-70b",
    "Llama-3.1-8B-Instruct": "llama-3.1-8b",  # not llama-3-8b
    "Llama-3-8B": "llama-3-8b",
    "Llama-3.1-405B": "llama-3.1-405b",
    "LLaMA(-2)-7B": "llama-2-7b",
    "Llama-2-70B-chat": "llama-2-70b",
    "llama2-70b": "llama-2-70b",
    "Qwen-2.5-7B": "qwen2.5-7b",
    "Qwen3-235B-A22B (MoE)": "qwen3-235b-a22b",
    "Llama-4-Maverick-17B-128E (MoE)": "llama-4-maverick",
    "DeepSeek-R1 (671B MoE, 37B active)": "deepseek-r1",
    "DeepSeek-V3/R1 (671B MoE)": "deepseek-v3",  # same architecture; the first named
    "Mixtral-8x7B-Instruct": "mixtral-8x7b",
    "GPT-J-6B": "gpt-j-6b",
    "gpt-oss-120b": "gpt-oss-120b",
}


@pytest.mark.parametrize("kind,names", [("hardware", HARDWARE_NAMES), ("models", MODEL_NAMES)])
def test_published_names_match_presets(kind, names):
    got = {text: match_preset(kind, text) for text in names}
    assert got == names


@pytest.mark.parametrize("text", ["NVIDIA A100 40GB", "(unspecified; Llama 2 class up to 10B)", "NVIDIA",
                                  "Llama", ""])
def test_unknown_or_vague_names_match_nothing(text):
    kind = "models" if "lama" in text else "hardware"
    assert match_preset(kind, text) is None


def test_match_preset_refuses_an_unknown_kind():
    with pytest.raises(diffhw.InputError, match="kind"):
        match_preset("chips", "H100")


def test_precision_texts():
    m = match_precision("FP8 (incl. FP8 KV cache)")
    assert (m["weight_precision"], m["activation_precision"], m["kv_precision"]) == ("fp8", "fp8", "fp8")
    m = match_precision("FP4 (assumed; Blackwell)")
    assert (m["format"], m["weight_precision"], m["assumed"], m["kv_precision"]) == ("FP4", "fp4", True, None)
    m = match_precision("Q4_0 (4.5 bit)")
    assert (m["weight_precision"], m["activation_precision"]) == ("q4_0", "fp16")
    assert match_precision("F16")["weight_precision"] == "fp16"
    assert match_precision("NF4 (bitsandbytes)")["weight_precision"] == "nf4"
    # formats without their own precision run as the nearest shipped one, the format kept
    for text, fmt in (("INT4 AWQ", "AWQ"), ("INT4 GPTQ", "GPTQ"), ("MXFP4 (OPEN division)", "MXFP4")):
        m = match_precision(text)
        assert m["format"] == fmt
        diffhw.workload(1, 8, 8, weight_precision=m["weight_precision"])  # a precision diffhw knows
        assert m["nearest"] == (m["weight_precision"] != fmt.lower())
    for text in ("(not stated)", "(not stated; likely FP4/FP8)", "(likely INT4)", ""):
        assert match_precision(text) is None


def test_gb300_preset_is_the_rack_blackwell_ultra():
    gb300, b300 = diffhw.presets.hardware("gb300"), diffhw.presets.hardware("b300")
    assert float(gb300.flop_per_s_fp4) == pytest.approx(15000e12)
    assert float(gb300.flop_per_s_fp4) > float(b300.flop_per_s_fp4)
    assert float(gb300.memory_bandwidth_bytes_per_s) == pytest.approx(float(b300.memory_bandwidth_bytes_per_s))
    text = (ROOT / "diffhw" / "data" / "hardware" / "gb300.toml").read_text()
    for line in text.splitlines():
        if "=" in line and line.split("=")[1].strip()[:1].isdigit():
            assert "source:" in line, line
