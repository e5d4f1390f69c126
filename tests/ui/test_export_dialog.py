from __future__ import annotations

import numpy as np
import pytest
import torch

from csknet_studio.core.classes import PST900
from csknet_studio.core.data import ArraySequence
from csknet_studio.core.export_read import read_labels_hdf5
from csknet_studio.core.model import create_model
from csknet_studio.core.modes import Mode
from csknet_studio.core.palette_png import decode_png_indices
from csknet_studio.core.session import AnnotationSession
from csknet_studio.ui.export_dialog import ExportDialog, default_export_path
from csknet_studio.ui.inference_worker import InferenceWorker

T, H, W = 4, 24, 32


@pytest.fixture
def session(tmp_path):
    rng = np.random.default_rng(0)
    seq = ArraySequence(rng.integers(0, 255, (T, H, W, 3), dtype=np.uint8),
                        rng.integers(0, 255, (T, H, W), dtype=np.uint8), scheme=PST900, source=tmp_path / "seq")
    s = AnnotationSession(seq, tmp_path / "seq.csknet", autosave=False)
    for i in range(3):
        s.set_prediction(i, rng.integers(0, PST900.num_classes, (H, W)).astype(np.uint8))
    s.fill_polygon(1, [(0, 0), (20, 0), (20, 10), (0, 10)], 4)
    return s


def _dialog(qtbot, session, path, **kw) -> ExportDialog:
    dlg = ExportDialog(session, **kw)
    qtbot.addWidget(dlg)
    dlg.path_edit.setText(str(path))
    return dlg


def test_export_hdf5_and_read_it_back(qtbot, session, tmp_path):
    assert default_export_path(session, "hdf5") == tmp_path / "seq_labels.h5"
    out = tmp_path / "out.h5"
    dlg = _dialog(qtbot, session, out)
    dlg.compression_combo.setCurrentText("lzf")
    with qtbot.waitSignal(dlg.exported, timeout=30000) as sig:
        assert dlg.start()
    assert sig.args == [str(out)]
    back = read_labels_hdf5(out)
    for i in range(T):
        np.testing.assert_array_equal(back.labels[i], session.labels(i))
    assert (back.labels[3] == 255).all()  # never predicted nor corrected
    assert back.corrected.tolist() == [False, True, False, False]
    assert back.frame_names == session.names and back.class_names == PST900.class_names
    assert str(out) in dlg.message_box.text()
    assert dlg.progress_dialog is None and dlg.result() == dlg.DialogCode.Accepted.value


def test_cancel_leaves_the_earlier_file_intact(qtbot, session, tmp_path):
    out = tmp_path / "out.h5"
    dlg = _dialog(qtbot, session, out)
    with qtbot.waitSignal(dlg.exported, timeout=30000):
        dlg.start()
    earlier = out.read_bytes()
    session.fill_polygon(0, [(0, 0), (31, 0), (31, 23), (0, 23)], 2)  # would change the file
    dlg2 = _dialog(qtbot, session, out)
    with qtbot.waitSignal(dlg2.cancelled, timeout=30000):
        dlg2.start()
        dlg2.progress_dialog.canceled.emit()  # the progress dialog's Cancel button
    assert out.read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out.h5")) == []  # no temp left
    assert "unchanged" in dlg2.message_box.text()
    assert dlg2.export_button.isEnabled() and not dlg2.worker.running


def test_write_error_is_reported_and_dialog_stays_usable(qtbot, session, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    dlg = _dialog(qtbot, session, blocker / "out.h5")
    with qtbot.waitSignal(dlg.failed, timeout=30000) as sig:
        dlg.start()
    assert "out.h5" in sig.args[0]
    assert "Export failed" in dlg.message_box.text()
    assert dlg.export_button.isEnabled()


def test_png_masks_hold_class_ids(qtbot, session, tmp_path):
    out = tmp_path / "masks"
    dlg = _dialog(qtbot, session, out)
    dlg.png_radio.setChecked(True)
    dlg.corrected_check.setChecked(True)
    with qtbot.waitSignal(dlg.exported, timeout=30000):
        dlg.start()
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"{session.names[1]}.png"]
    ids, palette = decode_png_indices((out / files[0]).read_bytes())
    np.testing.assert_array_equal(ids, session.labels(1))  # pixel values are class ids
    np.testing.assert_array_equal(palette[: PST900.num_classes], PST900.palette_array())


def test_probabilities_come_from_the_model(qtbot, session, tmp_path):
    worker = InferenceWorker(num_threads=1)
    with qtbot.waitSignal(worker.weights_changed):
        worker.set_model(create_model("csknet-tiny", num_classes=PST900.num_classes), PST900, torch.device("cpu"))
    with qtbot.waitSignal(worker.result_ready, timeout=30000):
        worker.request(2, session.sequence[2], Mode.BOTH)
    out = tmp_path / "p.h5"
    dlg = _dialog(qtbot, session, out, inference_worker=worker)
    assert dlg.probs_check.isEnabled()
    dlg.probs_check.setChecked(True)
    with qtbot.waitSignal(dlg.exported, timeout=60000):
        dlg.start()
    back = read_labels_hdf5(out)
    assert back.probabilities.shape == (T, PST900.num_classes, H, W)
    np.testing.assert_array_equal(back.probabilities[2], worker.cached(2, Mode.BOTH).probs)
    np.testing.assert_allclose(back.probabilities.astype(np.float32).sum(1), 1.0, atol=1e-2)
    worker.shutdown()


def test_predictions_fill_the_uncorrected_frames_and_the_message_counts_each_kind(qtbot, session, tmp_path):
    import h5py

    from csknet_studio.core.predictor import Predictor

    model = create_model("csknet-tiny", num_classes=PST900.num_classes)
    worker = InferenceWorker(num_threads=1)
    with qtbot.waitSignal(worker.weights_changed):
        worker.set_model(model, PST900, torch.device("cpu"))
    session.apply_propagation({2: np.full((H, W), 3, np.uint8)})
    out = tmp_path / "pred.h5"
    dlg = _dialog(qtbot, session, out, inference_worker=worker)
    assert dlg.predictions_check.isChecked() and dlg.propagated_check.isChecked()
    with qtbot.waitSignal(dlg.exported, timeout=60000):
        dlg.start()
    with h5py.File(out, "r") as f:  # what any HDF5 reader sees
        labels = f["labels"][()]
        origin = [v.decode() for v in f["frame_origin"][()]]
    assert origin == ["predicted", "corrected", "propagated", "predicted"]
    np.testing.assert_array_equal(labels[0], session.prediction(0))  # the session's own prediction
    fp = session.sequence[3]  # never predicted before: one forward pass in the export thread
    want = Predictor(model, "cpu", PST900, amp=False).predict(fp.eo, fp.ir, Mode.BOTH).labels
    np.testing.assert_array_equal(labels[3], want)
    assert (labels[2] == 3).all() and np.array_equal(labels[1], session.labels(1))
    assert "4 frames: 1 corrected, 1 propagated, 2 predicted, 0 unlabelled" in dlg.message_box.text()
    assert dlg.counts == {"corrected": 1, "propagated": 1, "predicted": 2, "unlabelled": 0}

    dlg2 = _dialog(qtbot, session, tmp_path / "bare.h5", inference_worker=worker)
    dlg2.predictions_check.setChecked(False)
    dlg2.propagated_check.setChecked(False)
    with qtbot.waitSignal(dlg2.exported, timeout=60000):
        dlg2.start()
    back = read_labels_hdf5(tmp_path / "bare.h5")
    assert back.frame_origin == ["unlabelled", "corrected", "unlabelled", "unlabelled"]
    assert (back.labels[[0, 2, 3]] == 255).all()
    assert "1 corrected, 0 propagated, 0 predicted, 3 unlabelled" in dlg2.message_box.text()
    worker.shutdown()


def test_a_crashing_writer_is_reported_after_the_corrections_were_saved(qtbot, session, tmp_path, monkeypatch):
    """The HDF5 library crashing (here: the writer process segfaults) costs the export only: the
    corrections were flushed to the project first, the dialog names the signal, and the next
    export works."""
    import sys
    import textwrap

    from csknet_studio.core import export_process

    assert session.dirty
    crash = textwrap.dedent("""
        import os, resource, signal
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), signal.SIGSEGV)
    """)
    monkeypatch.setattr(export_process, "writer_command", lambda: [sys.executable, "-c", crash])
    out = tmp_path / "out.h5"
    dlg = _dialog(qtbot, session, out)
    with qtbot.waitSignal(dlg.failed, timeout=30000) as sig:
        dlg.start()
    assert "the export process crashed (signal 11: Segmentation fault)" in sig.args[0]
    assert "Export failed" in dlg.message_box.text() and "signal 11" in dlg.message_box.text()
    assert not session.dirty and any((tmp_path / "seq.csknet").iterdir())  # saved before the export
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    with qtbot.waitSignal(dlg.exported, timeout=30000):
        assert dlg.start()
    assert np.array_equal(read_labels_hdf5(out).labels[1], session.labels(1))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' decode
def test_coco_and_cvat_formats_from_the_dialog(qtbot, session, tmp_path):
    """Each format choice shows its own options, moves a default path to its own default, and writes
    what the other tool reads: pycocotools decodes the corrected frame's masks, labelmap.txt and the
    colour PNG give back its class ids."""
    import cv2
    from pycocotools.coco import COCO

    dlg = ExportDialog(session)
    qtbot.addWidget(dlg)
    dlg.coco_radio.setChecked(True)
    assert dlg.fmt == "coco" and dlg.path_edit.text() == str(tmp_path / "seq_coco.json")
    assert not dlg.coco_box.isHidden() and dlg.hdf5_box.isHidden() and dlg.cvat_box.isHidden()
    dlg.predictions_check.setChecked(False)  # the corrected frame only
    with qtbot.waitSignal(dlg.exported, timeout=30000):
        assert dlg.start()
    coco = COCO(str(tmp_path / "seq_coco.json"))
    assert [img["frame_name"] for img in coco.imgs.values()] == [session.names[1]]
    anns = coco.loadAnns(coco.getAnnIds())
    for c in range(1, PST900.num_classes):
        got = np.zeros((H, W), bool)
        for a in anns:
            if a["category_id"] == c:
                got |= coco.annToMask(a).astype(bool)
        np.testing.assert_array_equal(got, session.labels(1) == c)
    assert "COCO labels written to" in dlg.message_box.text() and "1 corrected" in dlg.message_box.text()

    dlg = ExportDialog(session)
    qtbot.addWidget(dlg)
    dlg.cvat_radio.setChecked(True)
    assert dlg.path_edit.text() == str(tmp_path / "seq_cvat") and not dlg.cvat_box.isHidden()
    dlg.path_edit.setText(str(tmp_path / "mine"))
    dlg.png_radio.setChecked(True)
    assert dlg.path_edit.text() == str(tmp_path / "mine")  # a path the user typed stays
    dlg.cvat_radio.setChecked(True)
    dlg.cvat_objects_check.setChecked(False)
    with qtbot.waitSignal(dlg.exported, timeout=30000):
        assert dlg.start()
    out = tmp_path / "mine"
    colours = {}
    for line in (out / "labelmap.txt").read_text().splitlines()[1:]:
        name, rgb, _parts, _actions = line.split(":")
        colours[name] = tuple(int(v) for v in rgb.split(","))
    assert list(colours)[: PST900.num_classes] == list(PST900.class_names)
    rgb = cv2.imread(str(out / "SegmentationClass" / f"{session.names[1]}.png"))[..., ::-1]
    ids = np.full((H, W), 255, np.uint8)
    for c, name in enumerate(PST900.class_names):
        ids[(rgb == colours[name]).all(-1)] = c
    np.testing.assert_array_equal(ids, session.labels(1))
    assert not (out / "SegmentationObject").exists()
    assert "CVAT segmentation masks" in dlg.message_box.text()
