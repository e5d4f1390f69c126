"""Assisted selections on real sessions: each changes exactly its region and undoes in one step."""

from __future__ import annotations

import numpy as np
import pytest

from csknet_studio.core.assist import SuperpixelCache, snap_region, superpixels, take_region
from csknet_studio.core.data.memory import ArraySequence
from csknet_studio.core.edits import Origin
from csknet_studio.core.session import AnnotationSession

H, W = 60, 80


def _session(eo: np.ndarray, ir: np.ndarray) -> AnnotationSession:
    return AnnotationSession(ArraySequence(eo[None], ir[None], names=["f0"]), autosave=False)


def _flat_eo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (120 + rng.integers(0, 8, (H, W, 3))).astype(np.uint8)


def _ir_step(seed: int = 1) -> np.ndarray:
    """IR cold on the left, hot from column 40 on: an edge EO does not show."""
    rng = np.random.default_rng(seed)
    ir = np.full((H, W), 60, np.uint8)
    ir[:, 40:] = 200
    return ir + rng.integers(0, 8, (H, W)).astype(np.uint8)


def test_take_region_takes_only_the_connected_component_and_undoes_in_one_step():
    s = _session(_flat_eo(), _ir_step())
    pred = np.zeros((H, W), np.uint8)
    pred[5:20, 5:20] = 2  # component A
    pred[30:50, 50:70] = 2  # component B: same class, not connected
    s.set_prediction(0, pred)
    s.fill_polygon(0, [(0, 0), (W - 1, 0), (W - 1, H - 1), (0, H - 1)], 1)  # corrected: all class 1
    before = s.labels(0).copy()
    s.take_region(0, (10, 10))
    lab = s.labels(0)
    assert (lab[5:20, 5:20] == 2).all()
    changed = lab != before
    assert changed.sum() == 15 * 15 and changed[5:20, 5:20].all()  # only A; B and the rest stay 1
    s.take_region(0, (60, 40), class_id=7)  # a class given: the component gets it instead
    assert (s.labels(0)[30:50, 50:70] == 7).all() and (s.labels(0)[5:20, 5:20] == 2).all()
    s.undo()
    s.undo()
    np.testing.assert_array_equal(s.labels(0), before)  # each take was one step


def test_take_region_makes_a_predicted_frame_corrected_and_needs_a_prediction():
    s = _session(_flat_eo(), _ir_step())
    with pytest.raises(ValueError, match="no prediction"):
        s.take_region(0, (10, 10))
    pred = np.zeros((H, W), np.uint8)
    s.set_prediction(0, pred)
    s.take_region(0, (10, 10))
    assert s.origin(0) is Origin.CORRECTED
    s.undo()
    assert s.origin(0) is Origin.PREDICTED and not s.can_undo


def test_snap_brush_stops_at_an_edge_only_ir_sees():
    eo, ir = _flat_eo(), _ir_step()
    seg = superpixels(eo, ir)
    s = _session(eo, ir)
    stroke = [(30.0, 20.0), (35.0, 30.0)]  # brush reaches x = 38: near the edge, not across it
    s.fill_superpixels(0, seg, stroke, 3, class_id=4)
    filled = s.labels(0) == 4
    assert not filled[:, 40:].any(), "the snapped stroke crossed the IR edge"
    assert filled[20:31, 39].all(), "the stroke did not snap out to the IR edge"
    assert filled.sum() > 2 * (7 * 7)  # whole superpixels, not just the brush's pixels
    assert s.origin(0) is Origin.CORRECTED
    s.undo()
    assert (s.labels(0) == 255).all() and s.origin(0) is Origin.EMPTY and not s.can_undo
    # EO alone has no edge there: its superpixels straddle column 40 and the same stroke spills over
    rect, sel = snap_region(superpixels(eo, None), stroke, 3)
    assert rect.x1 > 40 and sel.any()


def test_snap_brush_stops_at_a_16_bit_thermal_edge_scaled_by_the_display_levels():
    eo = _flat_eo()
    ir = np.where(np.arange(W) < 40, 29300, 30100).astype(np.uint16)[None].repeat(H, 0)  # kelvin x 100
    ir = ir + np.random.default_rng(2).integers(0, 20, (H, W)).astype(np.uint16)
    seg = superpixels(eo, ir, {"eo": (0.0, 255.0), "ir": (29000.0, 30500.0)})
    rect, sel = snap_region(seg, [(30.0, 20.0), (35.0, 30.0)], 3)
    assert rect.x1 == 40 and sel[:, -1].any()


def test_snap_region_takes_what_the_centre_crosses_or_the_brush_mostly_covers():
    seg = np.zeros((20, 40), np.int32)
    seg[:, 20:] = 1
    rect, sel = snap_region(seg, [(5.0, 10.0), (17.0, 10.0)], 3)  # grazes segment 1 by two columns
    assert rect.x1 == 20 and sel.all()
    rect, _ = snap_region(seg, [(5.0, 10.0), (21.0, 10.0)], 3)  # the centre enters segment 1
    assert (rect.x0, rect.x1) == (0, 40)


def test_box_grabcut_takes_the_object_inside_the_box_and_nothing_outside():
    yy, xx = np.mgrid[0:H, 0:W]
    person = (yy - 30) ** 2 + ((xx - 40) / 0.6) ** 2 < 12**2  # a warm upright blob
    eo = _flat_eo()
    ir = np.full((H, W), 50, np.uint8)
    ir[person] = 220  # only IR sees it (night): EO stays flat
    other = (yy - 10) ** 2 + (xx - 70) ** 2 < 16
    ir[other] = 220  # another warm object, outside the box
    s = _session(eo, ir)
    s.grabcut_box(0, (28.0, 14.0), (52.0, 46.0), class_id=3)
    got = s.labels(0) == 3
    inside = np.zeros((H, W), bool)
    inside[14:47, 28:53] = True
    assert not (got & ~inside).any() and not got[other].any()
    iou = (got & person).sum() / (got | person).sum()
    assert iou > 0.9, f"GrabCut found {got.sum()} px, IoU {iou:.2f} with the object"
    assert s.undo() is not None and (s.labels(0) == 255).all() and not s.can_undo


def test_box_grabcut_refuses_a_box_without_background():
    s = _session(_flat_eo(), _ir_step())
    with pytest.raises(ValueError, match="whole frame"):
        s.grabcut_box(0, (0.0, 0.0), (W - 1.0, H - 1.0), class_id=3)
    assert not s.can_undo


def test_take_region_rejects_mismatched_shapes_and_cache_keeps_the_newest():
    with pytest.raises(ValueError, match="shape"):
        take_region(np.zeros((4, 4), np.uint8), np.zeros((5, 5), np.uint8), (1, 1))
    cache = SuperpixelCache(max_frames=2)
    for i in range(3):
        cache.put(i, np.full((2, 2), i, np.int32))
    assert 0 not in cache and cache.get(2) is not None and 1 in cache
