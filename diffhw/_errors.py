"""The one error type diffhw raises for bad input, and the checks that raise it."""

import difflib
import math

import jax


class InputError(ValueError):
    """Bad user input: names the field, the value and what is allowed.

    The CLI turns it into one line on stderr and exit status 2.
    """

    def __init__(self, field: str, value, allowed: str, hint: str = ""):
        self.field = field
        self.value = value
        self.allowed = allowed
        msg = f"{field} = {value!r} is not allowed: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


def did_you_mean(name, choices) -> str:
    """A hint naming up to three of `choices` close to `name` (``""`` when none is)."""
    near = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    return ("did you mean " + " or ".join(near) + "?") if near else ""


def check_positive(field: str, value, allow_zero: bool = False):
    """Raise `InputError` unless ``value`` is a finite positive (or >= 0) number."""
    if isinstance(value, jax.core.Tracer):
        return value  # traced values are checked inside jit by the entry points
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(field, value, "a number") from None
    if math.isnan(v) or math.isinf(v):
        raise InputError(field, value, "a finite number")
    if v < 0 or (v == 0 and not allow_zero):
        raise InputError(field, value, ">= 0" if allow_zero else "> 0")
    return v


def check_fraction(field: str, value):
    """Raise `InputError` unless ``0 < value <= 1``."""
    v = check_positive(field, value)
    if v > 1:
        raise InputError(field, value, "a fraction in (0, 1]")
    return v
