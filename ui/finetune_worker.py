"""Fine-tuning and checkpoint saving off the GUI thread (a `JobRunner` with typed results).

`core.finetune.finetune` only reads the inference model (it trains a copy), so the worker can hand
it the live model without stopping inference.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import Signal

from csknet_studio.ui.job_thread import JobRunner
from csknet_studio.ui.worker_thread import FINETUNE_NICE, default_num_threads

__all__ = ["FinetuneWorker", "default_num_threads"]


class FinetuneWorker(JobRunner):
    """Fine-tuning and checkpoint saving. Extra signals: finished(FinetuneResult),
    saved(path, weights_hash)."""

    finished = Signal(object)
    saved = Signal(str, str)

    def __init__(self, parent=None, num_threads: int | None = None, nice: int = FINETUNE_NICE) -> None:
        super().__init__(parent, num_threads, name="finetune", nice=nice)

    def start_finetune(self, model, samples, config) -> None:
        """Fine-tune a copy of `model` on `samples` (or on what the loader `samples()` returns, called
        in the job thread); `model` itself is never modified."""
        from csknet_studio.core.finetune import finetune  # heavy: torch, only when fine-tuning starts

        def job(progress, cancel):
            data = samples() if callable(samples) else samples
            return finetune(model, data, config, progress=progress, cancel=cancel)

        self.start(job, self.finished.emit)

    def save(self, path: str, model, state_dict=None, **checkpoint_kwargs) -> None:
        """Write `model` (or its architecture with `state_dict`'s weights) as a checkpoint at `path`."""
        from csknet_studio.core.checkpoint import save_checkpoint  # heavy: torch, only on save
        from csknet_studio.core.predictor import model_lock

        def job(_progress, _cancel):
            with model_lock(model):  # not while the inference thread loads weights into it
                clone = copy.deepcopy(model).cpu()
            if state_dict is not None:
                clone.load_state_dict(state_dict)
            return path, save_checkpoint(path, clone, **checkpoint_kwargs)

        self.start(job, lambda done: self.saved.emit(str(done[0]), str(done[1])))
