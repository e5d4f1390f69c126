"""Small sensor recordings written with `rosbags` itself: ROS 1, ROS 2 (sqlite3 / MCAP) and plain MCAP.

An EO camera (rgb8) and an IR camera (mono16, or another encoding), each at its own rate with its
own clock offset; optional gaps (dropped frames) and corrupt messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

T0_NS = 1_700_000_000_000_000_000


@dataclass
class Camera:
    topic: str
    rate_hz: float
    encoding: str = "rgb8"  # rgb8 / bgr8 / mono8 / mono16 / 16UC1, or "jpeg" / "png" (CompressedImage)
    size: tuple[int, int] = (48, 64)
    offset_ns: int = 0  # this camera's clock offset (header stamp = true time + offset)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # [start, stop) frame indices not recorded
    corrupt: list[int] = field(default_factory=list)  # frame indices written as a truncated message

    def times(self, seconds: float) -> tuple[list[int], list[int]]:
        """(frame indices, true capture times in ns) of the frames recorded."""
        n = int(round(seconds * self.rate_hz))
        keep = [k for k in range(n) if not any(a <= k < b for a, b in self.gaps)]
        return keep, [T0_NS + k * 10**12 // round(self.rate_hz * 1000) for k in keep]


def frame_value(k: int) -> int:
    """The value a camera's frame k is filled with (so a test can tell frames apart)."""
    return (k * 7) % 200 + 10


def image_array(cam: Camera, k: int) -> np.ndarray:
    h, w = cam.size
    v = frame_value(k)
    yy, xx = np.mgrid[0:h, 0:w]
    if cam.encoding in ("mono16", "16UC1"):
        return (20000 + 100 * v + xx + yy).astype(np.uint16)
    if cam.encoding in ("mono8", "png"):
        return np.full((h, w), v, np.uint8)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = v  # R
    img[:, :, 1] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
    img[:, :, 2] = 255 - v  # B
    return img


def _message(ts, cam: Camera, k: int, stamp_ns: int, ros1: bool):
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    hdr_kw = {"seq": k} if ros1 else {}
    header = Header(**hdr_kw, stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=cam.topic)
    img = image_array(cam, k)
    if cam.encoding in ("jpeg", "png"):
        import cv2

        ok, buf = cv2.imencode("." + ("jpg" if cam.encoding == "jpeg" else "png"),
                               img[:, :, ::-1] if img.ndim == 3 else img)
        assert ok
        return ts.types["sensor_msgs/msg/CompressedImage"](header=header, format=cam.encoding,
                                                            data=np.frombuffer(buf.tobytes(), np.uint8))
    data = img
    if cam.encoding == "bgr8":
        data = img[:, :, ::-1]
    data = np.ascontiguousarray(data)
    h, w = cam.size
    return ts.types["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=cam.encoding,
                                              is_bigendian=0, step=data.nbytes // h,
                                              data=np.frombuffer(data.tobytes(), np.uint8))


def _msgtype(cam: Camera) -> str:
    return "sensor_msgs/msg/CompressedImage" if cam.encoding in ("jpeg", "png") else "sensor_msgs/msg/Image"


def write_recording(path: Path, cams: list[Camera], seconds: float = 2.0, storage: str = "sqlite3",
                    extra: Callable | None = None) -> Path:
    """Write `cams` for `seconds` to `path`: storage "ros1" (a .bag), "sqlite3" or "mcap" (ROS 2 bag
    folders). Log times are the true times plus 1 ms; header stamps carry each camera's offset."""
    from rosbags.typesys import Stores, get_typestore

    ros1 = storage == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    if ros1:
        from rosbags.rosbag1 import Writer as Writer1

        writer = Writer1(path)
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        writer = Writer(path, version=9, storage_plugin=plugin)
    serialize = ts.serialize_ros1 if ros1 else ts.serialize_cdr
    events: list[tuple[int, int, int, Camera]] = []
    with writer:
        conns = {}
        for ci, cam in enumerate(cams):
            conns[cam.topic] = writer.add_connection(cam.topic, _msgtype(cam), typestore=ts)
            ks, times = cam.times(seconds)
            events += [(t, ci, k, cam) for k, t in zip(ks, times, strict=True)]
        if extra is not None:
            extra(writer, ts)
        for t, _ci, k, cam in sorted(events, key=lambda e: (e[0], e[1])):
            msg = _message(ts, cam, k, t + cam.offset_ns, ros1)
            raw = bytes(serialize(msg, _msgtype(cam)))
            if k in cam.corrupt:
                raw = raw[: len(raw) // 2]
            writer.write(conns[cam.topic], t + 1_000_000, raw)
    return path


def mcap_file(bag_dir: Path) -> Path:
    """The .mcap storage file inside a ROS 2 MCAP bag folder (a plain MCAP recording)."""
    return next(bag_dir.glob("*.mcap"))
