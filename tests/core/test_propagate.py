"""Label propagation by optical flow, and the session's propagated layer (undo, persistence)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from csknet_studio.core.edits import Origin
from csknet_studio.core.errors import CancelledError
from csknet_studio.core.frames import FramePair
from csknet_studio.core.propagate import PropagationConfig, propagate_labels, propagation_targets
from csknet_studio.core.session import AnnotationSession

H, W, PAD = 72, 96, 24


def _texture(seed: int, shape: tuple[int, int]) -> np.ndarray:
    noise = np.random.default_rng(seed).random(shape).astype(np.float32)
    t = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


def _panning(n: int, dx: int = 3, dy: int = 2, dark_eo: bool = False):
    """Frames of one textured scene seen through a window moving by (dx, dy) per frame, and the
    ground-truth labels of each frame (two boxes fixed in the scene)."""
    scene = _texture(0, (H + 2 * PAD, W + 2 * PAD))
    truth = np.zeros(scene.shape, np.uint8)
    truth[30:70, 40:90] = 1
    truth[72:90, 60:100] = 2  # both boxes stay inside every frame
    rng = np.random.default_rng(1)
    frames, labels = [], []
    for t in range(n):
        y, x = PAD - dy * t + 4, PAD - dx * t + 6
        ir = scene[y : y + H, x : x + W].copy()
        eo = rng.integers(0, 6, (H, W, 3), dtype=np.uint8) if dark_eo else np.repeat(ir[..., None], 3, 2)
        frames.append(FramePair(f"f{t}", eo, ir))
        labels.append(truth[y : y + H, x : x + W].copy())
    return frames, labels


def _iou(a: np.ndarray, b: np.ndarray, classes=(1, 2)) -> float:
    return float(np.mean([((a == c) & (b == c)).sum() / max(1, ((a == c) | (b == c)).sum()) for c in classes]))


def test_pure_translation_reproduces_the_labels():
    frames, truth = _panning(5)
    done = []
    out = propagate_labels(frames, 0, truth[0], [1, 2, 3, 4], progress=lambda d, t: done.append((d, t)))
    assert [p.index for p in out] == [1, 2, 3, 4] and done[-1] == (4, 4)
    for p in out:
        assert p.labels.dtype == np.uint8 and p.labels.shape == (H, W)
        assert _iou(p.labels, truth[p.index]) >= 0.95
        known = p.labels != 255  # pixels entering the view have no source and no prediction
        assert (p.labels[known] == truth[p.index][known]).mean() > 0.99
    back = propagate_labels(frames, 4, truth[4], [3, 2])  # backward works the same way
    assert _iou(back[-1].labels, truth[2]) >= 0.95


def _moving_disk(n: int, step: int = 5):
    """A textured disk (class 1) sliding right over a static textured background (class 0)."""
    bg, fg = _texture(3, (H, W)), _texture(4, (H, W)) // 2 + 120
    yy, xx = np.mgrid[:H, :W]
    frames, labels = [], []
    for t in range(n):
        disk = (yy - 36) ** 2 + (xx - (30 + step * t)) ** 2 < 14**2
        img = np.where(np.roll(disk, 0), np.roll(fg, step * t, axis=1), bg).astype(np.uint8)
        frames.append(FramePair(f"f{t}", np.repeat(img[..., None], 3, 2), img))
        labels.append(disk.astype(np.uint8))
    return frames, labels


def test_a_disoccluded_region_falls_back_to_the_prediction():
    frames, truth = _moving_disk(2)
    prediction = np.full((H, W), 5, np.uint8)
    (p,) = propagate_labels(frames, 0, truth[0], [1], predictions=lambda i: prediction)
    uncovered = (truth[0] == 1) & (truth[1] == 0)  # background the disk has just left
    core = cv2.erode(uncovered.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (p.labels[core] != 1).mean() > 0.9  # never the disk's label dragged along
    assert (p.labels[core] == 5).mean() > 0.6  # the model's labels where the flow is not trusted
    far = cv2.dilate((truth[0] | truth[1]).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert (p.labels[far] == 0).mean() > 0.95  # the static background is carried
    on_disk = p.labels[truth[1] == 1]  # its leading edge covers new ground: filled, not dragged
    assert (on_disk == 1).mean() > 0.7 and (on_disk == 0).mean() < 0.05


def test_new_content_is_not_carried():
    frames, truth = _panning(2)
    new = _texture(7, (24, 24))  # content that is not in frame 0: the flow cannot match it
    frames[1].eo[20:44, 30:54] = new[..., None]
    frames[1].ir[20:44, 30:54] = new
    prediction = np.full((H, W), 5, np.uint8)
    (p,) = propagate_labels(frames, 0, truth[0], [1], predictions=lambda i: prediction)
    inner = np.zeros((H, W), bool)
    inner[24:40, 34:50] = True
    assert (p.labels[inner] == 5).mean() > 0.9  # not carried: the model's labels
    far = np.ones((H, W), bool)
    far[10:54, 20:64] = False
    far[:, :8] = far[:8, :] = False  # the edges entering the view are filled too
    assert (p.labels[far] == truth[1][far]).mean() > 0.98
    assert 0 < p.filled < 0.3 and p.carried > 0.6
    (q,) = propagate_labels(frames, 0, truth[0], [1])  # no prediction: unlabelled there
    assert (q.labels[inner] == 255).mean() > 0.9


def test_the_flow_uses_the_modality_that_sees():
    frames, truth = _panning(3, dark_eo=True)  # night: EO is sensor noise, IR has the texture
    out = propagate_labels(frames, 0, truth[0], [1, 2])
    assert [p.modality for p in out] == ["ir", "ir"]
    assert _iou(out[-1].labels, truth[2]) >= 0.95
    day, _ = _panning(2)
    day[1].ir[:] = day[0].ir  # a frozen thermal image: only EO sees the motion consistently
    day[0].ir[:] = 128
    assert propagate_labels(day, 0, truth[0], [1])[0].modality == "eo"
    only_eo = propagate_labels(frames, 0, truth[0], [1], config=PropagationConfig(modality="eo"))
    assert only_eo[0].modality == "eo"


def test_targets_stop_at_corrected_frames_and_the_ends():
    o = [Origin.EMPTY, Origin.PREDICTED, Origin.PROPAGATED, Origin.CORRECTED, Origin.EMPTY, Origin.EMPTY]
    assert propagation_targets(o, 0, 10, 1) == [1, 2]
    assert propagation_targets(o, 4, 10, 1) == [5]
    assert propagation_targets(o, 5, 3, -1) == [4]
    assert propagation_targets(o, 2, 1, -1) == [1]
    with pytest.raises(ValueError):
        propagation_targets(o, 0, 1, 0)
    with pytest.raises(ValueError):
        PropagationConfig(modality="uv")


def test_cancel_raises_and_an_unreadable_frame_stops_the_run():
    frames, truth = _panning(4)
    with pytest.raises(CancelledError):
        propagate_labels(frames, 0, truth[0], [1, 2, 3], cancel=lambda: True)
    frames[2] = FramePair("bad", frames[2].eo, frames[2].ir, bad=True)
    assert [p.index for p in propagate_labels(frames, 0, truth[0], [1, 2, 3])] == [1]


def _labels(value: int, shape=(48, 64)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def test_a_propagation_is_one_undo_step_and_never_touches_corrections(tmp_path, make_sequence):
    seq = make_sequence(tmp_path / "seq", n=6)
    s = AnnotationSession(seq)
    s.set_prediction(2, seq[2].label)
    s.fill_polygon(4, [(0, 0), (20, 0), (0, 20)], 3)
    before = [s.labels(i).copy() for i in range(6)]
    changed = []
    s.events.origin_changed.connect(changed.append)
    assert s.apply_propagation({1: _labels(1), 2: _labels(2), 3: _labels(3), 4: _labels(4)}) == [1, 2, 3]
    assert s.origins()[:5] == [Origin.EMPTY, Origin.PROPAGATED, Origin.PROPAGATED, Origin.PROPAGATED,
                               Origin.CORRECTED]
    assert (s.labels(2) == 2).all() and np.array_equal(s.labels(4), before[4])  # correction kept
    assert s.propagated_frames() == [1, 2, 3] and sorted(changed) == [1, 2, 3]
    assert s.undo()[0] == 1  # one step takes the whole propagation back
    assert s.origins()[:4] == [Origin.EMPTY, Origin.EMPTY, Origin.PREDICTED, Origin.EMPTY]
    assert all(np.array_equal(s.labels(i), before[i]) for i in range(6))
    s.redo()
    assert (s.labels(3) == 3).all() and s.origin(3) is Origin.PROPAGATED


def test_editing_or_accepting_a_propagated_frame_corrects_it_and_undo_brings_it_back(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=4))
    s.apply_propagation({1: _labels(1), 2: _labels(2)})
    s.paint_stroke(1, [(5, 5), (10, 5)], 6, 2)
    assert s.origin(1) is Origin.CORRECTED and s.labels(1)[5, 7] == 6 and s.labels(1)[40, 60] == 1
    s.accept_prediction(2)  # accepts the propagated labels the reviewer sees
    assert s.origin(2) is Origin.CORRECTED and (s.labels(2) == 2).all()
    assert s.propagated_frames() == []
    s.undo()
    s.undo()
    assert s.origins()[1:3] == [Origin.PROPAGATED, Origin.PROPAGATED] and (s.labels(1) == 1).all()
    s.redo()  # the stroke again, on top of the propagated labels
    assert s.labels(1)[5, 7] == 6 and s.labels(1)[40, 60] == 1
    # a second propagation over a corrected frame leaves it alone
    assert s.apply_propagation({1: _labels(7), 3: _labels(3)}) == [3]


def test_propagated_frames_survive_a_relaunch(tmp_path, make_sequence):
    s = AnnotationSession(make_sequence(tmp_path / "seq", n=5))
    s.apply_propagation({1: _labels(1), 2: _labels(2), 3: _labels(3)})
    s.accept_prediction(3)
    s.close()  # compaction: frame 3's mask goes to masks/, its propagated file away
    proj = tmp_path / "seq.csknet"
    assert sorted(p.name for p in (proj / "propagated").iterdir()) == ["000001.png", "000002.png"]
    assert sorted(p.name for p in (proj / "masks").iterdir()) == ["000003.png"]
    s2 = AnnotationSession(make_sequence(tmp_path / "seq", n=5))
    assert s2.origins() == [Origin.EMPTY, Origin.PROPAGATED, Origin.PROPAGATED, Origin.CORRECTED, Origin.EMPTY]
    assert (s2.labels(2) == 2).all() and (s2.labels(3) == 3).all()
    s2.paint_stroke(2, [(1, 1)], 4, 1)  # the first edit of a restored propagated frame starts from it
    assert s2.origin(2) is Origin.CORRECTED and s2.labels(2)[30, 30] == 2
    s2.undo()
    assert s2.origin(2) is Origin.PROPAGATED
    snap = s2.snapshot()
    assert snap.origin(1) is Origin.PROPAGATED and (snap.labels(1) == 1).all()
