"""File plumbing shared by the loaders: the shipped data folder, preset names and paths,
TOML reading with a clear error, and number checks that name the file and the field."""

import math
import os
import tomllib
from importlib import resources
from pathlib import Path

from .._errors import InputError, did_you_mean

#: The shipped presets and tables (``diffhw/data/``).
DATA = resources.files("diffhw") / "data"


def number(where, field, value, *, positive=True, allow_zero=False, fraction=False, lo=None, hi=None, unit=""):
    """A checked number from a file. `lo`/`hi` bound it to a physical range (inclusive;
    `unit` names the file's unit in the message): a value outside is refused rather than
    passed into the model."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: {field}", value, "a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise InputError(f"{where}: {field}", value, "a finite number")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise InputError(f"{where}: {field}", value, ">= 0" if allow_zero else "> 0")
    if fraction and v > 1:
        raise InputError(f"{where}: {field}", value, "a fraction in (0, 1]")
    if (lo is not None and v < lo and not (allow_zero and v == 0)) or (hi is not None and v > hi):
        raise InputError(f"{where}: {field}", value, range_text(lo, hi, unit, allow_zero))
    return v


def range_text(lo, hi, unit="", allow_zero=False):
    """``"between 1e-06 and 1e+03 TB/s"``-style text for a physical range."""
    u = f" {unit}" if unit else ""
    z = "0 or " if allow_zero and lo else ""
    if lo is not None and hi is not None:
        return f"{z}between {lo:g} and {hi:g}{u} (a physical range)"
    if hi is not None:
        return f"at most {hi:g}{u} (a physical range)"
    return f"{z}at least {lo:g}{u} (a physical range)"


def string(where, field, value, default=""):
    """A checked text field from a file (a name, a process, a memory type)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"{where}: {field}", value, "a text string (in quotes)")
    return value


def unknown_keys(where, table, allowed):
    """Refuse a `table` that is not a TOML table, or that holds a key outside `allowed`."""
    if not isinstance(table, dict):
        raise InputError(where, table, "a TOML table ([name] or {key = value, ...})")
    extra = sorted(set(table) - set(allowed), key=str)
    if extra:
        raise InputError(
            f"{where}: key", extra[0], "one of " + ", ".join(sorted(map(str, allowed))),
            did_you_mean(extra[0], allowed),
        )


#: TOML's integers are 64-bit (the spec): a longer literal is refused, not overflowed.
_INT_LIMIT = 2**63
#: Nesting a TOML file may have (diffhw's files use 3: table, array, value).
_MAX_DEPTH = 16


def read_toml(path: Path):
    """A TOML file as a dict. Anything else (unreadable, not UTF-8 text, not TOML, nested
    deeper than `_MAX_DEPTH`, an integer past 64 bits) raises `InputError`."""
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError(str(path), "TOML", f"a valid TOML file ({e})") from None
    except UnicodeDecodeError as e:
        raise InputError(str(path), "TOML", f"a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise InputError(str(path), "TOML", f"a TOML file nested at most {_MAX_DEPTH} deep") from None
    except ValueError as e:  # e.g. an integer literal of over 4300 digits
        raise InputError(str(path), "TOML", f"a valid TOML file ({e})") from None
    except OSError as e:
        raise InputError("file", str(path), f"a readable file ({e.strerror or e})") from None
    stack = [(d, "", 0)]
    while stack:  # no recursion: a value's checks cannot overflow the stack
        v, key, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise InputError(f"{path}: {key}", "...", f"values nested at most {_MAX_DEPTH} deep")
        if isinstance(v, dict):
            stack.extend((x, f"{key}.{k}" if key else k, depth + 1) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{key}[{i}]", depth + 1) for i, x in enumerate(v))
        elif isinstance(v, int) and not isinstance(v, bool) and not -_INT_LIMIT <= v < _INT_LIMIT:
            raise InputError(f"{path}: {key}", f"<an integer of {v.bit_length()} bits>",
                             "an integer of at most 64 bits (TOML's range)")
    return d


def preset_names(kind, suffix):
    return sorted(p.name[: -len(suffix)] for p in (DATA / kind).iterdir() if p.name.endswith(suffix))


def resolve(kind, suffix, name_or_path, aliases=None):
    """A preset name or a file path -> the file to read."""
    s = str(name_or_path)
    try:
        p = Path(s).expanduser()
    except RuntimeError:  # ~user that does not exist
        p = Path(s)
    try:
        is_file = p.is_file()
    except (OSError, ValueError):  # a name too long for a path, a NUL byte
        is_file = False
    if p.suffix in (".toml", ".json") or "/" in s or is_file:
        if not is_file:
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


def read_hardware_toml(path, depth=0, _seen=()):
    """A hardware file, with ``based_on = "preset"`` resolved: the base's tables, each
    updated key by key with this file's (so a variant states only what it changes). A
    chain of more than 5 files, or one that comes back to a file, is refused."""
    d = read_toml(path)
    base_name = d.get("based_on")
    if base_name is None:
        return d
    where = f"{path}: based_on"
    if not isinstance(base_name, str):
        raise InputError(where, base_name, "a hardware preset name or file path, in quotes")
    if depth > 4:
        raise InputError(where, base_name, "a chain of at most 5 files")
    try:
        base_path = resolve("hardware", ".toml", base_name)
    except InputError as e:
        hint = did_you_mean(base_name.strip().lower(), preset_names("hardware", ".toml"))
        raise InputError(where, base_name, e.allowed, hint) from None
    seen = (*_seen, os.path.realpath(str(path)))
    if os.path.realpath(str(base_path)) in seen:
        raise InputError(where, base_name, "a chain of files that does not come back to one ("
                         + " -> ".join(Path(x).stem for x in (*seen, str(base_path))) + ")")
    base = read_hardware_toml(base_path, depth + 1, seen)
    merged = dict(base)
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merged[k] = {**base[k], **v}
        else:
            merged[k] = v
    merged.pop("based_on", None)
    return merged
