"""ROS image messages: the header stamp read straight from the serialised bytes, and an Image or
CompressedImage message as a numpy array."""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

# Raw encodings read as is: numpy dtype, channels, and whether the channels are BGR.
ENCODINGS: dict[str, tuple[type, int, bool]] = {
    "rgb8": (np.uint8, 3, False), "bgr8": (np.uint8, 3, True),
    "rgba8": (np.uint8, 4, False), "bgra8": (np.uint8, 4, True),
    "mono8": (np.uint8, 1, False), "8uc1": (np.uint8, 1, False), "8uc3": (np.uint8, 3, True),
    "mono16": (np.uint16, 1, False), "16uc1": (np.uint16, 1, False),
    "rgb16": (np.uint16, 3, False), "bgr16": (np.uint16, 3, True),
    "32fc1": (np.float32, 1, False),
}


def header_stamp(raw: bytes | memoryview, ros1: bool) -> int | None:
    """The std_msgs/Header stamp (ns) at the start of an Image / CompressedImage, without a full
    decode. ROS 1: seq, secs, nsecs; ROS 2 CDR: a 4-byte encapsulation header, then sec, nanosec."""
    try:
        if ros1:
            sec, nsec = struct.unpack_from("<II", raw, 4)
        else:
            endian = "<" if bytes(raw[1:2]) == b"\x01" else ">"
            sec, nsec = struct.unpack_from(endian + "iI", raw, 4)
    except struct.error:
        return None
    if nsec >= 1_000_000_000 or sec < 0 or (sec == 0 and nsec == 0):
        return None
    return int(sec) * 1_000_000_000 + int(nsec)


def image_from_message(msg: Any, msgtype: str) -> tuple[np.ndarray, bool]:
    """(array, is_bgr) of an Image / CompressedImage message; raises ValueError on what it cannot read."""
    if msgtype.endswith("CompressedImage"):
        fmt = str(msg.format).lower()
        if "compresseddepth" in fmt:
            raise ValueError(f"compressedDepth images are not supported (format {msg.format!r})")
        buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
        if img is None:
            raise ValueError(f"compressed image ({msg.format or 'no format'}) could not be decoded")
        return img, img.ndim == 3
    enc = str(msg.encoding).lower()
    if enc not in ENCODINGS:
        raise ValueError(f"image encoding {msg.encoding!r} is not supported (read: {', '.join(ENCODINGS)})")
    dtype, ch, bgr = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(dtype).itemsize
    data = np.asarray(msg.data, dtype=np.uint8)
    row = w * ch * itemsize
    if h <= 0 or w <= 0 or step < row or data.size < step * (h - 1) + row:
        raise ValueError(f"{w}x{h} {msg.encoding} image with step {step} needs {step * h} bytes, "
                         f"message holds {data.size}")
    if data.size < step * h:
        data = np.concatenate([data, np.zeros(step * h - data.size, np.uint8)])
    rows = data[: step * h].reshape(h, step)[:, :row]
    order = ">" if int(msg.is_bigendian) and itemsize > 1 else "<"
    img = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order)).reshape(h, w, ch)
    img = img.astype(dtype, copy=False)
    return (img[:, :, 0] if ch == 1 else img), bgr
