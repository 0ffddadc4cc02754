"""JAX's persistent compilation cache for the command line.

The CLI is an application, so it may set JAX's configuration (the library never does):
compiled programs are kept on disk and a second ``diffhw size`` or ``diffhw evaluate``
of the same structure loads them instead of compiling again. The cache lives in
``$XDG_CACHE_HOME/diffhw/jax`` (``~/.cache/diffhw/jax``); the environment variable
``DIFFHW_CACHE_DIR`` moves it, and an empty value turns it off.
"""

import os

from jax.experimental.compilation_cache import compilation_cache


def cache_dir() -> str | None:
    """Where the CLI keeps compiled programs, or None when ``DIFFHW_CACHE_DIR`` is empty."""
    path = os.environ.get("DIFFHW_CACHE_DIR")
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "diffhw", "jax")
    return os.path.expanduser(path) or None


def enable_compilation_cache() -> str | None:
    """Turn the persistent compilation cache on for this process; returns its folder.
    JAX keeps programs that took at least a second to compile (its default)."""
    path = cache_dir()
    if path is None:
        return None
    compilation_cache.set_cache_dir(path)
    # Importing diffhw already compiled small constants, which fixed the cache as
    # "unused"; a reset makes the next compilation read the folder set above.
    compilation_cache.reset_cache()
    return path
