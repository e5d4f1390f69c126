"""Indexed (palette) PNGs: pixel values are class ids, the colour table makes them viewable.

OpenCV cannot write palette PNGs (and expands them to BGR when reading), and we do not depend on
Pillow, so this is a small encoder/decoder on zlib: plain readers get ids, image viewers get colours
(the MFNet convention; labelme users tripped over RGB-coloured masks).
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from csknet_studio.core.atomic import atomic_write_bytes

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_palette_png(ids: np.ndarray, palette: np.ndarray, level: int = 6) -> bytes:
    """(H, W) uint8 ids + (N <= 256, 3) uint8 RGB palette -> PNG bytes (colour type 3, 8 bit).

    The table is padded to 256 entries (black) so every id, 255 included, is a valid index."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype != np.uint8 or 0 in ids.shape:
        raise ValueError(f"palette PNG needs a non-empty (H, W) uint8 array, got {ids.dtype} {ids.shape}")
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if len(pal) > 256:
        raise ValueError(f"a PNG palette holds at most 256 colours, got {len(pal)}")
    table = np.zeros((256, 3), np.uint8)
    table[: len(pal)] = pal
    h, w = ids.shape
    raw = np.zeros((h, w + 1), np.uint8)  # filter byte 0 (None) before each row
    raw[:, 1:] = ids
    return b"".join((
        _SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)),
        _chunk(b"PLTE", table.tobytes()),
        _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
        _chunk(b"IEND", b""),
    ))


def write_palette_png(path: str | os.PathLike, ids: np.ndarray, palette: np.ndarray) -> None:
    atomic_write_bytes(path, encode_palette_png(ids, palette))


def decode_png_indices(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw 8-bit sample values of a palette or greyscale PNG (no colour expansion) and its palette.

    Handles all five PNG row filters; rejects interlaced, 16-bit and multi-channel PNGs."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    pos, idat, palette, header = len(_SIGNATURE), [], None, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3).copy()
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    w, h, depth, ctype, _, _, interlace = header
    if depth != 8 or ctype not in (0, 3) or interlace:
        raise ValueError(f"only 8-bit non-interlaced palette/greyscale PNGs are supported (depth {depth}, type {ctype})")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, w + 1)
    out = np.zeros((h, w), np.uint8)
    prev = np.zeros(w, np.int32)
    for y in range(h):
        ftype, row = raw[y, 0], raw[y, 1:].astype(np.int32)
        if ftype == 1:
            row = np.cumsum(row) % 256
        elif ftype == 2:
            row = (row + prev) % 256
        elif ftype in (3, 4):
            cur = np.zeros(w, np.int32)
            for x in range(w):
                a = cur[x - 1] if x else 0
                b, c = prev[x], (prev[x - 1] if x else 0)
                if ftype == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (row[x] + pred) % 256
            row = cur
        elif ftype != 0:
            raise ValueError(f"bad PNG filter type {ftype} in row {y}")
        out[y] = row
        prev = row
    return out, palette
