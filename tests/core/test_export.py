"""HDF5 / PNG export: round trip, the file as other tools see it, cancel/failure safety, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from csknet_studio import __version__
from csknet_studio.cli import main
from csknet_studio.core import export_process, export_writer
from csknet_studio.core.classes import MFNET
from csknet_studio.core.data import open_sequence
from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import CancelledError, ExportError
from csknet_studio.core.export import export_hdf5, export_png
from csknet_studio.core.export_read import read_labels_hdf5
from csknet_studio.core.modes import Mode
from csknet_studio.core.palette_png import decode_png_indices, encode_palette_png
from csknet_studio.core.session import AnnotationSession

N = 5


@pytest.fixture
def session(tmp_path, make_sequence) -> AnnotationSession:
    seq = make_sequence(tmp_path / "data" / "seq", n=N)
    s = AnnotationSession(seq)
    for i in (1, 2, 3):
        s.set_prediction(i, seq[i].label)
    s.paint_stroke(0, [(5, 5), (40, 30)], 2, 3)
    s.accept_prediction(2)
    s.flood_fill(3, (0, 0), 6)
    s.set_checkpoint(tmp_path / "w.pt", "cafe0123")
    return s


def test_round_trip_gives_identical_arrays_and_attributes(session, tmp_path):
    probs = np.random.default_rng(0).random((N, MFNET.num_classes, 48, 64)).astype(np.float16)
    done = []
    out = export_hdf5(session, tmp_path / "out" / "labels.h5", include_probabilities=probs, copy_images=True,
                      mode=Mode.IR, progress=lambda d, t: done.append((d, t)))
    # progress as the writer confirms frames: rising, a few frames at a time, ending at N of N
    steps = [d for d, _t in done]
    assert done[-1] == (N, N) and all(t == N for _d, t in done)
    assert steps == sorted(set(steps)) and all(b - a <= export_process.REPLY_EVERY
                                               for a, b in zip([0, *steps], steps, strict=False))
    r = read_labels_hdf5(out)
    for i in range(N):
        assert np.array_equal(r.labels[i], session.labels(i))
        assert np.array_equal(r.eo[i], session.sequence[i].eo) and np.array_equal(r.ir[i], session.sequence[i].ir)
    assert (r.labels[4] == 255).all()  # no correction, no prediction
    assert r.corrected.tolist() == [True, False, True, True, False]
    assert r.frame_names == session.names and r.scheme == MFNET
    assert np.array_equal(r.probabilities, probs) and r.probabilities.dtype == np.float16
    assert (r.axes, r.mode, r.checkpoint_hash, r.app_version) == ("tyx", "ir", "cafe0123", __version__)
    assert r.source == "../data/seq" and (out.parent / r.source).resolve() == session.source.resolve()
    created = dt.datetime.fromisoformat(r.created.replace("Z", "+00:00"))
    assert created.tzinfo is not None and abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 120


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_every_frame_arrives_intact_through_the_writer_pipeline(tmp_path, make_sequence, compression):
    """Three times more frames than the writer keeps in flight: gzip chunks deflated ahead on
    threads and lzf labels through the reused shared slots each land on their own frame."""
    n = 3 * export_process.IN_FLIGHT + 1
    seq = make_sequence(tmp_path / "many", n=n, size=(24, 40))
    s = AnnotationSession(seq, autosave=False)
    rng = np.random.default_rng(5)
    masks = [rng.integers(0, 9, (24, 40), dtype=np.uint8) for _ in range(n)]
    for i, m in enumerate(masks):
        s.set_prediction(i, m)
        if i % 3 == 0:
            s.accept_prediction(i)
    out = export_hdf5(s, tmp_path / f"many-{compression}.h5", compression=compression)
    with h5py.File(out, "r") as f:
        assert f["labels"].compression == compression
        assert all(np.array_equal(f["labels"][i], masks[i]) for i in range(n))
        assert f["corrected"][()].tolist() == [i % 3 == 0 for i in range(n)]


def test_a_writer_started_ahead_is_taken_over_warm_by_the_next_export(session, tmp_path):
    """The export dialog and command start the writer early; the export then uses that process."""
    export_writer.prestart(wait=True)
    spare = export_writer._spare
    assert spare is not None and spare.ready.is_set() and spare.proc.poll() is None
    export_writer.prestart()  # a second call keeps the running spare
    assert export_writer._spare is spare
    out = export_hdf5(session, tmp_path / "warm.h5", compression="lzf")
    assert export_writer._spare is None and spare.proc.poll() == 0  # it wrote the file and exited
    with h5py.File(out, "r") as f:
        assert np.array_equal(f["labels"][1], session.labels(1))


def test_a_spare_writer_started_with_another_command_is_not_used(session, tmp_path, monkeypatch):
    export_writer.prestart(wait=True)
    spare = export_writer._spare
    marker = tmp_path / "child-ran"
    child = textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("x")
        from csknet_studio.core.export_process import main
        raise SystemExit(main())
    """)
    monkeypatch.setattr(export_process, "writer_command", lambda: [sys.executable, "-c", child])
    export_hdf5(session, tmp_path / "l.h5")
    assert marker.exists() and spare.proc.poll() is not None  # the new command wrote; the old spare stopped


def test_the_file_as_plain_h5py_sees_it(session, tmp_path):
    out = export_hdf5(session, tmp_path / "l.h5", compression="lzf")
    with h5py.File(out, "r") as f:
        lab = f["labels"]
        assert lab.shape == (N, 48, 64) and lab.dtype == np.uint8 and lab.chunks == (1, 48, 64)
        assert lab.compression == "lzf"
        assert [d.label for d in lab.dims] == ["t", "y", "x"]
        tags = json.loads(lab.attrs["axistags"])
        assert [(a["key"], a["typeFlags"]) for a in tags["axes"]] == [("t", 8), ("y", 2), ("x", 2)]
        assert f.get("exported_data", getlink=True).path == "/labels"
        assert np.array_equal(f["exported_data"][()], lab[()])
        assert f["corrected"].dtype == bool and f["corrected"].shape == (N,)
        assert f["frame_names"].asstr()[()].tolist() == session.names
        assert list(f.attrs["class_names"]) == list(MFNET.class_names)
        assert f.attrs["palette"].dtype == np.uint8 and f.attrs["palette"].shape == (9, 3)
        assert int(f.attrs["ignore_index"]) == 255 and f.attrs["axes"] == "tyx"
        assert "probabilities" not in f and "eo" not in f


def test_the_file_records_the_ir_alignment_it_was_made_with(session, tmp_path):
    """An export of registered IR says which homography put IR on the EO grid; plain resizing
    records none."""
    out = export_hdf5(session, tmp_path / "plain.h5")
    with h5py.File(out, "r") as f:
        assert f.attrs["ir_alignment"] == ""
    h = [[1.02, 0.0, 3.0], [0.0, 1.02, -2.0], [0.0, 0.0, 1.0]]
    session.set_alignment({"homography": h})
    out = export_hdf5(session, tmp_path / "aligned.h5")
    with h5py.File(out, "r") as f:
        assert np.allclose(json.loads(f.attrs["ir_alignment"])["homography"], h)


def test_gzip_chunks_decompress_like_any_deflate_reader(session, tmp_path):
    out = export_hdf5(session, tmp_path / "g.h5", compression="gzip", compression_level=6)
    with h5py.File(out, "r") as f:
        assert f["labels"].compression == "gzip" and f["labels"].compression_opts == 6
        assert all(np.array_equal(f["labels"][i], session.labels(i)) for i in range(N))


def test_our_export_opens_as_a_sequence(session, tmp_path):
    out = export_hdf5(session, tmp_path / "s.h5", copy_images=True)
    seq = open_sequence(out)
    try:
        assert len(seq) == N and seq.names == session.names and seq.scheme == MFNET
        assert np.array_equal(seq[2].label, session.labels(2)) and np.array_equal(seq[1].eo, session.sequence[1].eo)
    finally:
        seq.close()


def _dir_state(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()}


def test_cancel_keeps_the_earlier_file_and_leaves_no_temp(session, tmp_path):
    out = export_hdf5(session, tmp_path / "x" / "labels.h5")
    before = _dir_state(out.parent)
    calls = iter(range(100))
    with pytest.raises(CancelledError, match="unchanged"):
        export_hdf5(session, out, cancel=lambda: next(calls) >= 3)
    assert _dir_state(out.parent) == before


def test_failure_raises_export_error_and_keeps_the_earlier_file(session, tmp_path, monkeypatch):
    out = export_hdf5(session, tmp_path / "y" / "labels.h5")
    before = _dir_state(out.parent)
    # The writer runs in a child process: it gets an h5py whose late create_dataset hits a full disk.
    child = textwrap.dedent("""
        import errno, h5py
        real = h5py.Group.create_dataset
        def disk_full(self, name, *a, **k):
            if name == "corrected":  # late in the write, after every frame
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, name, *a, **k)
        h5py.Group.create_dataset = disk_full
        from csknet_studio.core.export_process import main
        raise SystemExit(main())
    """)
    monkeypatch.setattr(export_process, "writer_command", lambda: [sys.executable, "-c", child])
    with pytest.raises(ExportError, match="No space left"):
        export_hdf5(session, out)
    assert _dir_state(out.parent) == before


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_frames_of_different_sizes_are_padded_and_read_back_at_their_own_size(tmp_path, compression):
    """Stills from several cameras (RoadScene, TNO) differ in size: the file is as large as the
    largest frame, pads the others (labels 255, images 0, probabilities 0) and records each size in
    `frame_shape`, so our readers crop them back."""
    from csknet_studio.core.data import ArraySequence

    rng = np.random.default_rng(3)
    sizes = [(8, 10), (12, 7), (9, 9)]
    eo = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    ir = [rng.integers(0, 255, (h, w), dtype=np.uint8) for h, w in sizes]
    s = AnnotationSession(ArraySequence(eo, ir, names=["a", "b", "c"], scheme=MFNET), autosave=False)
    masks = [rng.integers(0, 9, (h, w), dtype=np.uint8) for h, w in sizes]
    for i, m in enumerate(masks):
        s.set_prediction(i, m)
    s.accept_prediction(1)
    probs = [rng.random((MFNET.num_classes, h, w)).astype(np.float16) for h, w in sizes]
    out = export_hdf5(s, tmp_path / "mixed.h5", compression=compression, copy_images=True,
                      include_probabilities=lambda i: probs[i])
    with h5py.File(out, "r") as f:
        assert f["labels"].shape == (3, 12, 10) and f["frame_shape"][()].tolist() == [list(v) for v in sizes]
        assert (f["labels"][0, 8:] == 255).all() and (f["labels"][1, :, 7:] == 255).all()
        assert f["eo"].shape == (3, 12, 10, 3) and (f["eo"][2, 9:] == 0).all()
        assert f["probabilities"].shape == (3, MFNET.num_classes, 12, 10)
    back = read_labels_hdf5(out)
    assert all(np.array_equal(back.frame_labels(i), masks[i]) for i in range(3))
    assert back.corrected.tolist() == [False, True, False]
    seq = open_sequence(out)  # the export, opened as a sequence: every frame at its own size
    try:
        for i in range(3):
            fp = seq[i]
            assert fp.shape == sizes[i] and np.array_equal(fp.eo, eo[i]) and np.array_equal(fp.ir, ir[i])
            assert np.array_equal(fp.label, masks[i])
    finally:
        seq.close()
    export_png(s, tmp_path / "png")  # PNG masks keep each frame's size too
    assert decode_png_indices((tmp_path / "png" / "b.png").read_bytes())[0].shape == (12, 7)


def test_png_masks_hold_ids_and_show_colours(session, tmp_path):
    out = export_png(session, tmp_path / "masks")
    assert json.loads((out / "classes.json").read_text())["name"] == "mfnet"
    for i, name in enumerate(session.names):
        data = (out / f"{name}.png").read_bytes()
        ids, palette = decode_png_indices(data)
        assert np.array_equal(ids, session.labels(i))
        bgr = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_UNCHANGED)  # cv2 expands the palette
        table = np.zeros((256, 3), np.uint8)
        table[:9] = MFNET.palette_array()
        assert np.array_equal(palette, table) and np.array_equal(bgr[..., ::-1], table[ids])
    only = export_png(session, tmp_path / "only", only_corrected=True)
    assert sorted(p.name for p in only.glob("*.png")) == [f"{session.names[i]}.png" for i in (0, 2, 3)]


def test_png_decoder_handles_every_row_filter():
    rng = np.random.default_rng(3)
    ids = np.clip(np.cumsum(rng.integers(0, 3, (40, 50)), axis=1) // 7, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", ids)  # libpng picks adaptive filters (sub/up/avg/paeth)
    assert ok
    raw, pal = decode_png_indices(buf.tobytes())
    assert np.array_equal(raw, ids) and pal is None
    mine = encode_palette_png(ids, MFNET.palette_array())
    assert np.array_equal(decode_png_indices(mine)[0], ids)
    with pytest.raises(ValueError):
        encode_palette_png(ids.astype(np.uint16), MFNET.palette_array())


def test_cli_exports_a_folder_sequence_with_its_project(tmp_path, capsys, folder_sequence):
    root = folder_sequence(tmp_path / "seq")
    seq = open_sequence(root)
    s = AnnotationSession(seq)
    s.paint_stroke(1, [(10, 10), (20, 12)], 3, 2)
    seq.close()
    assert (tmp_path / "seq.csknet" / "project.json").is_file()

    assert main(["export", str(root), "--out", str(tmp_path / "out.h5"), "--compression", "lzf",
                 "--copy-images", "--quiet"]) == 0
    assert "1 corrected" in capsys.readouterr().out
    r = read_labels_hdf5(tmp_path / "out.h5")
    assert r.corrected.tolist() == [False, True, False, False] and r.labels[1][10, 15] == 3
    assert r.eo.shape == (4, 48, 64, 3) and r.source == "seq"

    assert main(["export", str(root), "--png", str(tmp_path / "png"), "--only-corrected", "--quiet"]) == 0
    ids, _ = decode_png_indices((tmp_path / "png" / f"{r.frame_names[1]}.png").read_bytes())
    assert np.array_equal(ids, r.labels[1])

    # a project of another sequence is a one-line error, exit code 2
    other = folder_sequence(tmp_path / "other", n=3)
    assert main(["export", str(other), "--project", str(tmp_path / "seq.csknet"), "--quiet"]) == 2
    assert "another sequence" in capsys.readouterr().err
    assert main(["export", str(root), "--probabilities", "--quiet"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert s.origin(1) is Origin.CORRECTED


def test_cli_with_a_checkpoint_exports_predictions_and_probabilities(tmp_path, folder_sequence):
    from csknet_studio.core.checkpoint import save_checkpoint
    from csknet_studio.core.model import create_model

    root = folder_sequence(tmp_path / "seq", n=3)
    seq = open_sequence(root)
    s = AnnotationSession(seq)
    s.fill_polygon(0, [(0, 0), (30, 0), (0, 30)], 4)
    seq.close()
    import torch

    torch.manual_seed(0)  # the same untrained weights whatever ran before (fp16 near-ties depend on them)
    digest = save_checkpoint(tmp_path / "tiny.pt", create_model("csknet-tiny", num_classes=9), scheme=MFNET)
    out = tmp_path / "p.h5"
    assert main(["export", str(root), "--out", str(out), "--checkpoint", str(tmp_path / "tiny.pt"),
                 "--probabilities", "--device", "cpu", "--mode", "ir", "--quiet"]) == 0
    r = read_labels_hdf5(out)
    assert r.probabilities.shape == (3, 9, 48, 64) and r.probabilities.dtype == np.float16
    assert r.checkpoint_hash == digest and r.mode == "ir"
    assert r.corrected.tolist() == [True, False, False] and r.labels[0][0, 0] == 4
    # uncorrected frames carry the model's prediction: the arg-max of its probabilities
    agree = (r.labels[1:] == r.probabilities[1:].astype(np.float32).argmax(1)).mean()
    assert agree > 0.99
    # --mirror: the probabilities are the mean of each frame's and its mirror's
    mirrored = tmp_path / "m.h5"
    assert main(["export", str(root), "--out", str(mirrored), "--checkpoint", str(tmp_path / "tiny.pt"),
                 "--probabilities", "--device", "cpu", "--mode", "ir", "--mirror", "--quiet"]) == 0
    m = read_labels_hdf5(mirrored)
    from csknet_studio.core.checkpoint import load_checkpoint
    from csknet_studio.core.predictor import Predictor

    seq = open_sequence(root)
    want = Predictor(load_checkpoint(tmp_path / "tiny.pt").model, "cpu", mirror=True).predict(None, seq[1].ir, "ir")
    seq.close()
    np.testing.assert_allclose(m.probabilities[1].astype(np.float32), want.probs.astype(np.float32), atol=2e-3)
    assert not np.allclose(m.probabilities[1].astype(np.float32), r.probabilities[1].astype(np.float32), atol=1e-3)


def test_a_snapshot_exports_the_labels_of_its_instant_from_another_thread(session, tmp_path):
    import threading

    snap = session.snapshot()
    want = [session.labels(i).copy() for i in range(N)]
    session.flood_fill(4, (0, 0), 1)  # edits after the snapshot do not leak into the export
    session.paint_stroke(0, [(1, 1)], 5, 1)
    result = {}
    t = threading.Thread(target=lambda: result.update(path=export_hdf5(snap, tmp_path / "snap.h5")))
    t.start()
    t.join(30)
    r = read_labels_hdf5(result["path"])
    assert all(np.array_equal(r.labels[i], want[i]) for i in range(N))
    assert r.corrected.tolist() == [True, False, True, True, False] and r.checkpoint_hash == "cafe0123"


def test_each_frame_exports_what_the_options_say_and_records_its_origin(session, tmp_path):
    from csknet_studio.core.export_read import count_origins, read_frame_origins

    session.apply_propagation({1: np.full((48, 64), 3, np.uint8), 4: np.full((48, 64), 8, np.uint8)})
    r = read_labels_hdf5(export_hdf5(session, tmp_path / "all.h5"))
    assert r.frame_origin == ["corrected", "propagated", "corrected", "corrected", "propagated"]
    assert (r.labels[1] == 3).all() and (r.labels[4] == 8).all()
    with h5py.File(tmp_path / "all.h5") as f:  # plain h5py sees the origins as strings
        assert [v.decode() for v in f["frame_origin"][()]][1] == "propagated"

    asked = []
    out = export_hdf5(session, tmp_path / "pred.h5", include_propagated=False,
                      predict=lambda i: asked.append(i) or np.full((48, 64), 5, np.uint8))
    r = read_labels_hdf5(out)
    assert asked == [4]  # frame 1 has the session's own prediction under its propagated labels
    assert np.array_equal(r.labels[1], session.prediction(1)) and (r.labels[4] == 5).all()
    assert count_origins(r.frame_origin) == {"corrected": 3, "propagated": 0, "predicted": 2, "unlabelled": 0}

    r = read_labels_hdf5(export_hdf5(session, tmp_path / "none.h5", include_predictions=False,
                                     include_propagated=False))
    assert r.frame_origin[1] == r.frame_origin[4] == "unlabelled" and (r.labels[[1, 4]] == 255).all()

    png = export_png(session, tmp_path / "png", include_propagated=False, include_predictions=False)
    assert read_frame_origins(png) == ["corrected", "unlabelled", "corrected", "corrected", "unlabelled"]
    ids, _ = decode_png_indices((png / f"{session.names[4]}.png").read_bytes())
    assert (ids == 255).all()


def test_cli_flags_for_propagated_frames_and_predictions(tmp_path, capsys, folder_sequence):
    root = folder_sequence(tmp_path / "seq", n=3)
    seq = open_sequence(root)
    s = AnnotationSession(seq)
    s.apply_propagation({1: np.full((48, 64), 2, np.uint8)})
    seq.close()
    assert main(["export", str(root), "--out", str(tmp_path / "a.h5"), "--quiet"]) == 0
    assert "3 frames: 0 corrected, 1 propagated, 0 predicted, 2 unlabelled" in capsys.readouterr().out
    assert read_labels_hdf5(tmp_path / "a.h5").frame_origin == ["unlabelled", "propagated", "unlabelled"]
    assert main(["export", str(root), "--out", str(tmp_path / "b.h5"), "--no-propagated", "--quiet"]) == 0
    assert (read_labels_hdf5(tmp_path / "b.h5").labels == 255).all()
    assert main(["export", str(root), "--include-predictions", "--quiet"]) == 2
    assert "--include-predictions needs a model" in capsys.readouterr().err
