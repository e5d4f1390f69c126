"""Sensor recordings: ROS 1 bags, ROS 2 bags (sqlite3 or MCAP storage) and plain ROS 2 MCAP files.

Read with the pure-Python `rosbags` library, so no ROS installation is needed. A recording holds
many topics; the user picks one EO and one IR image topic (`sensor_msgs/msg/Image` or
`sensor_msgs/msg/CompressedImage`). The two cameras run at their own rates on their own clocks, so
frames are paired by nearest timestamp (`pair_timestamps`) and the sequence is the list of pairs.

Opening reads every message of the two topics once, keeping only its log time and header stamp
(a few bytes each): the index. A frame is decoded when asked for, by seeking to its log time; the
base class's LRU bounds what stays in memory, as for the other readers.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csknet_studio.core.errors import CorruptImageError, UnknownLayoutError

from .alignment import Alignment
from .base import BaseSequence, RawFrame
from .imaging import to_grey, to_rgb

RECORDING_EXTS = (".bag", ".mcap", ".db3")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
# Raw encodings read as is: numpy dtype, channels, and whether the channels are BGR.
ENCODINGS: dict[str, tuple[type, int, bool]] = {
    "rgb8": (np.uint8, 3, False), "bgr8": (np.uint8, 3, True),
    "rgba8": (np.uint8, 4, False), "bgra8": (np.uint8, 4, True),
    "mono8": (np.uint8, 1, False), "8uc1": (np.uint8, 1, False), "8uc3": (np.uint8, 3, True),
    "mono16": (np.uint16, 1, False), "16uc1": (np.uint16, 1, False),
    "rgb16": (np.uint16, 3, False), "bgr16": (np.uint16, 3, True),
    "32fc1": (np.float32, 1, False),
}
THERMAL_ENCODINGS = ("mono16", "16uc1", "mono8", "8uc1", "32fc1")
# Frames of one camera further apart than this many periods count the missing ones as dropped.
GAP_PERIODS = 1.5
# A frame read also reads this many following messages of the camera (at most this many bytes) and
# keeps their raw bytes, so scrubbing forward reads each chunk of the file once.
WINDOW_MESSAGES = 8
WINDOW_BYTES = 4 * 1024 * 1024


class TopicError(UnknownLayoutError):
    """The recording's image topics do not say which is EO and which is IR; `.topics` lists them."""

    def __init__(self, message: str, topics: Sequence[ImageTopic] = ()):
        super().__init__(message)
        self.topics = list(topics)


@dataclass(frozen=True)
class ImageTopic:
    """An image topic of a recording, as the topic picker and `info` show it."""

    name: str
    msgtype: str
    count: int
    encoding: str = ""  # raw encoding, or the compressed format ("jpeg", "png", "mono16; png ...")
    shape: tuple[int, int] | None = None  # (H, W) of the first message, when it decodes

    @property
    def kind(self) -> str:
        return self.msgtype.rsplit("/", 1)[-1]

    @property
    def thermal_like(self) -> bool:
        """Single-channel (mono8 / mono16 / 16UC1) topics are the likely IR camera."""
        enc = self.encoding.lower()
        return any(enc.startswith(e) for e in THERMAL_ENCODINGS)

    def describe(self) -> str:
        size = f" {self.shape[1]}x{self.shape[0]}" if self.shape else ""
        enc = f" {self.encoding}" if self.encoding else ""
        return f"{self.name} ({self.kind}{enc}{size}, {self.count} messages)"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.msgtype, "count": self.count, "encoding": self.encoding,
                "shape": list(self.shape) if self.shape else None}


# ------------------------------------------------------------------------------------- pairing
@dataclass(frozen=True)
class Pairing:
    """How two cameras' frames pair up. eo/ir: indices into each camera's time-sorted frames."""

    eo: np.ndarray
    ir: np.ndarray
    tolerance_ns: int
    clock_offset_ns: int | None  # median of EO - IR stamp over the pairs
    unpaired_eo: int
    unpaired_ir: int
    dropped_eo: int
    dropped_ir: int
    period_eo_ns: int | None
    period_ir_ns: int | None

    def __len__(self) -> int:
        return len(self.eo)


def median_period(t: np.ndarray) -> int | None:
    d = np.diff(np.asarray(t, dtype=np.int64))
    d = d[d > 0]
    return int(np.median(d)) if d.size else None


def count_dropped(t: np.ndarray, period: int | None) -> int:
    """Frames missing from a camera's stream: each gap longer than 1.5 periods, in periods, less one."""
    if period is None or period <= 0 or len(t) < 2:
        return 0
    d = np.diff(np.asarray(t, dtype=np.int64))
    gaps = d[d > GAP_PERIODS * period]
    return int(np.sum(np.rint(gaps / period).astype(np.int64) - 1))


def pair_timestamps(eo_ns: np.ndarray, ir_ns: np.ndarray, tolerance_ns: int | None = None) -> Pairing:
    """Pair each frame of the slower camera with the nearest frame of the faster one, one to one.

    Both inputs sorted ascending. A pair is kept when its stamps lie within `tolerance_ns` (default
    half the slower camera's period, so one faster frame is never the nearest of two slower ones);
    ties go to the closest pair first. The result is in time order.
    """
    eo_ns = np.asarray(eo_ns, dtype=np.int64)
    ir_ns = np.asarray(ir_ns, dtype=np.int64)
    p_eo, p_ir = median_period(eo_ns), median_period(ir_ns)
    if tolerance_ns is None:
        slow = max((p for p in (p_eo, p_ir) if p), default=None)
        tolerance_ns = slow // 2 if slow else 50_000_000
    tolerance_ns = int(tolerance_ns)
    # The camera with fewer frames picks; the other is searched.
    swap = len(ir_ns) > len(eo_ns)
    slow_t, fast_t = (eo_ns, ir_ns) if swap else (ir_ns, eo_ns)
    cand_slow: list[int] = []
    cand_fast: list[int] = []
    cand_d: list[int] = []
    if len(fast_t) and len(slow_t):
        pos = np.searchsorted(fast_t, slow_t)
        for j, (t, k) in enumerate(zip(slow_t.tolist(), pos.tolist(), strict=True)):
            for kk in (k - 1, k):
                if 0 <= kk < len(fast_t):
                    d = abs(int(fast_t[kk]) - t)
                    if d <= tolerance_ns:
                        cand_slow.append(j)
                        cand_fast.append(kk)
                        cand_d.append(d)
    order = np.argsort(np.asarray(cand_d, dtype=np.int64), kind="stable")
    used_slow: set[int] = set()
    used_fast: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for o in order.tolist():
        j, k = cand_slow[o], cand_fast[o]
        if j in used_slow or k in used_fast:
            continue
        used_slow.add(j)
        used_fast.add(k)
        pairs.append((j, k))
    pairs.sort()
    js = np.array([p[0] for p in pairs], dtype=np.int64)
    ks = np.array([p[1] for p in pairs], dtype=np.int64)
    eo_idx, ir_idx = (js, ks) if swap else (ks, js)
    offset = int(np.median(eo_ns[eo_idx] - ir_ns[ir_idx])) if len(pairs) else None
    return Pairing(eo=eo_idx, ir=ir_idx, tolerance_ns=tolerance_ns, clock_offset_ns=offset,
                   unpaired_eo=len(eo_ns) - len(pairs), unpaired_ir=len(ir_ns) - len(pairs),
                   dropped_eo=count_dropped(eo_ns, p_eo), dropped_ir=count_dropped(ir_ns, p_ir),
                   period_eo_ns=p_eo, period_ir_ns=p_ir)


# ------------------------------------------------------------------------------------- decoding
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


# ------------------------------------------------------------------------------------- recording
def is_recording(path: str | Path) -> bool:
    """A .bag / .mcap / .db3 file, or a ROS 2 bag folder (one with metadata.yaml)."""
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() in RECORDING_EXTS
    return p.is_dir() and (p / "metadata.yaml").is_file()


# For bags that carry no message definitions (older ROS 2 sqlite3 bags): just the image types, as a
# full ROS 2 type store costs most of a second to import.
IMAGE_MSGDEFS = {
    "builtin_interfaces/msg/Time": "int32 sec\nuint32 nanosec\n",
    "std_msgs/msg/Header": "builtin_interfaces/Time stamp\nstring frame_id\n",
    "sensor_msgs/msg/Image": "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n"
                             "uint8 is_bigendian\nuint32 step\nuint8[] data\n",
    "sensor_msgs/msg/CompressedImage": "std_msgs/Header header\nstring format\nuint8[] data\n",
}


def _image_typestore() -> Any:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    types: dict[str, Any] = {}
    for name, text in IMAGE_MSGDEFS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def _open_reader(path: Path) -> Any:
    from rosbags.highlevel import AnyReader

    try:
        reader = AnyReader([path], default_typestore=_image_typestore())
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds for a damaged file
        raise CorruptImageError(f"{path}: cannot open the recording: {type(exc).__name__}: {exc}",
                                str(path)) from None
    return reader


def _kind(path: Path, reader: Any) -> str:
    if not reader.is2:
        return "rosbag1"
    return "mcap" if path.is_file() and path.suffix.lower() == ".mcap" else "rosbag2"


def _topic_conns(reader: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for c in reader.connections:
        if c.msgtype in IMAGE_TYPES:
            out.setdefault(c.topic, []).append(c)
    return out


def _first_message(reader: Any, conns: list[Any]) -> tuple[str, tuple[int, int] | None]:
    """Encoding and (H, W) of a topic's first message that decodes (the picker shows them)."""
    gen = reader.messages(connections=conns)
    try:
        for n, (conn, _t, raw) in enumerate(gen):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.msgtype.endswith("CompressedImage"):
                    img, _ = image_from_message(msg, conn.msgtype)
                    return str(msg.format), (int(img.shape[0]), int(img.shape[1]))
                return str(msg.encoding), (int(msg.height), int(msg.width))
            except Exception:  # noqa: BLE001 - a corrupt first message: look at the next one
                if n >= 8:
                    break
    finally:
        gen.close()
    return "", None


def _image_topics(reader: Any) -> list[ImageTopic]:
    topics = []
    for name, conns in sorted(_topic_conns(reader).items()):
        count = sum(int(c.msgcount) for c in conns)
        enc, shape = _first_message(reader, conns) if count else ("", None)
        topics.append(ImageTopic(name, conns[0].msgtype, count, enc, shape))
    return topics


def list_image_topics(path: str | Path) -> list[ImageTopic]:
    """The image topics of a recording (what the topic picker offers)."""
    p = Path(path)
    reader = _open_reader(p)
    try:
        return _image_topics(reader)
    finally:
        reader.close()


def _listing(topics: Sequence[ImageTopic]) -> str:
    return "; ".join(t.describe() for t in topics) or "none"


def pick_topics(topics: Sequence[ImageTopic], eo_topic: str | None = None, ir_topic: str | None = None,
                where: str = "recording") -> tuple[str, str]:
    """(EO topic, IR topic): the ones asked for, or a default when there are exactly two image topics
    and one of them is single-channel (it is IR) or their names say which is which."""
    names = [t.name for t in topics]
    for asked, what in ((eo_topic, "EO"), (ir_topic, "IR")):
        if asked is not None and asked not in names:
            raise TopicError(f"{where}: no image topic {asked!r} for {what}; image topics: {_listing(topics)}",
                             topics)
    if eo_topic is not None and ir_topic is not None:
        if eo_topic == ir_topic:
            raise TopicError(f"{where}: EO and IR are both {eo_topic}; pick two different topics", topics)
        return eo_topic, ir_topic
    if len(topics) < 2:
        raise TopicError(f"{where}: needs two image topics (EO and IR), found {_listing(topics)}", topics)
    if len(topics) == 2:
        a, b = topics
        if eo_topic is not None or ir_topic is not None:
            given = eo_topic or ir_topic
            other = b.name if a.name == given else a.name
            return (given, other) if eo_topic is not None else (other, given)  # type: ignore[return-value]
        if a.thermal_like != b.thermal_like:
            ir = a if a.thermal_like else b
            return (b.name if ir is a else a.name), ir.name
        from .detect import modality_of  # late: detect imports this module

        mods = {t.name: modality_of(t.name.replace("/", "_")) for t in topics}
        if sorted(mods.values(), key=str) == ["eo", "ir"]:
            return next(n for n, m in mods.items() if m == "eo"), next(n for n, m in mods.items() if m == "ir")
    raise TopicError(f"{where}: pick the EO and IR topics (--eo-topic, --ir-topic); image topics: "
                     f"{_listing(topics)}", topics)


@dataclass
class _Stream:
    """One camera's index: log times (to seek), their order among equal log times, and stamps."""

    topic: str
    conns: list[Any]
    log_ns: np.ndarray
    dup: np.ndarray
    stamp_ns: np.ndarray
    size: np.ndarray  # bytes of each message, to size the read-ahead window
    stamp_source: str = "header"
    raw: OrderedDict[tuple[int, int], tuple[Any, bytes]] = field(default_factory=OrderedDict)
    last: int = -2

    def window(self, k: int) -> tuple[int, int]:
        """Log-time range [start, stop) to read for message k. Scrubbing forward (k follows the last
        one read) takes the next messages too, up to WINDOW_BYTES, so a chunk of the file is
        decompressed once rather than per frame; a jump reads message k alone."""
        n = len(self.log_ns)
        forward = 0 < k - self.last <= 2
        self.last = k
        if not forward:
            return int(self.log_ns[k]), int(self.log_ns[k]) + 1
        end = k + 1
        total = int(self.size[k])
        while end < n and end - k < WINDOW_MESSAGES and total + int(self.size[end]) <= WINDOW_BYTES:
            total += int(self.size[end])
            end += 1
        logs = self.log_ns[k:end]
        return int(logs.min()), int(logs.max()) + 1


def _index(reader: Any, eo: str, ir: str, conns: dict[str, list[Any]], ros1: bool) -> dict[str, _Stream]:
    logs: dict[str, list[int]] = {eo: [], ir: []}
    dups: dict[str, list[int]] = {eo: [], ir: []}
    stamps: dict[str, list[int]] = {eo: [], ir: []}
    sizes: dict[str, list[int]] = {eo: [], ir: []}
    topic_of = {id(c): c.topic for t in (eo, ir) for c in conns[t]}
    last: dict[str, tuple[int, int]] = {eo: (-1, 0), ir: (-1, 0)}
    for conn, t, raw in reader.messages(connections=conns[eo] + conns[ir]):
        topic = topic_of.get(id(conn), conn.topic)
        prev_t, prev_n = last[topic]
        n = prev_n + 1 if t == prev_t else 0
        last[topic] = (t, n)
        logs[topic].append(int(t))
        dups[topic].append(n)
        sizes[topic].append(len(raw))
        s = header_stamp(raw, ros1)
        stamps[topic].append(-1 if s is None else s)
    out = {}
    for topic in (eo, ir):
        log = np.asarray(logs[topic], dtype=np.int64)
        st = np.asarray(stamps[topic], dtype=np.int64)
        source = "header"
        ok = st >= 0
        if not ok.any():
            st, source = log.copy(), "log"
        elif not ok.all():  # a message whose header did not parse: its log time, shifted like the rest
            st = st.copy()
            st[~ok] = log[~ok] + int(np.median(st[ok] - log[ok]))
        order = np.argsort(st, kind="stable")
        out[topic] = _Stream(topic, conns[topic], log[order], np.asarray(dups[topic], dtype=np.int32)[order],
                             st[order], np.asarray(sizes[topic], dtype=np.int64)[order], source)
    return out


def _frame_name(i: int, t_ns: int) -> str:
    """Frame names carry the EO stamp: 000012_1700000000.033333333 (index first, so they sort)."""
    return f"{i:06d}_{t_ns // 1_000_000_000}.{t_ns % 1_000_000_000:09d}"


class RecordingSequence(BaseSequence):
    """The EO/IR pairs of two image topics of a recording, decoded on demand.

    `timestamps_ns` / `ir_timestamps_ns`: (T,) int64 stamps of each pair's EO and IR message;
    `pairing` says what was left unpaired or dropped and the clocks' offset; `topics` lists every
    image topic of the recording.
    """

    def __init__(self, path: str | Path, *, eo_topic: str | None = None, ir_topic: str | None = None,
                 tolerance_ns: int | None = None, alignment: Alignment | None = None, **cache_kw: Any):
        p = Path(path)
        self._reader = _open_reader(p)
        self._io = threading.Lock()
        try:
            self.kind = _kind(p, self._reader)
            self.topics = _image_topics(self._reader)
            self.eo_topic, self.ir_topic = pick_topics(self.topics, eo_topic, ir_topic, where=str(p))
            try:
                streams = _index(self._reader, self.eo_topic, self.ir_topic, _topic_conns(self._reader),
                                 ros1=not self._reader.is2)
            except Exception as exc:  # noqa: BLE001 - a damaged chunk or index in the file itself
                raise CorruptImageError(f"{p}: cannot index {self.eo_topic} and {self.ir_topic}: "
                                        f"{type(exc).__name__}: {exc}", str(p)) from None
            self._eo, self._ir = streams[self.eo_topic], streams[self.ir_topic]
            self.pairing = pair_timestamps(self._eo.stamp_ns, self._ir.stamp_ns, tolerance_ns)
            self.timestamps_ns = self._eo.stamp_ns[self.pairing.eo]
            self.ir_timestamps_ns = self._ir.stamp_ns[self.pairing.ir]
            if not len(self.pairing):
                raise UnknownLayoutError(
                    f"{p}: no frame of {self.eo_topic} ({len(self._eo.log_ns)} messages) lies within "
                    f"{self.pairing.tolerance_ns / 1e6:.1f} ms of one of {self.ir_topic} "
                    f"({len(self._ir.log_ns)} messages); the clocks may be offset")
            names = [_frame_name(i, int(t)) for i, t in enumerate(self.timestamps_ns.tolist())]
            cache_kw.setdefault("workers", 1)  # one reader, one file position
            super().__init__(layout=self.kind, source=p, names=names, alignment=alignment, **cache_kw)
            self._probe()
        except BaseException:
            self._reader.close()
            raise

    @property
    def stamp_source(self) -> str:
        """'header' when the pairs use the cameras' header stamps, 'log' when the recorder's times."""
        return self._eo.stamp_source if self._eo.stamp_source == self._ir.stamp_source else "mixed"

    def _message(self, s: _Stream, k: int) -> tuple[Any, bytes]:
        key = (int(s.log_ns[k]), int(s.dup[k]))
        with self._io:
            hit = s.raw.pop(key, None)
            if hit is not None:
                s.last = k
                return hit
            start, stop = s.window(k)
            gen = self._reader.messages(connections=s.conns, start=start, stop=stop)
            last = (-1, 0)
            try:
                for conn, t, raw in gen:
                    n = last[1] + 1 if t == last[0] else 0
                    last = (t, n)
                    if (t, n) == key:
                        hit = (conn, raw)
                    else:
                        s.raw[(t, n)] = (conn, raw)
                        s.raw.move_to_end((t, n))
            finally:
                gen.close()
            while len(s.raw) > 2 * WINDOW_MESSAGES:
                s.raw.popitem(last=False)
        if hit is None:
            raise CorruptImageError(f"{self.source}: message of {s.topic} at {key[0]} ns is missing",
                                    str(self.source))
        return hit

    def _decode(self, s: _Stream, k: int) -> tuple[np.ndarray, bool]:
        try:
            conn, raw = self._message(s, k)
            msg = self._reader.deserialize(raw, conn.msgtype)
            return image_from_message(msg, conn.msgtype)
        except CorruptImageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt message is a bad frame, never a crash
            raise CorruptImageError(f"{self.source}: {s.topic} message at {int(s.stamp_ns[k])} ns: "
                                    f"{type(exc).__name__}: {exc}", str(self.source)) from None

    def _read_raw(self, i: int) -> RawFrame:
        eo, eo_bgr = self._decode(self._eo, int(self.pairing.eo[i]))
        ir, ir_bgr = self._decode(self._ir, int(self.pairing.ir[i]))
        return RawFrame(to_rgb(eo, bgr=eo_bgr), to_grey(ir, bgr=ir_bgr))

    def _close(self) -> None:
        with self._io:
            self._eo.raw.clear()
            self._ir.raw.clear()
            self._reader.close()

    def summary(self) -> dict[str, Any]:
        """What `csknet-studio info` reports about the recording beyond any sequence's basics."""
        pr = self.pairing
        return {
            "recording": self.kind,
            "topics": [t.to_dict() for t in self.topics],
            "eo_topic": self.eo_topic,
            "ir_topic": self.ir_topic,
            "messages": {"eo": len(self._eo.log_ns), "ir": len(self._ir.log_ns)},
            "pairs": len(pr),
            "unpaired": {"eo": pr.unpaired_eo, "ir": pr.unpaired_ir},
            "dropped": {"eo": pr.dropped_eo, "ir": pr.dropped_ir},
            "rate_hz": {k: (None if p is None else round(1e9 / p, 3))
                        for k, p in (("eo", pr.period_eo_ns), ("ir", pr.period_ir_ns))},
            "tolerance_ns": pr.tolerance_ns,
            "clock_offset_ns": pr.clock_offset_ns,
            "stamps": self.stamp_source,
            "start_ns": int(self.timestamps_ns[0]),
            "end_ns": int(self.timestamps_ns[-1]),
        }


__all__ = ["ImageTopic", "Pairing", "RecordingSequence", "TopicError", "is_recording", "list_image_topics",
           "pair_timestamps", "pick_topics"]
