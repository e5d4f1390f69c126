"""A frame's pictures made ready to draw, off the GUI thread.

`render_frame` turns a `FramePair` into what the three views draw: EO and IR scaled with the
sequence's fixed levels (IR through its palette, radiometric IR through the °C span) and the
overlay's underlay (EO, IR, a blend or a checkerboard), each already a `QImage` in the raster
engine's own 32-bit format, so painting converts nothing. It is numpy, OpenCV and QImage (all safe
outside the GUI thread; OpenCV releases the GIL), so `FramePrefetcher` runs it in a background thread for the frames next to
the shown one: while the user scrubs, the GUI thread only swaps finished images.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6 import QtGui

from csknet_studio.core.data.levels import apply_levels
from csknet_studio.core.frames import FramePair
from csknet_studio.core.threads import lower_thread_priority
from csknet_studio.ui.display_maps import DEFAULT_SPAN, celsius_u8, thermal_lut
from csknet_studio.ui.worker_thread import DISPLAY_NICE

_RGB32 = QtGui.QImage.Format.Format_RGB32
PREFETCH_AHEAD = 3  # frames rendered ahead of the shown one, in the direction of travel
KEEP_RENDERED = 6  # finished renderings kept for a slider dragged back (about 5 MB each at 480x640)


@dataclass(frozen=True)
class DisplayStyle:
    """Everything besides the frame that decides its pictures (a change re-renders them)."""

    eo_levels: tuple[float, float] = (0.0, 255.0)
    ir_levels: tuple[float, float] = (0.0, 255.0)
    palette: str = "inferno"
    span: tuple[float, float] = DEFAULT_SPAN
    base: str = "EO"
    blend: float = 0.5


@dataclass
class FrameImages:
    """One frame's pictures: the uint8 arrays (what a pixel read-out or a test looks at) and the
    QImages drawn from them (they share nothing with the frame, and keep their own memory)."""

    eo8: np.ndarray | None
    ir8: np.ndarray | None
    base: np.ndarray | None  # the underlay as shown: (H, W) grey IR index or (H, W, 3) RGB
    eo_image: QtGui.QImage | None
    ir_image: QtGui.QImage | None
    base_image: QtGui.QImage | None
    radiometric: bool


def _qimage(rgb: np.ndarray) -> QtGui.QImage:
    """(H, W, 3) RGB or (H, W) grey uint8 as an RGB32 QImage owning its pixels. OpenCV does the
    channel work: it releases the GIL, so the GUI thread is not kept waiting meanwhile."""
    h, w = rgb.shape[:2]
    bgra = cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGRA if rgb.ndim == 2 else cv2.COLOR_RGB2BGRA)
    return QtGui.QImage(bgra.data, w, h, 4 * w, _RGB32).copy()  # copy: the image owns its memory


def _palette(ir8: np.ndarray, name: str) -> np.ndarray:
    """IR through a thermal palette, as (H, W, 3) RGB (cv2.LUT: no GIL held, unlike numpy indexing)."""
    lut = thermal_lut(name).reshape(256, 1, 3)
    return cv2.LUT(cv2.cvtColor(ir8, cv2.COLOR_GRAY2RGB), lut)


@functools.lru_cache(maxsize=4)
def checker(shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: True on the IR tiles of the checkerboard underlay (read-only, cached per size)."""
    h, w = shape
    tile = max(16, min(h, w) // 8)
    yy, xx = np.indices((h, w))
    sel = ((yy // tile + xx // tile) % 2).astype(bool)
    sel.flags.writeable = False
    return sel


def render_frame(frame: FramePair, style: DisplayStyle) -> FrameImages:
    """The pictures of `frame` under `style`. Safe to call from any thread."""
    eo8 = None if frame.eo is None else np.ascontiguousarray(apply_levels(frame.eo, style.eo_levels))
    radiometric = frame.ir is not None and frame.radiometry is not None and not frame.bad
    ir8 = None
    if frame.ir is not None:
        ir8 = np.ascontiguousarray(celsius_u8(frame, style.span) if radiometric
                                   else apply_levels(frame.ir, style.ir_levels))
    ir_rgb = None if ir8 is None else _palette(ir8, style.palette)
    base_name = style.base if eo8 is not None and ir8 is not None else ("IR" if eo8 is None else "EO")
    if eo8 is None and ir8 is None:
        base, base_rgb = None, None
    elif base_name == "EO":
        base = base_rgb = eo8
    elif base_name == "IR":
        base, base_rgb = ir8, ir_rgb
    else:
        eo_rgb = eo8 if eo8.ndim == 3 else cv2.cvtColor(eo8, cv2.COLOR_GRAY2RGB)
        if base_name == "Blend":
            a = style.blend
            base = cv2.addWeighted(eo_rgb, 1.0 - a, ir_rgb, a, 0.0)
        else:
            base = eo_rgb.copy()
            cv2.copyTo(ir_rgb, checker(tuple(frame.shape)).view(np.uint8), base)
        base = base_rgb = np.ascontiguousarray(base)
    return FrameImages(eo8, ir8, base,
                       None if eo8 is None else _qimage(eo8),
                       None if ir_rgb is None else _qimage(ir_rgb),
                       None if base_rgb is None else _qimage(base_rgb),
                       radiometric)


class FramePrefetcher:
    """Renders the frames the user is about to see in one background thread.

    `ahead(sequence, index, step, style)` queues the next PREFETCH_AHEAD frames in the direction of
    travel; `take(sequence, index, style)` hands over a finished rendering of the shown frame, or
    None (the caller then renders it itself). The last KEEP_RENDERED renderings stay, so a slider
    dragged back finds the frames it just passed. Results for another sequence or style are
    dropped, and a queued job for a frame the user has passed is skipped before it starts.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csknet-display",
                                        initializer=lower_thread_priority, initargs=(DISPLAY_NICE,))
        self._lock = threading.Lock()
        self._jobs: OrderedDict[int, Future] = OrderedDict()  # oldest first
        self._key: tuple[int, DisplayStyle] | None = None
        self._wanted: set[int] = set()

    def _retarget(self, sequence, style: DisplayStyle) -> None:
        key = (id(sequence), style)
        if key != self._key:
            for fut in self._jobs.values():
                fut.cancel()
            self._jobs.clear()
            self._key = key

    def take(self, sequence, index: int, style: DisplayStyle) -> FrameImages | None:
        with self._lock:
            self._retarget(sequence, style)
            fut = self._jobs.get(index)
            if fut is None or not fut.done() or fut.cancelled() or fut.exception() is not None:
                return None
            self._jobs.move_to_end(index)
        return fut.result()

    def ahead(self, sequence, index: int, step: int, style: DisplayStyle) -> None:
        step = 1 if step >= 0 else -1
        wanted = [i for i in (index + step * k for k in range(1, PREFETCH_AHEAD + 1)) if 0 <= i < len(sequence)]
        with self._lock:
            self._retarget(sequence, style)
            self._wanted = set(wanted)
            for i in list(self._jobs):
                if i not in self._wanted and not self._jobs[i].done():
                    self._jobs.pop(i).cancel()  # passed or behind: never started
            for i in wanted:
                if i not in self._jobs:
                    self._jobs[i] = self._pool.submit(self._render, sequence, i, style)
            kept = [i for i, f in self._jobs.items() if f.done() and i not in self._wanted]
            for i in kept[:max(0, len(kept) - KEEP_RENDERED)]:
                del self._jobs[i]  # memory stays at a few frames' pictures

    def _render(self, sequence, index: int, style: DisplayStyle) -> FrameImages | None:
        with self._lock:
            if index not in self._wanted:
                return None
        read = getattr(sequence, "read", None)  # without moving the sequence's own read-ahead
        frame = read(index, prefetch=False) if read is not None else sequence[index]
        return None if frame.bad else render_frame(frame, style)

    def clear(self) -> None:
        with self._lock:
            for fut in self._jobs.values():
                fut.cancel()
            self._jobs.clear()
            self._key = None

    def shutdown(self) -> None:
        self.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["DisplayStyle", "FrameImages", "FramePrefetcher", "KEEP_RENDERED", "PREFETCH_AHEAD", "checker", "render_frame"]
