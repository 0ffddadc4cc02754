"""Numeric formats: bytes per element and which peak FLOP/s column they run at."""

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._errors import InputError

# name -> (bits per element, hardware compute column).
# int4/nf4-style weight formats are 4 bits but (when used for activations too) run on
# the 4-bit tensor path; llama.cpp's Q4_0 stores 4.5 bits per weight (4 bits + one fp16
# scale per 32 weights: 4 + 16/32).
NAMED_PRECISIONS = {
    "fp32": (32.0, "fp32"),
    "tf32": (32.0, "fp32"),
    "bf16": (16.0, "bf16"),
    "fp16": (16.0, "bf16"),
    "fp8": (8.0, "fp8"),
    "int8": (8.0, "int8"),
    "fp4": (4.0, "fp4"),
    "int4": (4.0, "fp4"),
    "nf4": (4.0, "fp4"),
    "q4_0": (4.5, "fp4"),
}

#: Compute columns in order of increasing bits, used to interpolate a custom bit width.
FLOAT_COLUMNS = (("fp4", 4.0), ("fp8", 8.0), ("bf16", 16.0), ("fp32", 32.0))


class Precision(eqx.Module):
    """A numeric format: its storage width and the tensor path it computes on.

    `bits` is a float leaf (so bytes moved are differentiable in it); `column` names the
    peak-FLOP/s field of `Hardware` it runs at, or ``"interp"`` for a custom width, which
    interpolates the hardware's float peaks in ``log2(bits)``.
    """

    bits: Float[Array, ""] = eqx.field(converter=lambda x: jnp.asarray(x, dtype=float))
    column: str = eqx.field(static=True, default="interp")
    name: str = eqx.field(static=True, default="custom")

    @property
    def bytes(self):
        return self.bits / 8.0


def precision(p) -> Precision:
    """Parse a precision: a `Precision`, a name (``"bf16"``, ``"fp8"``, ...) or bits.

    **Arguments:**

    - `p`: ``"fp32" | "bf16" | "fp16" | "fp8" | "int8" | "fp4" | "int4" | "nf4" | "q4_0"``,
      a number of bits (``4.5``) or a numeric string (``"4.5"``).

    **Returns:** a `Precision`.
    """
    if isinstance(p, Precision):
        return p
    if isinstance(p, str):
        key = p.strip().lower()
        if key in NAMED_PRECISIONS:
            bits, column = NAMED_PRECISIONS[key]
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
