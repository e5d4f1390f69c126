"""Runs `core.propagate.propagate_labels` off the GUI thread; the result is one undo step.

The job reads frames straight from the (thread-safe) reader and asks the GUI thread for each target
frame's prediction (`GuiCall`: the session belongs to the GUI thread). The labels it computes are
handed back and applied with `session.apply_propagation` in the GUI thread, which skips any frame a
person corrected while the job ran.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal

from csknet_studio.core.edits import Origin
from csknet_studio.core.propagate import PropagationConfig, propagate_labels, propagation_targets
from csknet_studio.ui.job_thread import GuiCall, JobRunner
from csknet_studio.ui.worker_thread import PROPAGATE_NICE


class PropagateWorker(JobRunner):
    """`start_propagation(session, start, count, direction)`; `propagated(frames)` when applied."""

    propagated = Signal(list)

    def __init__(self, parent=None, num_threads: int | None = None) -> None:
        super().__init__(parent, num_threads, name="propagate", nice=PROPAGATE_NICE)
        self._call = GuiCall(self)

    def start_propagation(self, session, start: int, count: int, direction: int,
                          config: PropagationConfig | None = None) -> list[int]:
        """Queue the job; returns the frames it will write (empty: nothing to do, nothing started).
        ValueError when the start frame has no labels to carry."""
        if session.origin(start) is Origin.EMPTY:
            raise ValueError(f"frame {start + 1} has no labels yet: correct it, or wait for its prediction")
        targets = propagation_targets(session.origins(), start, count, direction)
        if not targets:
            return []
        labels = np.array(session.labels(start), copy=True)
        sequence = session.sequence

        def prediction(i: int) -> np.ndarray | None:
            return self._call(lambda: None if (p := session.prediction(i)) is None else np.array(p, copy=True))

        def job(progress, cancel):
            return propagate_labels(sequence, start, labels, targets, prediction, config=config,
                                    progress=lambda d, t: progress(d, t, 0.0), cancel=cancel)

        def apply(results) -> None:
            frames = session.apply_propagation({p.index: p.labels for p in results})
            self.propagated.emit(frames)

        self.start(job, apply)
        return targets
