"""The interfaces' command line (`diffhw ...`): `console` is the console script (it turns
on the persistent compilation cache, then runs `main`); tests call `main` in-process."""

from ._main import console, main

__all__ = ["console", "main"]
