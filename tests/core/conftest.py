"""Fixtures of the engine tests: FLIR R-JPEGs written here, and a small eo/ ir/ PNG folder sequence.

An R-JPEG is a JPEG whose APP1 "FLIR" segments carry a FFF container with a raw-data record (16-bit
counts, plain little-endian or byte-swapped PNG) and a camera-info record (Planck constants and
object parameters at the offsets FLIR uses, the ones flyr reads). No FLIR sample ships with flyr or
in the shared real-data folder, so the tests build their own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from csknet_studio.core.data import ArraySequence

RAW, CAMERA_INFO = 1, 32

# A FLIR camera's calibration and a scene's object parameters (temperatures in kelvin).
CONSTANTS = {
    "planck_r1": 21106.77, "planck_r2": 0.012545258, "planck_b": 1501.0, "planck_f": 1.0, "planck_o": -7340,
    "emissivity": 0.95, "object_distance": 1.0, "reflected_apparent_temperature": 293.15,
    "atmospheric_temperature": 293.15, "ir_window_temperature": 293.15, "ir_window_transmission": 1.0,
    "relative_humidity": 0.5, "atmospheric_trans_alpha1": 0.006569, "atmospheric_trans_alpha2": 0.01262,
    "atmospheric_trans_beta1": -0.002276, "atmospheric_trans_beta2": -0.00667, "atmospheric_trans_x": 1.9,
}
_FLOATS = {  # camera-info record: offset of each little-endian float32
    "emissivity": 32, "object_distance": 36, "reflected_apparent_temperature": 40,
    "atmospheric_temperature": 44, "ir_window_temperature": 48, "ir_window_transmission": 52,
    "relative_humidity": 60, "planck_r1": 88, "planck_b": 92, "planck_f": 96,
    "atmospheric_trans_alpha1": 112, "atmospheric_trans_alpha2": 116, "atmospheric_trans_beta1": 120,
    "atmospheric_trans_beta2": 124, "atmospheric_trans_x": 128, "planck_r2": 780,
}


def _camera_info(constants: dict) -> bytes:
    rec = bytearray(832)
    for key, at in _FLOATS.items():
        rec[at:at + 4] = struct.pack("<f", float(constants[key]))
    rec[776:780] = struct.pack("<i", int(constants["planck_o"]))
    return bytes(rec)


def _raw_record(counts: np.ndarray, png: bool) -> bytes:
    h, w = counts.shape
    head = bytearray(32)
    head[0:2] = (2).to_bytes(2, "little")
    head[2:4], head[4:6] = w.to_bytes(2, "little"), h.to_bytes(2, "little")
    if png:  # FLIR stores the samples byte-swapped inside the PNG
        ok, buf = cv2.imencode(".png", counts.astype(np.uint16).byteswap())
        assert ok
        body = buf.tobytes()
    else:
        body = counts.astype("<u2").tobytes()
    return bytes(head) + body


def _fff(records: list[tuple[int, bytes]]) -> bytes:
    """FFF container: a 64-byte header, the record directory at 0x40, then the records."""
    n = len(records)
    count = n + 2  # the directory is read from 32 * index, so its first two slots fall in the header
    data_at = 64 + 32 * n
    head = bytearray(64)
    head[0:4] = b"FFF\x00"
    head[0x14:0x18] = (100).to_bytes(4, "big")
    head[0x18:0x1C] = (64).to_bytes(4, "big")
    head[0x1C:0x20] = count.to_bytes(4, "big")
    directory, body = bytearray(), bytearray()
    for rtype, payload in records:
        entry = bytearray(32)
        entry[0:2] = rtype.to_bytes(2, "big")
        entry[2:4] = (3 if rtype == RAW else 1).to_bytes(2, "big")
        entry[12:16] = (data_at + len(body)).to_bytes(4, "big")
        entry[16:20] = len(payload).to_bytes(4, "big")
        directory += entry
        body += payload
    return bytes(head + directory + body)


def _app1_segments(container: bytes, chunk: int = 60000) -> bytes:
    parts = [container[i:i + chunk] for i in range(0, len(container), chunk)]
    out = bytearray()
    for k, part in enumerate(parts):
        out += b"\xff\xe1" + (2 + 8 + len(part)).to_bytes(2, "big") + b"FLIR\x00\x01"
        out += bytes([k, len(parts) - 1]) + part
    return bytes(out)


def _write_rjpeg(path: Path, counts: np.ndarray, constants: dict | None = None, png: bool = True) -> Path:
    """An R-JPEG at `path`: the visible JPEG is a grey rendering, the thermal data `counts`."""
    c = {**CONSTANTS, **(constants or {})}
    lo, hi = float(counts.min()), float(counts.max())
    preview = ((counts - lo) * (255.0 / max(hi - lo, 1.0))).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", preview)
    assert ok
    jpg = jpg.tobytes()
    container = _fff([(RAW, _raw_record(counts, png)), (CAMERA_INFO, _camera_info(c))])
    Path(path).write_bytes(jpg[:2] + _app1_segments(container) + jpg[2:])
    return Path(path)


def _folder_sequence(make_sequence: Callable[..., ArraySequence], root: Path, n: int = 4) -> Path:
    seq = make_sequence(None, n=n)
    for sub in ("eo", "ir"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        fp = seq[i]
        cv2.imwrite(str(root / "eo" / f"{fp.name}.png"), fp.eo[..., ::-1])
        cv2.imwrite(str(root / "ir" / f"{fp.name}.png"), fp.ir)
    return root


@pytest.fixture(scope="session")
def flir_constants() -> dict:
    """A FLIR camera's calibration and a scene's object parameters (temperatures in kelvin)."""
    return dict(CONSTANTS)


@pytest.fixture(scope="session")
def write_rjpeg() -> Callable[..., Path]:
    """`write_rjpeg(path, counts, constants=None, png=True)`: an R-JPEG whose thermal data is `counts`."""
    return _write_rjpeg


@pytest.fixture(scope="session")
def folder_sequence(make_sequence: Callable[..., ArraySequence]) -> Callable[..., Path]:
    """`folder_sequence(root, n=4)`: `make_sequence`'s frames as eo/ and ir/ PNG folders under root."""
    return partial(_folder_sequence, make_sequence)
