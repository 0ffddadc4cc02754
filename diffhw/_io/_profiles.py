"""Calibration profiles (TOML) -> `Profile`."""

import dataclasses

from .._errors import InputError
from .._hardware._profile import Profile
from ._files import number, preset_names, read_toml, resolve, unknown_keys

_PROFILE_KEYS = {
    # key: (positive, allow_zero, fraction)
    "bandwidth_efficiency": (True, False, True),
    "compute_efficiency": (True, False, True),
    "compute_half_rows": (True, True, False),
    "network_efficiency": (True, False, True),
    "collective_latency_s": (True, True, False),
    "step_overhead_s": (True, True, False),
    "layer_overhead_s": (True, True, False),
    "memory_utilization": (True, False, True),
    "max_batched_tokens": (True, False, False),
    "collective_step_latency_s": (True, True, False),
    "sequence_overhead_s": (True, True, False),
}
#: Profile keys a TOML file may leave out: those with a default in `Profile`.
_PROFILE_OPTIONAL = {f.name: f.default for f in dataclasses.fields(Profile)
                     if f.name in _PROFILE_KEYS and f.default is not dataclasses.MISSING}


def list_profiles():
    return preset_names("profiles", ".toml")


def load_profile(name_or_path="default", overrides=None) -> Profile:
    """A calibration `Profile` from a preset name or a TOML file, with overrides."""
    path = resolve("profiles", ".toml", name_or_path)
    data = read_toml(path)
    values = dict(data.get("values", {}))
    unknown_keys(str(path), data, {"name", "description", "fitted_on", "values", "sources"})
    values.update(overrides or {})
    return _profile_from(str(path), values, data.get("name", path.stem))


def _profile_from(where, values, name):
    unknown_keys(where, values, _PROFILE_KEYS)
    values = {**_PROFILE_OPTIONAL, **values}
    missing = sorted(set(_PROFILE_KEYS) - set(values))
    if missing:
        raise InputError(f"{where}: {missing[0]}", None, "a value (the key is missing)")
    parsed = {
        k: number(where, k, values[k], positive=p, allow_zero=z, fraction=fr)
        for k, (p, z, fr) in _PROFILE_KEYS.items()
    }
    return Profile(**parsed, name=name)


def profile_description(name):
    return read_toml(resolve("profiles", ".toml", name)).get("description", "")
