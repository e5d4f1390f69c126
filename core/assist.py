"""Model- and image-assisted selections for the correction tools: arrays in, (Rect, mask) out.

Each function returns what the session's edits take: the box of the pixels to change and a boolean
mask inside it (or the new values in it), so every tool is one undo step of a few-kilobyte diff.
- `take_region`: the connected region of the predicted class under a click (a magic wand on the
  model's output).
- `superpixels` + `snap_region`: a brush stroke grown to whole superpixels of the stacked EO and IR
  channels, so an edge that only one modality sees still stops it.
- `grabcut_composite` + `grabcut_region`: GrabCut inside a box on a three-channel EO/IR image.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from csknet_studio.core.edits import EMPTY_RECT, Point, Rect, brush_segment, flood_region
from csknet_studio.core.lru import BoundedLRU

# A superpixel is this many pixels on average: 12x12 follows object outlines at 480x640 and keeps
# SLIC well under a second there.
SUPERPIXEL_AREA = 144
# SLIC's weight of distance in the image against distance in the [0, 1] channels: low enough that a
# step of a fifth of the range in one channel bends a superpixel's border onto it.
SUPERPIXEL_COMPACTNESS = 0.05
# A superpixel the stroke's centre line misses is taken once the brush covers this share of it, so
# brushing past a neighbour does not spill into it.
SNAP_MIN_COVER = 0.25


def _unit(a: np.ndarray, levels: tuple[float, float] | None = None) -> np.ndarray:
    """float32 in [0, 1]. 8-bit images keep their 0..255 scale: stretching a nearly flat night EO to
    its display levels would turn its noise into edges. Deeper images (16-bit thermal) are scaled
    between `levels` (the sequence's display levels), else the frame's 1st..99th percentiles."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        levels = (0.0, 255.0)
    elif levels is None:
        levels = tuple(float(v) for v in np.percentile(a, (1.0, 99.0)))
    lo, hi = float(levels[0]), float(levels[1])
    return np.clip((a.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


Levels = dict[str, tuple[float, float]]


def _as_channels(img: np.ndarray | None) -> np.ndarray | None:
    if img is None:
        return None
    return img[..., None] if img.ndim == 2 else img


def eo_ir_stack(eo: np.ndarray | None, ir: np.ndarray | None, levels: Levels | None = None) -> np.ndarray:
    """(H, W, C) float32: the normalised EO channels and the IR channel, IR weighted as much as all
    EO channels together, so an IR-only edge counts as much as an edge seen in every EO channel."""
    eo_c, ir_c = _as_channels(eo), _as_channels(ir)
    if eo_c is None and ir_c is None:
        raise ValueError("superpixels need an EO or an IR image")
    parts = []
    if eo_c is not None:
        parts.append(_unit(eo_c, (levels or {}).get("eo")))
    if ir_c is not None:
        weight = np.sqrt(eo_c.shape[-1]) if eo_c is not None else 1.0
        parts.append(_unit(ir_c[..., :1], (levels or {}).get("ir")) * np.float32(weight))
    return np.ascontiguousarray(np.concatenate(parts, axis=-1))


def superpixels(eo: np.ndarray | None, ir: np.ndarray | None, levels: Levels | None = None, *,
                area: int = SUPERPIXEL_AREA, compactness: float = SUPERPIXEL_COMPACTNESS) -> np.ndarray:
    """(H, W) int32 SLIC superpixel ids 0..n-1 over the stacked EO + IR channels.

    `levels` ({"eo": (lo, hi), "ir": (lo, hi)}, the sequence's display levels) scale 16-bit images
    the same way on every frame."""
    from skimage.segmentation import slic  # heavy (scikit-image): loaded on the first snap-brush use

    stack = eo_ir_stack(eo, ir, levels)
    h, w = stack.shape[:2]
    n = max(1, (h * w) // max(1, int(area)))
    seg = slic(stack, n_segments=n, compactness=float(compactness), channel_axis=-1, convert2lab=False,
               start_label=0, enforce_connectivity=True)
    return np.ascontiguousarray(seg, dtype=np.int32)


def stroke_region(shape: tuple[int, int], points: Sequence[Point], radius: float) -> tuple[Rect, np.ndarray]:
    """The pixels a round brush of `radius` covers along the polyline `points`."""
    pts = [(float(x), float(y)) for x, y in points]
    if not pts:
        raise ValueError("a stroke needs at least one point")
    pairs = list(zip(pts[:-1], pts[1:], strict=True)) or [(pts[0], pts[0])]
    parts = [brush_segment(shape, p0, p1, radius) for p0, p1 in pairs]
    rect = EMPTY_RECT
    for r, _ in parts:
        rect = rect.union(r)
    if rect.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    sel = np.zeros((rect.height, rect.width), bool)
    for r, m in parts:
        if not r.empty:
            sel[r.y0 - rect.y0 : r.y1 - rect.y0, r.x0 - rect.x0 : r.x1 - rect.x0] |= m
    return rect, sel


def _centre_line(shape: tuple[int, int], points: Sequence[Point]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels the stroke's centre passes over (one sample per pixel)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    xs, ys = [pts[:1, 0]], [pts[:1, 1]]
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
        n = int(np.ceil(max(abs(x1 - x0), abs(y1 - y0)))) + 1
        t = np.linspace(0.0, 1.0, n + 1)
        xs.append(x0 + t * (x1 - x0))
        ys.append(y0 + t * (y1 - y0))
    x = np.floor(np.concatenate(xs)).astype(np.int64)
    y = np.floor(np.concatenate(ys)).astype(np.int64)
    h, w = shape
    keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    return y[keep], x[keep]


def snap_region(segments: np.ndarray, points: Sequence[Point], radius: float,
                min_cover: float = SNAP_MIN_COVER) -> tuple[Rect, np.ndarray]:
    """Whole superpixels of `segments` a brush stroke selects.

    A superpixel is taken when the stroke's centre line crosses it, or when the brush covers at
    least `min_cover` of its pixels; the stroke's own pixels outside those superpixels are not."""
    segments = np.asarray(segments)
    if segments.ndim != 2:
        raise ValueError(f"superpixels must be a 2-D id map, got shape {segments.shape}")
    shape = segments.shape
    rect, sel = stroke_region(shape, points, radius)
    if rect.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    n = int(segments.max()) + 1
    covered = np.bincount(segments[rect.slices][sel].ravel(), minlength=n)
    sizes = np.bincount(segments.ravel(), minlength=n)
    take = covered >= np.maximum(1, np.ceil(float(min_cover) * sizes))
    ys, xs = _centre_line(shape, points)
    take[segments[ys, xs]] = True
    chosen = take[segments]
    box = Rect.bbox(chosen)
    if box.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    return box, chosen[box.slices]


def take_region(current: np.ndarray, prediction: np.ndarray, seed: Point,
                class_id: int | None = None) -> tuple[Rect, np.ndarray]:
    """New values for the connected region of the predicted class under `seed` (x, y).

    The region is the 4-connected component of equal predicted class; it keeps that class, or gets
    `class_id` when one is given. Returns (rect, the current labels in rect with the region set)."""
    prediction = np.asarray(prediction)
    if prediction.shape != current.shape:
        raise ValueError(f"prediction {prediction.shape} and labels {current.shape} differ in shape")
    rect, sel = flood_region(prediction, seed)
    x, y = int(round(float(seed[0]))), int(round(float(seed[1])))
    value = int(prediction[y, x]) if class_id is None else int(class_id)
    block = current[rect.slices].copy()
    block[sel] = value
    return rect, block


def grabcut_composite(eo: np.ndarray | None, ir: np.ndarray | None, levels: Levels | None = None) -> np.ndarray:
    """(H, W, 3) uint8 image for GrabCut: EO luminance, IR, and EO colourfulness (max - min of RGB).

    GrabCut models colours with Gaussian mixtures in three channels; this puts the thermal contrast
    in one of them, so an object that only IR separates from its background still comes out."""
    eo_c, ir_c = _as_channels(eo), _as_channels(ir)
    if eo_c is None and ir_c is None:
        raise ValueError("GrabCut needs an EO or an IR image")
    lv = levels or {}
    ir8 = None if ir_c is None else (_unit(ir_c[..., 0], lv.get("ir")) * 255).astype(np.uint8)
    if eo_c is None:
        return np.ascontiguousarray(np.stack([ir8, ir8, ir8], axis=-1))
    eo_u = _unit(eo_c, lv.get("eo"))
    luma = eo_u.mean(axis=-1)
    colour = eo_u.max(axis=-1) - eo_u.min(axis=-1)
    luma8, colour8 = (luma * 255).astype(np.uint8), (colour * 255).astype(np.uint8)
    if ir8 is None:
        return np.ascontiguousarray(np.stack([luma8, luma8, colour8], axis=-1))
    return np.ascontiguousarray(np.stack([luma8, ir8, colour8], axis=-1))


def box_rect(shape: tuple[int, int], corner0: Point, corner1: Point) -> Rect:
    """The pixels whose centres lie between two corners (x, y), clipped to the frame."""
    (xa, ya), (xb, yb) = corner0, corner1
    r = Rect(int(np.ceil(min(ya, yb) - 1e-6)), int(np.ceil(min(xa, xb) - 1e-6)),
             int(np.floor(max(ya, yb) + 1e-6)) + 1, int(np.floor(max(xa, xb) + 1e-6)) + 1)
    return r.clip(shape)


def grabcut_region(image: np.ndarray, box: Rect, *, iterations: int = 5) -> tuple[Rect, np.ndarray]:
    """The foreground GrabCut finds inside `box` of a (H, W, 3) uint8 `image`.

    Runs on the box plus a margin of background only (fast on big frames), with a fixed random
    seed so the same box gives the same mask. Nothing outside the box is ever selected."""
    h, w = image.shape[:2]
    box = box.clip((h, w))
    if box.height < 3 or box.width < 3:
        raise ValueError("the box is too small for GrabCut: drag a box around the object")
    margin = max(8, max(box.height, box.width) // 4)
    crop = Rect(box.y0 - margin, box.x0 - margin, box.y1 + margin, box.x1 + margin).clip((h, w))
    if crop == box:
        raise ValueError("the box covers the whole frame: leave some background around the object")
    img = np.ascontiguousarray(image[crop.slices], dtype=np.uint8)
    mask = np.zeros(img.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    rect = (box.x0 - crop.x0, box.y0 - crop.y0, box.width, box.height)
    try:
        cv2.grabCut(img, mask, rect, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_RECT)
    except cv2.error as exc:
        raise ValueError(f"GrabCut found nothing to separate in this box ({exc.msg or exc})") from exc
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    inner = fg[box.y0 - crop.y0 : box.y1 - crop.y0, box.x0 - crop.x0 : box.x1 - crop.x0]
    sub = Rect.bbox(inner)
    if sub.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    return Rect(box.y0 + sub.y0, box.x0 + sub.x0, box.y0 + sub.y1, box.x0 + sub.x1), inner[sub.slices]


class SuperpixelCache(BoundedLRU[int, np.ndarray]):
    """Superpixel maps of the last few frames, keyed by frame index (each map is 4 bytes a pixel)."""

    def __init__(self, max_frames: int = 4) -> None:
        super().__init__(max_items=max_frames)


__all__ = [
    "SuperpixelCache", "box_rect", "eo_ir_stack", "grabcut_composite", "grabcut_region", "snap_region",
    "stroke_region", "superpixels", "take_region",
]
