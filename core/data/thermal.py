"""Reading radiometric IR files: FLIR R-JPEGs (through flyr) and TIFFs (through tifffile).

Both return the raw counts the model gets and the conversion to °C the file states (or None):
- a FLIR R-JPEG's APP1 segments hold a FFF container; flyr finds it and parses its camera-info
  record (Planck constants, emissivity, distances, temperatures); the raw-data record (16-bit
  counts, plain or PNG) is decoded here with numpy / OpenCV, as flyr's per-pixel Python loop would
  take a tenth of a second a frame;
- a TIFF's ImageDescription may be a JSON block ({"units": "centikelvin"}, see
  `radiometry.scale_from_meta`), and GDAL's metadata tag may carry a band scale / offset (with
  a unit type of K for kelvin, else °C).
Every other file decodes as before (OpenCV), without a conversion.
`IRScale` is the rule a sequence lays over these: a user's scale, or a fallback for files that state none.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np

from csknet_studio.core.errors import CorruptImageError
from csknet_studio.core.radiometry import (
    ZERO_CELSIUS_K,
    LinearScale,
    PlanckScale,
    Radiometry,
    scale_from_meta,
)

from .imaging import MAX_PIXELS, decode_bytes, read_file_bytes, to_grey

_FLIR_APP1 = b"\xff\xe1"
_FLIR_MAGIC = b"FLIR\x00"
RAW_DATA_RECORD = 1
CAMERA_INFO_RECORD = 32
GDAL_METADATA_TAG = 42112
# tifffile logs its own warnings on odd or damaged files; each failure here becomes one
# CorruptImageError naming the file instead (as imaging.py does for OpenCV).
logging.getLogger("tifffile").setLevel(logging.ERROR)


def is_flir_jpeg(data: bytes) -> bool:
    """A JPEG whose APP1 segments carry FLIR's thermal container (a radiometric R-JPEG)."""
    if data[:2] != b"\xff\xd8":
        return False
    head = data[: 1 << 16]
    at = head.find(_FLIR_APP1)
    while at >= 0:
        if head[at + 4: at + 9] == _FLIR_MAGIC:
            return True
        at = head.find(_FLIR_APP1, at + 2)
    return False


def read_ir_file(path: Path) -> tuple[np.ndarray, Radiometry | None]:
    """(H, W) IR counts of one file and the conversion to °C it carries, if any."""
    path = Path(path)
    data = read_file_bytes(path)
    if is_flir_jpeg(data):
        return read_flir(data, path)
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return read_tiff(data, path)
    return to_grey(decode_bytes(data, path)), None


# ------------------------------------------------------------------------------------------ FLIR
def read_flir(data: bytes, path: Path | str = "<bytes>") -> tuple[np.ndarray, PlanckScale]:
    """Raw uint16 counts and the Planck conversion of a FLIR R-JPEG's bytes."""
    from flyr.records import extract_flir_app1, parse_flir_records  # heavy: flyr, first FLIR R-JPEG only
    from flyr.thermal import parse_camera_info  # heavy: flyr

    try:
        fff = extract_flir_app1(io.BytesIO(data))
        records = parse_flir_records(fff)
        if RAW_DATA_RECORD not in records or CAMERA_INFO_RECORD not in records:
            raise ValueError("no raw-data or camera-info record")
        meta = parse_camera_info(fff, records[CAMERA_INFO_RECORD])
        raw = _flir_raw(fff.getvalue(), records[RAW_DATA_RECORD])
        scale = PlanckScale.from_flir(meta, source=f"FLIR R-JPEG {Path(path).name}")
    except CorruptImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure on damaged bytes is a corrupt file
        raise CorruptImageError(f"{path}: FLIR R-JPEG thermal data unreadable ({type(exc).__name__}: {exc})",
                                str(path)) from None
    return raw, scale


def _flir_raw(fff: bytes, record: tuple[int, int, int, int]) -> np.ndarray:
    """The raw-data record: a 32-byte header (width, height at bytes 2..6), then 16-bit
    little-endian counts, or a PNG whose 16-bit samples FLIR stored byte-swapped."""
    _, _, offset, length = record
    head = fff[offset: offset + 32]
    if len(head) < 32:
        raise ValueError("raw-data record is truncated")
    w, h = int.from_bytes(head[2:4], "little"), int.from_bytes(head[4:6], "little")
    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        raise ValueError(f"raw-data record claims {w}x{h} pixels")
    # Record lengths count the header in some files and not in others: read enough for either.
    body = fff[offset + 32: offset + 32 + max(length, 2 * w * h)]
    if body[:4] == b"\x89PNG":
        img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None or img.shape[:2] != (h, w) or img.dtype != np.uint16:
            raise ValueError(f"raw-data PNG does not decode to {w}x{h} 16-bit counts")
        return np.ascontiguousarray(img.byteswap())
    if len(body) < 2 * w * h:
        raise ValueError(f"raw-data record holds {len(body)} bytes, {w}x{h} counts need {2 * w * h}")
    return np.frombuffer(body, "<u2", count=w * h).reshape(h, w).astype(np.uint16)


# ------------------------------------------------------------------------------------------ TIFF
def read_tiff(data: bytes, path: Path | str = "<bytes>") -> tuple[np.ndarray, LinearScale | None]:
    """The first page of a TIFF and the linear scale its metadata states (else None)."""
    import tifffile  # heavy: tifffile (0.15 s), loaded with the first TIFF

    desc = gdal = img = None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            page = tf.pages[0]
            desc = page.description
            tag = page.tags.get(GDAL_METADATA_TAG)
            gdal = None if tag is None else str(tag.value)
            if int(np.prod(page.shape)) > 4 * MAX_PIXELS:  # a forged header: refuse before allocating
                raise CorruptImageError(f"{path}: TIFF header claims {page.shape} samples, too large", str(path))
            img = page.asarray()
    except CorruptImageError:
        raise
    except Exception:  # noqa: BLE001 - a codec tifffile lacks, or damaged bytes: OpenCV decodes or refuses
        img = None
    bgr = img is None  # OpenCV decodes colour as BGR, tifffile as stored (RGB)
    if img is None:
        img = decode_bytes(data, path)
    try:
        scale = tiff_scale(desc, gdal, Path(path).name)
    except ValueError as exc:
        raise CorruptImageError(f"{path}: {exc}", str(path)) from None
    if img.ndim == 3 and img.shape[0] in (1, 3, 4) and img.shape[-1] not in (1, 3, 4):
        img = np.moveaxis(img, 0, -1)  # planar samples
    if img.ndim not in (2, 3) or img.size == 0:
        raise CorruptImageError(f"{path}: unsupported TIFF image shape {img.shape}", str(path))
    try:
        return to_grey(img, bgr=bgr), scale
    except ValueError as exc:  # complex or structured samples
        raise CorruptImageError(f"{path}: TIFF IR of {img.dtype} samples is not supported ({exc})", str(path)) from None


def tiff_scale(description: str | None, gdal: str | None, name: str) -> LinearScale | None:
    """The scale an ImageDescription JSON block or GDAL's SCALE/OFFSET/UNITTYPE items state."""
    if description and description.lstrip().startswith("{"):
        try:
            meta = json.loads(description)
        except ValueError:
            meta = None
        scale = scale_from_meta(meta, f"{name} ImageDescription")
        if scale is not None:
            return scale
    if gdal:
        items = {m.group(1).upper(): m.group(2).strip()
                 for m in re.finditer(r'<Item[^>]*\bname="([^"]+)"[^>]*>([^<]*)</Item>', gdal)}
        roles = {m.group(1).lower(): m.group(2).strip()
                 for m in re.finditer(r'<Item[^>]*\brole="([^"]+)"[^>]*>([^<]*)</Item>', gdal)}
        gain, offset = roles.get("scale", items.get("SCALE")), roles.get("offset", items.get("OFFSET"))
        if gain is not None or offset is not None:
            unit = (roles.get("unittype") or items.get("UNITTYPE") or "").strip().lower()
            base = -ZERO_CELSIUS_K if unit in ("k", "kelvin") else 0.0
            try:
                return LinearScale(float(gain or 1.0), float(offset or 0.0) + base, f"{name} GDAL metadata")
            except ValueError:
                return None
    return None


def hdf5_ir_scale(path: Path) -> Radiometry | None:
    """The conversion our HDF5 export recorded on its `ir_celsius` dataset (frame 0's), or None."""
    try:
        with h5py.File(path, "r") as f:
            ds = f.get("ir_celsius")
            conv = None if ds is None else ds.attrs.get("conversion")
            d = json.loads(conv.decode() if isinstance(conv, bytes) else conv) if conv is not None else None
        if not isinstance(d, dict):
            return None
        kind = d.pop("kind", None)
        if kind == LinearScale.kind:
            return LinearScale(float(d["gain"]), float(d["offset"]), str(d.get("source", path.name)))
        if kind == PlanckScale.kind:
            return PlanckScale(**d)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


# ------------------------------------------------------------------------------------ sequences
@dataclass(frozen=True)
class IRScale:
    """How a sequence's IR counts read as °C: the scale `set_ir_scale` was given and whether it
    wins over what each file states. Frozen, so a sequence swaps the whole rule in one assignment
    and a reader thread never sees a new scale with the old override flag.

    Each frame's conversion is, in this order: a scale set with override (a user's choice wins
    over any file), the one the frame's own file states (FLIR R-JPEG, TIFF metadata), a scale set
    without override (a sequence-wide fallback: a sidecar JSON such as the demo's demo.json), else
    none."""

    scale: Radiometry | None = None
    override: bool = True

    @property
    def forced(self) -> Radiometry | None:
        """The scale every frame gets whatever its file says, or None when files have a say."""
        return self.scale if self.override else None

    def frame_radiometry(self, own: Radiometry | None) -> Radiometry | None:
        """The conversion of a frame whose file states `own` (None when it states none)."""
        if self.scale is not None and self.override:
            return self.scale
        return own if own is not None else self.scale
