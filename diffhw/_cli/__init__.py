"""The interfaces' command line (`diffhw ...`); `main` is the console script."""

from ._main import main

__all__ = ["main"]
