"""The command line's caches of compiled programs.

The CLI is an application, so it may set JAX's configuration (the library never does):
compiled programs are kept on disk and a second ``diffhw size`` or ``diffhw evaluate``
of the same structure loads them instead of tracing and compiling again. diffhw's own
entry points are kept whole, traced and compiled (`diffhw._programs`, in
``programs/``); every other program (small operations outside them) in JAX's
persistent compilation cache, however short its compile. The cache lives in
``$XDG_CACHE_HOME/diffhw/jax`` (``~/.cache/diffhw/jax``); the environment variable
``DIFFHW_CACHE_DIR`` moves it, and an empty value turns it off.
"""

import os

import jax
from jax.experimental.compilation_cache import compilation_cache

from .._programs import enable_program_cache


def cache_dir() -> str | None:
    """Where the CLI keeps compiled programs, or None when ``DIFFHW_CACHE_DIR`` is empty."""
    path = os.environ.get("DIFFHW_CACHE_DIR")
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "diffhw", "jax")
    return os.path.expanduser(path) or None


def enable_compilation_cache() -> str | None:
    """Turn both caches on for this process; returns their folder."""
    path = cache_dir()
    if path is None:
        return None
    compilation_cache.set_cache_dir(path)
    # Every program, however quick to compile: a warm run then compiles nothing.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    enable_program_cache(os.path.join(path, "programs"))
    # Importing diffhw already compiled small constants, which fixed the cache as
    # "unused"; a reset makes the next compilation read the folder set above.
    compilation_cache.reset_cache()
    return path
