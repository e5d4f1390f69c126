"""Metrics against hand-computed values, and evaluate() on a real (tiny) model per mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from csknet_studio.core.evaluate import (
    SegMetrics,
    confusion_matrix,
    confusion_matrix_torch,
    evaluate,
    format_table,
)
from csknet_studio.core.modes import ALL_MODES, Mode


def test_confusion_matrix_by_hand():
    target = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 2]], np.uint8)
    conf = confusion_matrix(pred, target, 3)
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_array_equal(conf, expected)  # the ignored pixel (255) is not counted
    np.testing.assert_array_equal(confusion_matrix_torch(torch.from_numpy(pred), torch.from_numpy(target), 3).numpy(),
                                  expected)
    m = SegMetrics(conf)
    # IoU: class0 1/(2+2-1)=1/3, class1 2/(3+2-2)=2/3, class2 0/(1+0)=0
    np.testing.assert_allclose(m.iou, [1 / 3, 2 / 3, 0.0])
    assert m.miou == pytest.approx(1 / 3)
    assert m.pixel_accuracy == pytest.approx(3 / 5)
    assert m.pixels == 5


def test_absent_class_is_nan_and_left_out_of_mean():
    conf = confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), 4)
    m = SegMetrics(conf)
    assert m.iou[0] == 1 and m.iou[1] == 1 and math.isnan(m.iou[2]) and math.isnan(m.iou[3])
    assert m.miou == 1.0
    assert m.to_dict(["a", "b", "c", "d"])["iou"]["c"] is None


def test_out_of_range_predictions_are_not_counted_as_hits():
    conf = confusion_matrix(np.array([7, 1]), np.array([1, 1]), 3)
    assert conf.sum() == 1 and conf[1, 1] == 1


def test_evaluate_runs_each_mode_and_matches_manual_argmax(make_frames, scheme3):
    from csknet_studio.core.data import ArraySequence
    from csknet_studio.core.model import create_model, to_tensors

    frames = make_frames(5, size=48, seed=1)
    seq = ArraySequence(np.stack([f.eo for f in frames]), np.stack([f.ir for f in frames]),
                        np.stack([f.label for f in frames]), scheme=scheme3)
    model = create_model("csknet-tiny", num_classes=3).eval()
    res = evaluate(model, seq, ALL_MODES, device="cpu", batch=2)
    assert set(res) == set(ALL_MODES)
    for mode in ALL_MODES:
        conf = np.zeros((3, 3), np.int64)
        with torch.no_grad():
            for f in frames:
                eo, ir = to_tensors(f.eo if mode.uses_eo else None, f.ir if mode.uses_ir else None,
                                    model.config.input_norm)
                conf += confusion_matrix(model(eo, ir).logits.argmax(1)[0], f.label, 3)
        np.testing.assert_array_equal(res[mode].confusion, conf)
        assert res[mode].pixels == 5 * 48 * 48
    table = format_table(res, scheme3.class_names)
    assert "person" in table and "IR only" in table and "mIoU" in table
    assert f"{100 * res[Mode.IR].miou:.1f}" in table


def test_unlabelled_and_bad_frames_are_skipped_but_counted_in_progress(make_frames):
    from csknet_studio.core.frames import FramePair
    from csknet_studio.core.model import create_model

    frames = make_frames(3, size=32, seed=3)
    frames.insert(1, FramePair("nolabel", frames[0].eo, frames[0].ir, None))
    frames.append(FramePair("bad", frames[0].eo, frames[0].ir, frames[0].label, bad=True))
    seen = []
    res = evaluate(create_model("csknet-tiny", num_classes=3), frames, [Mode.IR], batch=2,
                   progress=lambda d, t: seen.append((d, t)))
    assert res[Mode.IR].pixels == 3 * 32 * 32
    assert seen[-1] == (5, 5)
