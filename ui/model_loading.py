"""Giving the window a model: a checkpoint the user names, the bundled default, else an untrained one."""

from __future__ import annotations

from pathlib import Path

from csknet_studio.core.checkpoint import load_checkpoint
from csknet_studio.core.device import resolve_device
from csknet_studio.core.errors import CSKNetError
from csknet_studio.core.model import create_model
from csknet_studio.resources import resource_path

DEFAULT_CHECKPOINT = resource_path("default_model.pt")
FALLBACK_MODEL = "csknet-r18"


def load_model_into(win, checkpoint: str | Path | None = None, device: str | None = None) -> str:
    """Give `win` a model: the named checkpoint, else the bundled default, else an untrained one.

    Returns a note for the status bar ("" for a real checkpoint). A bad checkpoint raises its
    CheckpointError (the caller shows it)."""
    dev = resolve_device(device or win.device_name)
    path = Path(checkpoint) if checkpoint else (DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None)
    if path is not None:
        try:
            lc = load_checkpoint(path)
        except CSKNetError as exc:
            win.show_error(str(exc))
            return "error"
        win.set_model(lc.model, lc.scheme, dev)
        win.checkpoint_path = path
        if win.state.session is not None:
            win.state.session.set_checkpoint(path, lc.weights_hash)
        win.show_status(f"model: {path.name}")
        return ""
    model = create_model(FALLBACK_MODEL)
    win.set_model(model, None, dev, note="untrained model")
    win.checkpoint_path = None
    win.show_status(f"untrained model: {DEFAULT_CHECKPOINT.name} not found; predictions are random until "
                    "you open a checkpoint (File > Open checkpoint) or fine-tune", 30000)
    return "untrained model"
