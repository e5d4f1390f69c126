"""Exceptions a user can act on. Every message names the file/frame/key at fault.

The CLI prints these as one line; the GUI shows them in a dialog and stays usable.
Anything else escaping core/ is a bug.
"""

from __future__ import annotations


class CSKNetError(Exception):
    """Base of every documented, user-facing error."""


# --- sequences / readers -------------------------------------------------------------------
class SequenceError(CSKNetError):
    """A sequence could not be opened or read."""


class UnknownLayoutError(SequenceError):
    """The path matches none of the supported layouts (message lists what was looked for)."""


class EmptySequenceError(SequenceError):
    """The layout was recognised but holds no frames."""


class UnmatchedFilesError(SequenceError):
    """EO and IR file stems do not pair up; `.eo_only` / `.ir_only` list the culprits."""

    def __init__(self, message: str, eo_only: list[str] | None = None, ir_only: list[str] | None = None):
        super().__init__(message)
        self.eo_only = list(eo_only or [])
        self.ir_only = list(ir_only or [])


class FrameCountMismatchError(SequenceError):
    """Two streams (e.g. two videos, or eo/ir datasets) have different frame counts."""


class AspectMismatchError(SequenceError):
    """IR and EO frames differ in aspect ratio and no alignment says how IR lies on the EO grid."""


class CorruptImageError(SequenceError):
    """One file could not be decoded; `.path` names it."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


# --- model / checkpoints ----------------------------------------------------------------------
class CheckpointError(CSKNetError):
    """A checkpoint is missing, truncated, of another format version, or does not fit the model."""


class WeightsMismatchError(CheckpointError):
    """A state_dict's keys or shapes do not match the model (message lists them)."""


class NotACheckpointError(CheckpointError):
    """The file is not a CSKNet Studio checkpoint (another format, or not a torch file at all)."""


class CorruptCheckpointError(CheckpointError):
    """The file looks like a checkpoint but cannot be read: truncated or damaged."""


class CheckpointVersionError(CheckpointError):
    """The checkpoint was written in a format version this program cannot read."""


class SchemeMismatchError(CheckpointError):
    """A checkpoint's classes are not the classes of the data it is used on (message names both)."""


class ConfigError(CSKNetError):
    """A config file or value is invalid (message names the key)."""


class ModelInputError(CSKNetError):
    """Arrays/tensors handed to the model have the wrong shape, dtype or pairing (message says which)."""


class TrainingError(CSKNetError):
    """Training or fine-tuning stopped: non-finite loss, no labelled pixels, ..."""


class CancelledError(CSKNetError):
    """A long job was cancelled by the user; nothing was changed."""


class ColourMappedIRWarning(UserWarning):
    """The IR images are colour-mapped (their three channels differ, as a palette such as jet makes
    them): they are read as their grey conversion, which orders hot and cold only roughly and is
    no temperature."""


# --- projects / export --------------------------------------------------------------------------
class ProjectError(CSKNetError):
    """A project (annotation) file is unreadable or belongs to another sequence."""


class ExportError(CSKNetError):
    """An export failed (disk full, permission, ...); any earlier file is left intact."""


class ProjectLockedError(ProjectError):
    """Another running copy of the app holds the project's lock; `.holder` says which (a LockHolder).

    `.checkable` is False when the holder runs on another machine, so whether it is still alive is
    unknown: opening with take_over_lock=True (CLI: --take-over-lock) is then allowed."""

    def __init__(self, message: str, holder: object = None, checkable: bool = True):
        super().__init__(message)
        self.holder = holder
        self.checkable = checkable
