"""Common library of optbot's services: bus, schemas, settings, logging, runner."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("optbot")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
