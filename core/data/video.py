"""A pair of video files (EO and IR) read frame by frame with cv2.VideoCapture.

Seeking is the expensive part of video, so each capture remembers its position: scrubbing forward
(and the prefetcher reading ahead) decodes sequentially; only a jump pays for a seek.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csknet_studio.core.errors import CorruptImageError, EmptySequenceError, FrameCountMismatchError

from .alignment import Alignment
from .base import BaseSequence, RawFrame
from .imaging import to_grey, to_rgb


class _Stream:
    def __init__(self, path: Path, what: str):
        self.path = path
        if not path.is_file():
            raise CorruptImageError(f"{path}: {what} video not found", str(path))
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            cap.release()
            raise CorruptImageError(f"{path}: cannot open the {what} video (not a video, or a codec this "
                                    f"OpenCV build lacks; re-encode as MJPG .avi or H.264 .mp4)", str(path))
        self.cap = cap
        self.lock = threading.Lock()
        self.pos = 0
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n <= 0:  # some containers do not store a count: count by grabbing (once, at open)
            n = 0
            while cap.grab():
                n += 1
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.count = n
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def read(self, i: int) -> np.ndarray:
        with self.lock:
            if self.cap is None:
                raise CorruptImageError(f"{self.path}: video closed", str(self.path))
            if self.pos != i:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, img = self.cap.read()
            self.pos = i + 1 if ok else -1
        if not ok or img is None:
            raise CorruptImageError(f"{self.path}: frame {i} could not be decoded", str(self.path))
        return img

    def release(self) -> None:
        with self.lock:
            if self.cap is not None:
                self.cap.release()
                self.cap = None


class VideoPairSequence(BaseSequence):
    """EO video + IR video of the same length; frame names are zero-padded indices."""

    def __init__(self, eo_path: str | Path, ir_path: str | Path, *, alignment: Alignment | None = None,
                 source: Path | None = None, **cache_kw: Any):
        eo_p, ir_p = Path(eo_path), Path(ir_path)
        self._eo = _Stream(eo_p, "EO")
        try:
            self._ir = _Stream(ir_p, "IR")
        except BaseException:
            self._eo.release()
            raise
        if self._eo.count != self._ir.count:
            self._eo.release()
            self._ir.release()
            raise FrameCountMismatchError(f"{eo_p} has {self._eo.count} frames but {ir_p} has {self._ir.count}; "
                                          f"trim them to the same length (frames pair by index)")
        if self._eo.count == 0:
            self._eo.release()
            self._ir.release()
            raise EmptySequenceError(f"{eo_p} and {ir_p} hold no frames")
        cache_kw.setdefault("workers", 1)  # one reader keeps the captures sequential
        super().__init__(layout="video", source=source or eo_p, names=[f"{i:06d}" for i in range(self._eo.count)],
                         alignment=alignment, **cache_kw)
        self.origin = str(source) if source is not None else (str(eo_p), str(ir_p))
        self.fps = self._eo.fps
        try:
            self._probe()
        except BaseException:
            self.close()
            raise

    def _read_raw(self, i: int) -> RawFrame:
        return RawFrame(to_rgb(self._eo.read(i)), to_grey(self._ir.read(i)))

    def _close(self) -> None:
        self._eo.release()
        self._ir.release()
