"""Decoding and normalising single images: the one place that knows cv2's quirks.

cv2 returns BGR(A) and silently returns None on failure; everything here turns that into RGB
arrays or a `CorruptImageError` naming the file, so readers never see a half-decoded frame.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from csknet_studio.core.classes import IGNORE_INDEX, ClassScheme
from csknet_studio.core.errors import ColourMappedIRWarning, CorruptImageError

IMAGE_EXTS: tuple[str, ...] = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".jp2", ".webp", ".pgm", ".ppm")
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".ts")
HDF5_EXTS: tuple[str, ...] = (".h5", ".hdf5", ".he5", ".hdf")

# OpenCV prints its own warnings straight to the terminal ("[ WARN:0@1.883] ... PNG input buffer is
# incomplete", once per decode attempt); every failure here becomes one CorruptImageError naming
# the file instead, so its own logging is silenced.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

# cv2 would try to allocate whatever a (possibly forged) header claims; refuse absurd sizes early.
MAX_PIXELS = 1 << 28


COLOUR_MAPPED_IR = ("the IR images are colour-mapped (a palette such as jet, not raw thermal): they are read as "
                    "their grey conversion, which is no temperature and orders hot and cold only roughly; open "
                    "the camera's raw (grey or 16-bit) thermal images if you have them")


@contextlib.contextmanager
def noticing_colour_mapped_ir() -> Iterator[list[str]]:
    """Collect, while the block runs (in this thread), the notice that IR came colour-mapped: the
    list holds the message once when it did, else stays empty."""
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ColourMappedIRWarning)
        try:
            yield seen
        finally:
            if any(issubclass(w.category, ColourMappedIRWarning) for w in caught):
                seen.append(COLOUR_MAPPED_IR)
            for w in caught:  # anything else goes on to whoever listens
                if not issubclass(w.category, ColourMappedIRWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def natural_key(s: str) -> tuple:
    """Sort "2" before "10" (frame numbers are rarely zero-padded consistently)."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s))


def list_images(folder: Path) -> dict[str, Path]:
    """Map stem -> path for image files in `folder` (one level). Preferred extension wins a tie."""
    rank = {e: i for i, e in enumerate(IMAGE_EXTS)}
    out: dict[str, Path] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    for e in entries:
        if e.name.startswith("."):
            continue
        ext = os.path.splitext(e.name)[1].lower()
        if ext not in rank or not e.is_file():
            continue
        p = Path(e.path)
        stem = p.stem
        if stem not in out or rank[ext] < rank[out[stem].suffix.lower()]:
            out[stem] = p
    return out


# --------------------------------------------------------------------------------------- headers
def png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit_depth, colour_type) of a PNG, or None when it is not one."""
    if len(data) < 29 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return w, h, depth, ctype


def png_channels(path: Path) -> int | None:
    """Channel count from a PNG's IHDR (4 for RGBA, i.e. MFNet's RGB+T) without decoding it."""
    try:
        with open(path, "rb") as fh:
            hdr = png_header(fh.read(32))
    except OSError:
        return None
    if hdr is None:
        return None
    return {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(hdr[3])


def _looks_like_image(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" or data[:3] == b"\xff\xd8\xff" or data[:2] == b"BM" \
        or data[:4] in (b"II*\x00", b"MM\x00*") or data[:2] in (b"P5", b"P6") \
        or data[:4] == b"RIFF" or data[4:12] == b"jP  \r\n\x87\n" or data[:4] == b"\xff\x4f\xff\x51"


# --------------------------------------------------------------------------------------- decoding
def read_image(path: Path) -> np.ndarray:
    """Decode an image with its own depth and channels (cv2 order: BGR / BGRA).

    Reads the bytes ourselves (non-ASCII paths work) and raises CorruptImageError naming the
    file for anything that is missing, empty, truncated or not an image.
    """
    path = Path(path)
    return decode_bytes(read_file_bytes(path), path)


def read_file_bytes(path: Path) -> bytes:
    """A frame file's bytes, or CorruptImageError naming it when it is gone or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CorruptImageError(f"{path}: file not found (moved or deleted since the sequence was opened?)",
                                str(path)) from None
    except OSError as exc:
        raise CorruptImageError(f"{path}: cannot read ({exc.strerror or exc})", str(path)) from None


def decode_bytes(data: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes; see read_image."""
    if not data:
        raise CorruptImageError(f"{path}: empty file (0 bytes)", str(path))
    if not _looks_like_image(data):
        raise CorruptImageError(f"{path}: not an image file (unknown header {data[:8]!r})", str(path))
    hdr = png_header(data)
    if hdr is not None and hdr[0] * hdr[1] > MAX_PIXELS:
        raise CorruptImageError(f"{path}: header claims {hdr[0]}x{hdr[1]} pixels, too large", str(path))
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except (cv2.error, ValueError, OverflowError, MemoryError) as exc:
        raise CorruptImageError(f"{path}: cannot decode ({type(exc).__name__}: {str(exc).strip()[:120]})",
                                str(path)) from None
    if img is None or img.size == 0:
        raise CorruptImageError(f"{path}: cannot decode (truncated or corrupt image data)", str(path))
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)):
        raise CorruptImageError(f"{path}: unsupported image shape {img.shape}", str(path))
    return img


# ------------------------------------------------------------------------------------ normalising
def _fit_dtype(a: np.ndarray, allowed: tuple[type, ...]) -> np.ndarray:
    """Bring an odd dtype (int16, int32, float64, bool) to the nearest one the app displays."""
    if a.dtype.type in allowed:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo >= 0 and hi <= 255 and np.uint8 in allowed:
            return a.astype(np.uint8)
        if lo >= 0 and hi <= 65535 and np.uint16 in allowed:
            return a.astype(np.uint16)
        if np.float32 in allowed:
            return a.astype(np.float32)
        return np.clip(a, 0, 65535).astype(np.uint16)
    if np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
        if np.float32 in allowed:
            return f
        # EO float: [0, 1] images are scaled, anything else is clipped to 8 bits.
        if f.size and float(f.max()) <= 1.0:
            f = f * 255.0
        return np.clip(np.rint(f), 0, 255).astype(np.uint8)
    raise ValueError(f"unsupported dtype {a.dtype}")


def to_rgb(img: np.ndarray, bgr: bool = True) -> np.ndarray:
    """Any decoded image -> (H, W, 3) RGB uint8/uint16. Grey is replicated, alpha dropped."""
    img = _fit_dtype(img, (np.uint8, np.uint16))
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    c = img.shape[2]
    if c == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    if c == 2:  # grey + alpha
        return np.ascontiguousarray(np.repeat(img[:, :, :1], 3, axis=2))
    if bgr:  # cv2's own swap is several times faster than a numpy channel reversal + copy
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB if c == 3 else cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(img[:, :, :3])


def to_grey(img: np.ndarray, bgr: bool = True) -> np.ndarray:
    """Any decoded thermal image -> (H, W) keeping raw values; grey stored as 3 channels folds back."""
    img = _fit_dtype(img, (np.uint8, np.uint16, np.float32))
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    c = img.shape[2]
    if c in (1, 2):
        return np.ascontiguousarray(img[:, :, 0])
    three = img[:, :, :3]
    if np.array_equal(three[:, :, 0], three[:, :, 1]) and np.array_equal(three[:, :, 0], three[:, :, 2]):
        return np.ascontiguousarray(three[:, :, 0])
    warnings.warn(ColourMappedIRWarning(COLOUR_MAPPED_IR), stacklevel=2)
    code = cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY
    return cv2.cvtColor(np.ascontiguousarray(three), code)


def to_label(img: np.ndarray, scheme: ClassScheme | None, path: Path | str = "<label>") -> np.ndarray:
    """A label image -> (H, W) uint8 ids. Colour-coded masks are mapped through the scheme's palette."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        if img.dtype != np.uint8:
            if np.issubdtype(img.dtype, np.integer) and img.size and int(img.max()) <= 255 and int(img.min()) >= 0:
                return img.astype(np.uint8)
            raise CorruptImageError(f"{path}: label image has dtype {img.dtype}; expected 8-bit class ids",
                                    str(path))
        return np.ascontiguousarray(img)
    rgb = to_rgb(img)
    if rgb.dtype != np.uint8:
        raise CorruptImageError(f"{path}: colour label image must be 8-bit", str(path))
    if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2]):
        return np.ascontiguousarray(rgb[:, :, 0])
    if scheme is None:
        raise CorruptImageError(f"{path}: colour-coded label image but no class scheme to decode its colours",
                                str(path))
    return colours_to_ids(rgb, scheme)


def colours_to_ids(rgb: np.ndarray, scheme: ClassScheme) -> np.ndarray:
    """Exact palette match; colours outside the palette become the ignore index (never a wrong class)."""
    key = (rgb[:, :, 0].astype(np.uint32) << 16) | (rgb[:, :, 1].astype(np.uint32) << 8) | rgb[:, :, 2]
    out = np.full(key.shape, IGNORE_INDEX, dtype=np.uint8)
    for cid, (r, g, b) in enumerate(scheme.palette):
        out[key == ((r << 16) | (g << 8) | b)] = cid
    return out


def fit_to_grid(a: np.ndarray, shape: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize a 2-D/3-D array to (H, W) (area when shrinking, linear when growing, nearest for ids)."""
    h, w = shape
    if a.shape[:2] == (h, w):
        return a
    if nearest:
        interp = cv2.INTER_NEAREST
    elif a.shape[0] >= h and a.shape[1] >= w:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LINEAR
    return cv2.resize(a, (w, h), interpolation=interp)


def stems_summary(names: Iterable[str], limit: int = 10) -> str:
    names = sorted(names, key=natural_key)
    head = ", ".join(names[:limit])
    return head + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")
