"""Unit conversions, used only at the edges (presets, CLI, reports).

Inside diffhw every quantity is SI (seconds, bytes, FLOP, watts) and carries its unit in
its name. Multiply by a constant here to convert *into* SI; divide to convert out.
"""

# Decimal prefixes, as memory and network vendors quote them.
KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
# Binary prefixes, as some datasheets (TPU HBM) quote them.
KiB = 2.0**10
MiB = 2.0**20
GiB = 2.0**30

# Rates.
GB_PER_S = 1e9
TB_PER_S = 1e12
TFLOP_PER_S = 1e12
PFLOP_PER_S = 1e15

# Times.
MS = 1e-3
US = 1e-6
NS = 1e-9

# Energy.
PJ = 1e-12

#: bits in a byte
BITS_PER_BYTE = 8.0
