"""Runs `core.export` off the GUI thread, reading the session through the GUI thread.

The annotation session belongs to the GUI thread (painting and inference results change it), so
the job sees it through `_SessionView`, whose every call is answered by the GUI thread between two
events (`GuiCall`). The reader is thread-safe and is used directly. Probabilities, and the
predictions of frames the session holds none of, come from the inference worker's cache when it
holds the frame, else from one forward pass in the export thread (shared by both).

Unsaved corrections are written to the project first, and core/export.py writes the HDF5 file in a
child process: an export that crashes costs that export, never the corrections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal

from csknet_studio.core import export, export_formats
from csknet_studio.core.errors import ExportError, ProjectError
from csknet_studio.core.modes import Mode
from csknet_studio.ui.job_thread import GuiCall, JobRunner
from csknet_studio.ui.worker_thread import EXPORT_NICE


@dataclass(frozen=True)
class ExportOptions:
    fmt: str = "hdf5"  # "hdf5" | "png" | "coco" | "cvat"
    path: str = ""
    compression: str = "gzip"  # HDF5: "gzip" | "lzf"
    include_probabilities: bool = False  # HDF5
    copy_images: bool = False  # HDF5 (into the file), COCO (PNGs beside it)
    only_corrected: bool = False  # PNG
    coco_per_class: bool = False  # COCO: one annotation per class and frame, not per object
    cvat_objects: bool = True  # CVAT: SegmentationObject/ too
    mode: Mode = Mode.BOTH  # the modality mode the labels / probabilities come from
    include_predictions: bool = True  # uncorrected frames: the model's labels (computed if missing), else 255
    include_propagated: bool = True  # propagated frames: their propagated labels, else as uncorrected


class _SessionView:
    """The slice of `AnnotationSession` that export reads, marshalled to the GUI thread."""

    def __init__(self, session, call: GuiCall) -> None:
        self._s = session
        self._call = call
        # Constant for the export's duration (the dialog is window-modal): read once.
        self.names, self.scheme, self.source, self.checkpoint, self._n = call(
            lambda: (list(session.names), session.scheme, session.source, session.checkpoint, len(session)))
        self.sequence = session.sequence  # thread-safe reader

    def __len__(self) -> int:
        return self._n

    def labels(self, i: int) -> np.ndarray:
        return self._call(lambda: np.array(self._s.labels(i), copy=True))

    def prediction(self, i: int) -> np.ndarray | None:
        return self._call(lambda: None if (p := self._s.prediction(i)) is None else np.array(p, copy=True))

    def origin(self, i: int):
        return self._call(lambda: self._s.origin(i))

    def frame_shape(self, i: int) -> tuple[int, int]:
        return self._call(lambda: self._s.frame_shape(i))

    def corrected_frames(self) -> list[int]:
        return self._call(lambda: list(self._s.corrected_frames()))


def flush_corrections(session) -> None:
    """Write unsaved corrections to the project before an export starts, so nothing the export does
    can cost them. A failed save (disk full, ...) is announced as an autosave failure would be, and
    the corrections stay in memory; the export still runs (it may target another disk)."""
    if getattr(session, "project_path", None) is None or not getattr(session, "dirty", False):
        return
    try:
        session.save()
    except ProjectError as err:
        session.events.save_failed.emit(err)


class ExportWorker(JobRunner):
    """`start_export(session, options, inference_worker)`; `exported(path)` on success."""

    exported = Signal(str)

    def __init__(self, parent=None, num_threads: int | None = None) -> None:
        super().__init__(parent, num_threads, name="export", nice=EXPORT_NICE)
        self._call = GuiCall(self)

    def start_export(self, session, options: ExportOptions, inference_worker=None) -> None:
        flush_corrections(session)
        view = _SessionView(session, self._call)
        path = Path(options.path)

        has_model = inference_worker is not None and inference_worker.model is not None
        if options.include_probabilities and options.fmt == "hdf5" and not has_model:
            raise ExportError("probabilities need a model; open a checkpoint or export without them")
        model = self._model_source(view, options.mode, inference_worker) if has_model else None
        include = {"include_predictions": options.include_predictions,
                   "include_propagated": options.include_propagated,
                   "predict": (lambda i: model(i).labels) if model is not None else None}

        def job(progress, cancel):
            def report(done: int, total: int) -> None:
                progress(done, total, 0.0)

            if options.fmt == "png":
                return export.export_png(view, path, only_corrected=options.only_corrected,
                                         progress=report, cancel=cancel, **include)
            if options.fmt == "coco":
                return export_formats.export_coco(view, path, per_class=options.coco_per_class,
                                                  copy_images=options.copy_images, progress=report,
                                                  cancel=cancel, **include)
            if options.fmt == "cvat":
                return export_formats.export_cvat(view, path, with_objects=options.cvat_objects, progress=report,
                                                  cancel=cancel, **include)
            probs = (lambda i: model(i).probs) if options.include_probabilities and model is not None else None
            return export.export_hdf5(view, path, compression=options.compression, include_probabilities=probs,
                                      copy_images=options.copy_images, mode=options.mode, progress=report,
                                      cancel=cancel, **include)

        self.start(job, lambda p: self.exported.emit(str(p)))

    def _model_source(self, view: _SessionView, mode: Mode, worker):
        """frame -> Prediction: the worker's cached one at the current weights, else a forward pass;
        the last frame's is kept, so its probabilities and labels cost one pass."""
        from csknet_studio.core.predictor import Predictor  # heavy: torch, only when a model is set

        version = self._call(lambda: worker.weights_version)
        predictor: list[Predictor] = []
        last: dict[int, object] = {}

        def predict(i: int):
            if i in last:
                return last[i]
            hit = self._call(lambda: worker.cached(i, mode))
            if hit is None or hit.weights_version != version:
                if not predictor:  # shares the model (and its lock): an eval forward only reads it
                    # the worker's precision and mirroring: a frame the cache misses gets what the GUI shows
                    predictor.append(Predictor(worker.model, worker.device or "cpu", worker.scheme,
                                               mirror=worker.mirror))
                fp = view.sequence[i]
                hit = predictor[0].predict(fp.eo, fp.ir, mode)
            last.clear()
            last[i] = hit
            return hit

        return predict
