"""Calibration profiles (TOML) -> `Profile`."""

import dataclasses

from .._errors import InputError
from .._hardware._profile import Profile
from ._files import number, preset_names, read_toml, resolve, string, unknown_keys

_PROFILE_KEYS = {
    # key: (allow_zero, fraction, lo, hi, unit). Efficiencies are fractions; the other
    # ranges are far past any serving stack (shipped in the comment), so only a typo or a
    # unit slip is refused.
    "bandwidth_efficiency": (False, True, None, None, ""),
    "compute_efficiency": (False, True, None, None, ""),
    # shipped 0.13 .. 8 rows; up to a million
    "compute_half_rows": (True, False, 0.0, 1e6, "rows"),
    "network_efficiency": (False, True, None, None, ""),
    # overheads: shipped 5 us (collective) .. 3.4 ms (step); a step of 10 s is already a stall
    "collective_latency_s": (True, False, 0.0, 10.0, "s"),
    "step_overhead_s": (True, False, 0.0, 10.0, "s"),
    "layer_overhead_s": (True, False, 0.0, 10.0, "s"),
    "memory_utilization": (False, True, None, None, ""),
    # shipped 8192 .. 1e9 (unchunked Prefill); at least one token per chunk, up to 1e12
    "max_batched_tokens": (False, False, 1.0, 1e12, "tokens"),
    "collective_step_latency_s": (True, False, 0.0, 10.0, "s"),
    "sequence_overhead_s": (True, False, 0.0, 10.0, "s"),
    # share of a format's peak relative to bf16's: shipped 0.55 .. 1; a kernel that reaches
    # more than 2x bf16's share of its own peak is a typo
    "fp8_compute_ratio": (False, False, 0.01, 2.0, ""),
    "fp4_compute_ratio": (False, False, 0.01, 2.0, ""),
    "int8_compute_ratio": (False, False, 0.01, 2.0, ""),
    # sequences per engine instance: shipped 256 .. 2048 (1e9: no limit); at least one
    "max_batch_size": (False, False, 1.0, 1e12, "sequences"),
    # MoE grouped GEMMs' share of the dense rates, and the share of the MoE all-to-all
    # left exposed (1: none hidden .. 0: two-batch overlap hides it): fractions
    "moe_efficiency": (False, True, None, None, ""),
    "moe_exposed_fraction": (True, False, 0.0, 1.0, ""),
}
#: Profile keys a TOML file may leave out: those with a default in `Profile`.
_PROFILE_OPTIONAL = {f.name: f.default for f in dataclasses.fields(Profile)
                     if f.name in _PROFILE_KEYS and f.default is not dataclasses.MISSING}


def list_profiles():
    return preset_names("profiles", ".toml")


def load_profile(name_or_path="default", overrides=None) -> Profile:
    """A calibration `Profile` from a preset name or a TOML file, with overrides."""
    path = resolve("profiles", ".toml", name_or_path)
    where = str(path)
    data = read_toml(path)
    unknown_keys(where, data, {"name", "description", "fitted_on", "values", "sources"})
    for k in ("description", "fitted_on"):
        string(where, k, data.get(k))
    values = data.get("values", {})
    unknown_keys(f"{where} [values]", values, _PROFILE_KEYS)
    if overrides is not None and not hasattr(overrides, "items"):
        raise InputError("profile overrides", overrides, "a mapping of Profile field names to numbers")
    values = {**values, **(overrides or {})}
    return _profile_from(where, values, string(where, "name", data.get("name"), path.stem))


def _profile_from(where, values, name):
    unknown_keys(where, values, _PROFILE_KEYS)
    values = {**_PROFILE_OPTIONAL, **values}
    missing = sorted(set(_PROFILE_KEYS) - set(values))
    if missing:
        raise InputError(f"{where}: {missing[0]}", None, "a value (the key is missing)")
    parsed = {}
    for k, (z, fr, lo, hi, unit) in _PROFILE_KEYS.items():
        try:
            parsed[k] = number(where, k, values[k], allow_zero=z, fraction=fr, lo=lo, hi=hi, unit=unit)
        except OverflowError:  # an override such as 10**400 (a file's integers are 64-bit)
            raise InputError(f"{where}: {k}", f"<an integer of {values[k].bit_length()} bits>",
                             "a finite number") from None
    return Profile(**parsed, name=name)


def profile_description(name):
    path = resolve("profiles", ".toml", name)
    return string(str(path), "description", read_toml(path).get("description"))
