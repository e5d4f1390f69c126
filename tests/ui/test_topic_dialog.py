"""The topic picker, and opening a recording in the main window through it."""

from __future__ import annotations

from PySide6 import QtWidgets

from csknet_studio.core.data.rosbag import ImageTopic

TOPICS = [ImageTopic("/eo", "sensor_msgs/msg/Image", 30, "rgb8", (48, 64)),
          ImageTopic("/ir", "sensor_msgs/msg/Image", 9, "mono16", (24, 32)),
          ImageTopic("/ir_preview", "sensor_msgs/msg/CompressedImage", 9, "jpeg", (24, 32))]


def test_dialog_preselects_and_refuses_one_topic_twice(qtbot):
    from csknet_studio.ui.topic_dialog import TopicDialog

    dlg = TopicDialog(None, "rec.bag", TOPICS[:2])  # two topics: the mono16 one is IR
    qtbot.addWidget(dlg)
    assert dlg.choice() == ("/eo", "/ir")
    ok = dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
    dlg.ir_box.setCurrentIndex(0)
    assert not ok.isEnabled() and "different" in dlg.warning.text()
    dlg.ir_box.setCurrentIndex(1)
    assert ok.isEnabled()
    dlg3 = TopicDialog(None, "rec.bag", TOPICS, eo="/eo", ir="/ir_preview")
    qtbot.addWidget(dlg3)
    assert dlg3.choice() == ("/eo", "/ir_preview") and dlg3.eo_box.count() == 3


def test_window_opens_a_recording_with_the_picked_topics(bare_window, tmp_path, monkeypatch, bagdata):
    import csknet_studio.ui.topic_dialog as td

    cams = [bagdata.Camera("/eo", 30.0, "rgb8", (48, 64)), bagdata.Camera("/ir", 9.0, "mono16", (24, 32)),
            bagdata.Camera("/ir_preview", 9.0, "mono8", (24, 32))]
    bag = bagdata.write_recording(tmp_path / "rec", cams, 1.0, "mcap")
    asked = []

    def pick(parent, source, topics, eo=None, ir=None):
        asked.append((len(topics), eo, ir))
        return None if len(asked) == 1 else ("/eo", "/ir_preview")

    monkeypatch.setattr(td, "choose_topics", pick)
    assert bare_window.open_sequence(bag) is False  # cancelled: nothing opened, no error
    assert bare_window.open_sequence(bag) is True
    seq = bare_window.sequence
    assert (seq.eo_topic, seq.ir_topic) == ("/eo", "/ir_preview") and len(seq) == 9
    assert bare_window.open_sequence(bag) is True
    assert asked[-1] == (3, "/eo", "/ir_preview")  # the last choice comes preselected
    assert bare_window.open_sequence(bag, {"eo_topic": "/eo", "ir_topic": "/ir"}) is True  # no picker
    assert len(asked) == 3 and bare_window.sequence.ir_topic == "/ir"
