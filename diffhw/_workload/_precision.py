"""Numeric formats: bits per element (block scales included), which peak FLOP/s column
they run at, and, for quantised weight formats, what their dequantising kernels cost."""

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._errors import InputError

# name -> (bits per element, hardware compute column).
NAMED_PRECISIONS = {
    "fp32": (32.0, "fp32"),
    "tf32": (32.0, "fp32"),
    "bf16": (16.0, "bf16"),
    "fp16": (16.0, "bf16"),
    "fp8": (8.0, "fp8"),
    "int8": (8.0, "int8"),
    "fp4": (4.0, "fp4"),
    "int4": (4.0, "fp4"),
    # Quantised formats: bits per weight INCLUDING their block scales and zeros.
    # llama.cpp Q4_0: 32 weights in 16 bytes of 4-bit codes + one fp16 scale = 18 bytes
    # (4.5 bits; ggml/src/ggml-common.h, block_q4_0).
    "q4_0": (4.5, "bf16"),
    # llama.cpp Q4_K: super-blocks of 256 weights: fp16 scale and min, 12 bytes of 6-bit
    # sub-block scales and mins, 128 bytes of codes = 144 bytes (4.5 bits; block_q4_K).
    "q4_k": (4.5, "bf16"),
    # bitsandbytes NF4 with double quantisation: 4-bit codes, an 8-bit absmax per block
    # of 64 and an fp32 second-level scale per 256 blocks: 4 + 8/64 + 32/(64*256) = 4.127
    # (Dettmers et al., QLoRA, NeurIPS 2023, sec. 3 "Double Quantization").
    "nf4": (4.0 + 8.0 / 64.0 + 32.0 / (64.0 * 256.0), "bf16"),
    # AWQ and GPTQ, 4-bit, group 128 (AutoAWQ / AutoGPTQ checkpoint layout: qweight and
    # qzeros pack eight 4-bit values per int32, scales fp16 per group): 4 + 16/128 +
    # 4/128 = 4.156 (GPTQ's act-order g_idx adds 32 bits per input row, < 0.01 bit).
    "awq": (4.15625, "bf16"),
    "gptq": (4.15625, "bf16"),
    # OCP Microscaling (MX) v1.0: 32 FP4 (E2M1) elements share one 8-bit E8M0 scale:
    # 4 + 8/32 = 4.25. Native on Blackwell's block-scaled tensor cores (fp4 column).
    "mxfp4": (4.25, "fp4"),
    # NVFP4: 16 FP4 (E2M1) elements share an FP8 (E4M3) scale, plus one fp32 per tensor:
    # 4 + 8/16 = 4.5 (NVIDIA, "Introducing NVFP4", developer.nvidia.com blog, 2025).
    "nvfp4": (4.5, "fp4"),
    # FP8 (E4M3) weights with 16-bit activations (W8A16): one fp32 scale per output
    # channel, 32/K bits per weight (< 0.01 for K >= 4096).
    "fp8_weight_only": (8.0, "bf16"),
}

# Quantised weight formats -> (bits of the LM head and embeddings (0: the format's
# own), the dequantising kernel's read efficiency, the activations it computes in
# (None: the format itself)). The read efficiency is the share of the profile's
# achieved bandwidth the format's Decode kernel reaches on its weight stream: a
# dequantising matrix-vector kernel issues unpacking, lookup and scaling work per
# byte, and some stacks launch extra kernels around it.
WEIGHT_FORMATS = {
    # llama.cpp keeps output.weight at Q6_K (210 bytes per 256 weights, 6.5625 bits) for
    # the 4-bit types (src/llama-quant.cpp, llama_tensor_get_type). Its CUDA batch-1
    # kernels (mul_mat_vec_q) stream at the 16-bit kernels' bandwidth: on an A100 the
    # Q4_0 - FP16 Llama-2-7B time difference (13.54 - 7.34 ms, rows M097/M103 of
    # shared/data published_measurements.csv) is the byte difference at ~77% of peak,
    # as FP16 alone reaches: efficiency 1.
    "q4_0": (6.5625, 1.0, "fp16"),
    "q4_k": (6.5625, 1.0, "fp16"),
    # transformers + bitsandbytes keep lm_head in 16 bits (get_keys_to_not_convert). The
    # batch-1 NF4 kernel (gemv_4bit, bitsandbytes >= 0.40: a lookup per code, the
    # double-quantised absmax decoded by an extra kernel per call) runs end to end about
    # as slow as 16-bit weights: bitsandbytes issues #611 (Mistral-7B NF4 36.5 vs FP16
    # 48.6 tokens/s), #696 (Llama-2-7B NF4 12.2 vs GPTQ 21.4 tokens/s), #712 (NF4 slower
    # than FP16 on A100 and 3090). 0.25 makes its weight stream take what a 16-bit one
    # does (4.127 / 16 / 0.25 = 1.03).
    "nf4": (16.0, 0.25, "fp16"),
    # AWQ / GPTQ leave lm_head in 16 bits; vLLM runs both through Marlin kernels on
    # sm80+ (awq_marlin, gptq_marlin), which stay within 5% of the ideal 3.87x speedup
    # over fp16 up to batch 16-32 (Frantar et al., MARLIN, arXiv 2408.11743, A10
    # microbenchmarks): efficiency 0.95. Older kernels (AutoAWQ GEMM, AutoGPTQ cuda)
    # and Python-bound harnesses are slower: a `Precision` with a lower
    # `read_efficiency` says so.
    "awq": (16.0, 0.95, "fp16"),
    "gptq": (16.0, 0.95, "fp16"),
    # Block-scaled FP4: read natively by Blackwell tensor cores (efficiency 1);
    # quantised checkpoints keep lm_head in 16 bits (NVIDIA ModelOpt's default configs
    # disable its quantiser; gpt-oss ships MXFP4 experts only).
    "mxfp4": (16.0, 1.0, None),
    "nvfp4": (16.0, 1.0, None),
    # W8A16 FP8 on GPUs without FP8 tensor cores goes through vLLM's fp8_marlin, the
    # Marlin design: 0.95 as above; lm_head stays 16-bit.
    "fp8_weight_only": (16.0, 0.95, "fp16"),
}

#: Compute columns in order of increasing bits, used to interpolate a custom bit width.
FLOAT_COLUMNS = (("fp4", 4.0), ("fp8", 8.0), ("bf16", 16.0), ("fp32", 32.0))


def _f(x):
    return jnp.asarray(x, dtype=float)


class Precision(eqx.Module):
    """A numeric format: its storage width, the tensor path it computes on, and what a
    dequantising kernel costs when weights are stored in it.

    - `bits`: bits per element, block scales and zeros included (a float leaf, so bytes
      moved are differentiable in it).
    - `column`: the peak-FLOP/s field of `Hardware` it runs at, or ``"interp"`` for a
      custom width, which interpolates the hardware's float peaks in ``log2(bits)``.
    - `name`: a label (static).
    - `head_bits`: bits of the LM head and embedding tables when this format stores the
      weights (quantisers keep them wider); 0: `bits`.
    - `read_efficiency`: share of the profile's achieved memory bandwidth the format's
      kernel reaches on its weight stream (1: read like any 16-bit weight). Memory time
      of weight bytes is ``bytes / (bandwidth * bandwidth_efficiency * read_efficiency)``;
      the bytes moved (traffic, energy) are unchanged. In (0, 1].
    """

    bits: Float[Array, ""] = eqx.field(converter=_f)
    column: str = eqx.field(static=True, default="interp")
    name: str = eqx.field(static=True, default="custom")
    head_bits: Float[Array, ""] = eqx.field(converter=_f, default=0.0)
    read_efficiency: Float[Array, ""] = eqx.field(converter=_f, default=1.0)

    @property
    def bytes(self):
        return self.bits / 8.0

    @property
    def head_bytes(self):
        """Bytes per element of the LM head and embeddings stored in this format."""
        return jnp.where(self.head_bits > 0.0, self.head_bits, self.bits) / 8.0


def weight_only_activations(p):
    """The activation format a weight-only format computes in (``"fp16"`` for Q4_0,
    NF4, AWQ, GPTQ, FP8 weight-only), or None where the format is also a compute format."""
    name = p.name if isinstance(p, Precision) else str(p).strip().lower().replace("-", "_")
    return WEIGHT_FORMATS.get(name, (0.0, 1.0, None))[2]


def precision(p) -> Precision:
    """Parse a precision: a `Precision`, a name (``"bf16"``, ``"fp8"``, ``"awq"``, ...) or bits.

    **Arguments:**

    - `p`: ``"fp32" | "bf16" | "fp16" | "fp8" | "int8" | "fp4" | "int4"``, a quantised
      weight format ``"q4_0" | "q4_k" | "nf4" | "awq" | "gptq" | "mxfp4" | "nvfp4" |
      "fp8_weight_only"`` (bits with their scales, LM-head bits and kernel read
      efficiency from `WEIGHT_FORMATS`; ``-`` may stand for ``_``), a number of bits
      (``4.5``) or a numeric string (``"4.5"``).

    **Returns:** a `Precision`.
    """
    if isinstance(p, Precision):
        return p
    if isinstance(p, str):
        key = p.strip().lower().replace("-", "_")
        if key in NAMED_PRECISIONS:
            bits, column = NAMED_PRECISIONS[key]
            if key in WEIGHT_FORMATS:
                head, eff, _ = WEIGHT_FORMATS[key]
                return Precision(bits, column, key, head, eff)
            return Precision(bits, column, key)
        try:
            p = float(key)
        except ValueError:
            raise InputError(
                "precision", p, "one of " + ", ".join(NAMED_PRECISIONS) + " or bits as a number"
            ) from None
    try:
        bits = float(p)
    except (TypeError, ValueError):
        raise InputError("precision", p, "a name or bits as a number") from None
    if math.isnan(bits) or not 1.0 <= bits <= 64.0:
        raise InputError("precision", p, "bits between 1 and 64")
    return Precision(bits, "interp", f"{bits:g}bit")
