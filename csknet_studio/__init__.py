"""CSKNet Studio: label and analyse paired EO/IR sequences with CSK-Net."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("csknet-studio")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
