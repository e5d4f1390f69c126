"""Recordings: ROS 1 bags, ROS 2 bags (sqlite3, MCAP) and plain MCAP, written here with rosbags."""

from __future__ import annotations

import numpy as np
import pytest

from csknet_studio.core.data import open_sequence
from csknet_studio.core.data.rosbag import (
    ImageTopic,
    RecordingSequence,
    TopicError,
    is_recording,
    list_image_topics,
    pick_topics,
)
from csknet_studio.core.data.time_pairing import pair_timestamps
from csknet_studio.core.errors import CorruptImageError, SequenceError

IR_OFFSET_NS = 3_000_000  # the IR camera's clock runs 3 ms ahead


def _cams(bagdata, **ir_kw) -> list:
    ir = {"encoding": "mono16", "size": (24, 32), "offset_ns": IR_OFFSET_NS, "gaps": [(5, 8)], "corrupt": [2]}
    ir.update(ir_kw)
    return [bagdata.Camera("/cam/eo/image_raw", 30.0, "rgb8", (48, 64)),
            bagdata.Camera("/cam/ir/image_raw", 9.0, **ir)]


def _path(bagdata, tmp_path, storage):
    if storage == "ros1":
        return bagdata.write_recording(tmp_path / "rec.bag", _cams(bagdata), 2.0, "ros1")
    bag = bagdata.write_recording(tmp_path / "rec", _cams(bagdata), 2.0,
                                  "mcap" if storage.startswith("mcap") else "sqlite3")
    return bagdata.mcap_file(bag) if storage == "mcap-file" else bag


# ------------------------------------------------------------------------------------ pairing
def test_pairing_30_and_9_hz_with_gap_and_offset(bagdata):
    eo = bagdata.T0_NS + np.arange(60) * 10**9 // 30
    ir_k = np.array([k for k in range(18) if not 5 <= k < 8])
    ir = bagdata.T0_NS + ir_k * 10**9 // 9 + IR_OFFSET_NS
    pr = pair_timestamps(eo, ir)
    assert len(pr) == 15  # every IR frame finds an EO frame within half the IR period
    assert pr.tolerance_ns == (10**9 // 9) // 2
    assert np.all(np.abs(eo[pr.eo] - ir[pr.ir]) <= pr.tolerance_ns)
    assert len(set(pr.eo.tolist())) == len(pr) and np.all(np.diff(pr.eo) > 0)  # one to one, in time order
    assert pr.unpaired_eo == 45 and pr.unpaired_ir == 0
    assert pr.dropped_ir == 3 and pr.dropped_eo == 0
    assert pr.clock_offset_ns is not None and abs(pr.clock_offset_ns + IR_OFFSET_NS) < 17_000_000


def test_pairing_tolerance_and_empty():
    eo = np.arange(10) * 100
    ir = np.arange(10) * 100 + 40
    assert len(pair_timestamps(eo, ir, tolerance_ns=30)) == 0
    pr = pair_timestamps(eo, ir, tolerance_ns=50)
    assert len(pr) == 10 and pr.clock_offset_ns == -40
    assert len(pair_timestamps(eo, np.array([], np.int64))) == 0


def test_pick_topics_defaults_and_errors():
    rgb = ImageTopic("/a", "sensor_msgs/msg/Image", 10, "rgb8", (4, 4))
    mono = ImageTopic("/b", "sensor_msgs/msg/Image", 10, "mono16", (4, 4))
    jpeg = ImageTopic("/front/visible", "sensor_msgs/msg/CompressedImage", 10, "jpeg", (4, 4))
    jpeg2 = ImageTopic("/front/thermal", "sensor_msgs/msg/CompressedImage", 10, "jpeg", (4, 4))
    assert pick_topics([mono, rgb]) == ("/a", "/b")  # the single-channel one is IR
    assert pick_topics([jpeg, jpeg2]) == ("/front/visible", "/front/thermal")  # names say it
    assert pick_topics([rgb, mono], ir_topic="/a") == ("/b", "/a")
    with pytest.raises(TopicError, match="/front/visible"):
        pick_topics([rgb, mono, jpeg])
    with pytest.raises(TopicError, match="no image topic '/x'"):
        pick_topics([rgb, mono], eo_topic="/x")
    with pytest.raises(TopicError, match="two image topics"):
        pick_topics([rgb])


# ------------------------------------------------------------------------------------ reading
@pytest.mark.parametrize("storage", ["ros1", "sqlite3", "mcap", "mcap-file"])
def test_recording_opens_pairs_and_marks_corrupt_frame_bad(tmp_path, storage, bagdata):
    path = _path(bagdata, tmp_path, storage)
    assert is_recording(path)
    topics = list_image_topics(path)
    assert [(t.name, t.encoding, t.count) for t in topics] == [
        ("/cam/eo/image_raw", "rgb8", 60), ("/cam/ir/image_raw", "mono16", 15)]
    with open_sequence(path, prefetch=0) as seq:
        assert isinstance(seq, RecordingSequence)
        assert seq.layout == {"ros1": "rosbag1", "sqlite3": "rosbag2", "mcap": "rosbag2",
                              "mcap-file": "mcap"}[storage]
        assert (seq.eo_topic, seq.ir_topic) == ("/cam/eo/image_raw", "/cam/ir/image_raw")
        assert len(seq) == 15
        s = seq.summary()
        assert s["unpaired"] == {"eo": 45, "ir": 0} and s["dropped"] == {"eo": 0, "ir": 3}
        assert s["stamps"] == "header"
        assert abs(s["clock_offset_ns"] + IR_OFFSET_NS) < 17_000_000
        assert seq.timestamps_ns.dtype == np.int64 and np.all(np.diff(seq.timestamps_ns) > 0)
        t = int(seq.timestamps_ns[3])
        assert seq.names[3] == f"000003_{t // 10**9}.{t % 10**9:09d}"
        ir_k = [k for k in range(18) if not 5 <= k < 8]
        for i in range(len(seq)):
            fp = seq[i]
            if ir_k[i] == 2:
                assert fp.bad and "/cam/ir/image_raw" in fp.error
                continue
            assert not fp.bad, fp.error
            assert fp.eo.shape == (48, 64, 3) and fp.eo.dtype == np.uint8
            assert fp.ir.shape == (48, 64) and fp.ir.dtype == np.uint16  # IR resampled onto the EO grid
            eo_k = int(round((int(seq.timestamps_ns[i]) - bagdata.T0_NS) * 30 / 1e9))
            assert (fp.eo[0, 0, 0] == bagdata.frame_value(eo_k)
                    and fp.eo[0, 0, 2] == 255 - bagdata.frame_value(eo_k))
            assert abs(int(fp.ir[10, 10]) - (20000 + 100 * bagdata.frame_value(ir_k[i]) + 10)) < 30
        assert seq.bad_frames == {ir_k.index(2)}


@pytest.mark.parametrize(("eo_enc", "ir_enc"), [("bgr8", "mono8"), ("rgb8", "16UC1"), ("jpeg", "png")])
def test_encodings(tmp_path, eo_enc, ir_enc, bagdata):
    cams = [bagdata.Camera("/eo", 10.0, eo_enc, (32, 40)),
            bagdata.Camera("/ir", 10.0, ir_enc, (32, 40), offset_ns=1_000_000)]
    bag = bagdata.write_recording(tmp_path / "rec", cams, 1.0, "sqlite3")
    with open_sequence(bag, eo_topic="/eo", ir_topic="/ir", prefetch=0) as seq:
        assert len(seq) == 10 and not seq.bad_frames
        fp = seq[4]
        v = bagdata.frame_value(4)
        assert fp.eo.shape == (32, 40, 3)
        assert abs(int(fp.eo[5, 5, 0]) - v) <= 3 and abs(int(fp.eo[5, 5, 2]) - (255 - v)) <= 3  # RGB order
        want_ir = v if ir_enc in ("mono8", "png") else 20000 + 100 * v + 10
        assert fp.ir.dtype == (np.uint16 if ir_enc == "16UC1" else np.uint8)
        assert abs(int(fp.ir[5, 5]) - want_ir) <= 1


def test_topic_choice(tmp_path, bagdata):
    cams = _cams(bagdata, corrupt=[]) + [bagdata.Camera("/cam/depth/image", 5.0, "mono16", (24, 32))]
    bag = bagdata.write_recording(tmp_path / "rec", cams, 1.0, "sqlite3")
    with pytest.raises(TopicError, match="/cam/depth/image") as exc:
        open_sequence(bag)
    assert len(exc.value.topics) == 3
    with open_sequence(bag, eo_topic="/cam/eo/image_raw", ir_topic="/cam/depth/image", prefetch=0) as seq:
        assert seq.ir_topic == "/cam/depth/image" and len(seq) == 5


def test_cache_stays_bounded(tmp_path, bagdata):
    bag = bagdata.write_recording(tmp_path / "rec", _cams(bagdata, corrupt=[]), 2.0, "mcap")
    with open_sequence(bag, cache_frames=3, prefetch=2) as seq:
        for i in range(len(seq)):
            seq[i]
        seq.wait_prefetch()
        assert len(seq.cache) <= 3
        back = seq[0]  # evicted, decoded again
        assert not back.bad


def test_unreadable_recordings_say_so(tmp_path, bagdata):
    junk = tmp_path / "junk.bag"
    junk.write_bytes(b"#ROSBAG V2.0\n" + b"\x00" * 64)
    with pytest.raises(CorruptImageError, match="junk.bag"):
        open_sequence(junk)
    mcap = tmp_path / "half.mcap"
    bag = bagdata.write_recording(tmp_path / "rec", _cams(bagdata, corrupt=[]), 1.0, "mcap")
    full = bagdata.mcap_file(bag).read_bytes()
    mcap.write_bytes(full[: len(full) // 2])
    with pytest.raises(SequenceError, match="half.mcap"):
        open_sequence(mcap)


def test_export_keeps_timestamps(tmp_path, bagdata):
    import h5py

    from csknet_studio.core.export import export_hdf5
    from csknet_studio.core.session import AnnotationSession

    bag = bagdata.write_recording(tmp_path / "rec", _cams(bagdata, corrupt=[]), 1.0, "sqlite3")
    with open_sequence(bag, prefetch=0) as seq:
        session = AnnotationSession(seq, tmp_path / "rec.csknet", autosave=False)
        try:
            out = export_hdf5(session, tmp_path / "labels.h5", include_predictions=False)
        finally:
            session.close()
        with h5py.File(out, "r") as f:
            assert f["timestamps_ns"].dtype == np.int64
            np.testing.assert_array_equal(f["timestamps_ns"][()], seq.timestamps_ns)
            np.testing.assert_array_equal(f["ir_timestamps_ns"][()], seq.ir_timestamps_ns)
            assert [n.decode() for n in f["frame_names"][()]] == seq.names
