"""CSKNet Studio: label and analyse paired EO/IR sequences with CSK-Net."""

from csknet_studio.core.version import __version__

__all__ = ["__version__"]
