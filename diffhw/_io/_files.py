"""File plumbing shared by the loaders: the shipped data folder, preset names and paths,
TOML reading with a clear error, and number checks that name the file and the field."""

import math
import tomllib
from importlib import resources
from pathlib import Path

from .._errors import InputError, did_you_mean

#: The shipped presets and tables (``diffhw/data/``).
DATA = resources.files("diffhw") / "data"


def number(where, field, value, *, positive=True, allow_zero=False, fraction=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: {field}", value, "a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise InputError(f"{where}: {field}", value, "a finite number")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise InputError(f"{where}: {field}", value, ">= 0" if allow_zero else "> 0")
    if fraction and v > 1:
        raise InputError(f"{where}: {field}", value, "a fraction in (0, 1]")
    return v




def unknown_keys(where, table, allowed):
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise InputError(
            f"{where}: key", extra[0], "one of " + ", ".join(sorted(allowed)),
            did_you_mean(extra[0], allowed),
        )




def read_toml(path: Path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError(str(path), "TOML", f"a valid TOML file ({e})") from None
    except OSError as e:
        raise InputError("file", str(path), f"a readable file ({e.strerror})") from None


def preset_names(kind, suffix):
    return sorted(p.name[: -len(suffix)] for p in (DATA / kind).iterdir() if p.name.endswith(suffix))


def resolve(kind, suffix, name_or_path, aliases=None):
    """A preset name or a file path -> the file to read."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.suffix in (".toml", ".json") or "/" in s or p.is_file():
        if not p.is_file():
            raise InputError(kind.rstrip("s"), s, "a preset name or an existing file")
        return p
    key = s.strip().lower()
    key = (aliases or {}).get(key, key)
    names = preset_names(kind, suffix)
    if key not in names:
        raise InputError(
            kind.rstrip("s"), s, f"a preset name ({len(names)} known; `diffhw presets {kind}`) or a file path",
            did_you_mean(key, names),
        )
    return DATA / kind / (key + suffix)


def read_hardware_toml(path, depth=0):
    """A hardware file, with ``based_on = "preset"`` resolved: the base's tables, each
    updated key by key with this file's (so a variant states only what it changes)."""
    d = read_toml(path)
    base_name = d.get("based_on")
    if base_name is None:
        return d
    if depth > 4:
        raise InputError(f"{path}: based_on", base_name, "a chain of at most 5 files")
    base = read_hardware_toml(resolve("hardware", ".toml", base_name), depth + 1)
    merged = dict(base)
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merged[k] = {**base[k], **v}
        else:
            merged[k] = v
    merged.pop("based_on", None)
    return merged
