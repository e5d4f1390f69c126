"""Sensor recordings: ROS 1 bags, ROS 2 bags (sqlite3 or MCAP storage) and plain ROS 2 MCAP files.

Read with the pure-Python `rosbags` library, so no ROS installation is needed. A recording holds
many topics; the user picks one EO and one IR image topic (`sensor_msgs/msg/Image` or
`sensor_msgs/msg/CompressedImage`). The two cameras run at their own rates on their own clocks, so
frames are paired by nearest timestamp (`time_pairing.pair_timestamps`) and the sequence is the
list of pairs; `ros_messages` turns a message into an array.

Opening reads every message of the two topics once, keeping only its log time and header stamp
(a few bytes each): the index. A frame is decoded when asked for, by seeking to its log time; the
base class's LRU bounds what stays in memory, as for the other readers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csknet_studio.core.errors import CorruptImageError, UnknownLayoutError

from .alignment import Alignment
from .base import BaseSequence, RawFrame
from .imaging import to_grey, to_rgb
from .ros_messages import header_stamp, image_from_message
from .time_pairing import pair_timestamps

RECORDING_EXTS = (".bag", ".mcap", ".db3")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
THERMAL_ENCODINGS = ("mono16", "16uc1", "mono8", "8uc1", "32fc1")
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
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore  # heavy: rosbags

    store = get_typestore(Stores.EMPTY)
    types: dict[str, Any] = {}
    for name, text in IMAGE_MSGDEFS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def _open_reader(path: Path) -> Any:
    from rosbags.highlevel import AnyReader  # heavy: rosbags (0.3 s), loaded with the first recording

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
        from .detect import modality_of  # cycle: detect imports this module

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


__all__ = ["ImageTopic", "RecordingSequence", "TopicError", "is_recording", "list_image_topics", "pick_topics"]
