"""The Studio's state without Qt: navigation, modes, editing, the overlay and the prediction rule."""

from __future__ import annotations

import numpy as np
import pytest

from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.data import ArraySequence
from csknet_studio.core.edits import Origin, Rect
from csknet_studio.core.modes import Mode
from csknet_studio.core.predictor import Prediction
from csknet_studio.core.session import AnnotationSession
from csknet_studio.core.studio import OverlaySource, PaintStart, StudioState

H, W, N = 12, 16, 5


def _prediction(cls: int, mode: Mode = Mode.BOTH) -> Prediction:
    labels = np.full((H, W), cls, np.uint8)
    return Prediction(labels=labels, probs=np.zeros((1, H, W), np.float16), entropy=np.zeros((H, W), np.float32),
                      mode=mode, weights_version=1, ms=1.0)


class Recorder:
    """Collects every event the state announces, in order."""

    def __init__(self, state: StudioState) -> None:
        self.seen: list[tuple] = []
        for name in vars(state.events):
            getattr(state.events, name).connect(lambda *a, n=name: self.seen.append((n, *a)))

    def names(self) -> list[str]:
        return [e[0] for e in self.seen]

    def clear(self) -> None:
        self.seen.clear()


@pytest.fixture
def state() -> StudioState:
    rng = np.random.default_rng(0)
    seq = ArraySequence(rng.integers(0, 255, (N, H, W, 3), np.uint8), rng.integers(0, 255, (N, H, W), np.uint8),
                        names=[f"f{i}" for i in range(N)])
    st = StudioState()
    st.open(seq, AnnotationSession(seq, autosave=False))
    return st


def test_navigation_shows_each_frame_once_and_clamps(state: StudioState):
    rec = Recorder(state)
    assert state.go_to(0) and state.index == 0 and state.frame.name == "f0"
    assert not state.go_to(0)  # already shown: nothing announced
    assert not state.go_to(N)
    state.step(10)
    assert state.index == N - 1
    state.step(-2)
    assert state.index == N - 3
    assert rec.names() == ["frame_changed", "overlay_changed"] * 3
    assert state.mask is None  # no prediction, no correction: no overlay at all


def test_a_cached_prediction_paints_the_overlay_once_with_the_frame(state: StudioState):
    rec = Recorder(state)
    state.go_to(2, _prediction(3))
    assert rec.names().count("overlay_changed") == 1
    assert state.session.origin(2) is Origin.PREDICTED
    assert (state.mask == 3).all()


def test_the_prediction_rule_takes_only_the_shown_frame_and_mode(state: StudioState):
    state.go_to(1)
    rec = Recorder(state)
    assert not state.offer_prediction(0, Mode.BOTH, _prediction(2))  # another frame
    assert not state.offer_prediction(1, Mode.IR, _prediction(2))  # another mode
    assert state.mask is None and state.prediction is None
    assert state.offer_prediction(1, Mode.BOTH, _prediction(2))
    assert rec.names().count("overlay_changed") == 1 and "prediction_changed" in rec.names()
    assert (state.mask == 2).all()
    state.session.accept_prediction(1)  # what accept takes
    assert state.session.origin(1) is Origin.CORRECTED


def test_a_prediction_never_replaces_a_correction(state: StudioState):
    state.go_to(0)
    state.set_class(4)
    state.session.paint_stroke(state.index, [(3, 3)], state.stroke_class, 2)
    before = state.mask.copy()
    rec = Recorder(state)
    state.offer_prediction(0, Mode.BOTH, _prediction(1))
    assert "overlay_changed" not in rec.names()  # nothing to repaint: the correction stays shown
    np.testing.assert_array_equal(state.mask, before)
    assert state.mask[3, 3] == 4 and state.mask[11, 15] == IGNORE_INDEX


def test_with_paint_start_prediction_the_late_prediction_fills_the_unlabelled_pixels(state: StudioState):
    state.paint_start = PaintStart.PREDICTION
    state.go_to(0)
    state.set_class(4)
    state.session.paint_stroke(state.index, [(3, 3)], state.stroke_class, 2)
    state.offer_prediction(0, Mode.BOTH, _prediction(1))
    assert state.mask[3, 3] == 4 and state.mask[11, 15] == 1
    state.session.undo()  # the fill is one step of its own: the stroke alone comes back
    assert state.mask[3, 3] == 4 and state.mask[11, 15] == IGNORE_INDEX


def test_edits_repaint_only_the_touched_box(state: StudioState):
    state.go_to(0, _prediction(0))
    rec = Recorder(state)
    state.set_tool("brush")
    state.set_class(2)
    state.session.paint_stroke(state.index, [(8, 6)], state.stroke_class, 1.5)
    rects = [e[1] for e in rec.seen if e[0] == "overlay_rect_changed"]
    assert rects and all(r != Rect.full((H, W)) for r in rects)
    assert "overlay_changed" not in rec.names()
    assert state.mask[6, 8] == 2 and state.class_at(8, 6) == state.scheme.class_names[2]
    state.set_tool("eraser")
    assert state.stroke_class == IGNORE_INDEX


def test_the_read_out_names_classes_as_the_legend_does(state: StudioState):
    """MFNet's class 0 is "unlabeled" in the dataset: a person reads "background", which the
    unlabelled pixels (255) are not."""
    assert state.scheme.class_names[0] == "unlabeled"
    state.go_to(0, _prediction(0))
    state.session.paint_stroke(state.index, [(2, 2)], 0, 1)
    state.session.paint_stroke(state.index, [(12, 9)], IGNORE_INDEX, 1)
    assert state.class_at(2, 2) == "background" and state.class_at(12, 9) == "unlabelled"
    assert state.scheme.shown_name(2) == state.scheme.class_names[2]


def test_mode_switch_drops_the_prediction_and_takes_a_cached_one(state: StudioState):
    state.go_to(0, _prediction(1))
    rec = Recorder(state)
    assert state.set_mode(Mode.IR)
    assert rec.seen[0] == ("mode_changed", Mode.IR) and isinstance(rec.seen[0][1], Mode)
    assert state.prediction is None
    assert not state.set_mode("ir")
    state.set_mode(Mode.EO, _prediction(2, Mode.EO))
    assert state.prediction.mode is Mode.EO and (state.mask == 2).all()


def test_the_overlay_source_and_a_painting_tool(state: StudioState):
    state.go_to(0, _prediction(1))
    state.session.paint_stroke(state.index, [(0, 0)], 3, 1)
    state.set_source(OverlaySource.PREDICTION)
    assert state.mask[0, 0] == 1  # the raw prediction
    state.set_tool("brush")  # painting shows what gets saved
    assert state.source is OverlaySource.LABELS and state.mask[0, 0] == 3
    with pytest.raises(ValueError, match="unknown tool"):
        state.set_tool("lasso")


def test_classes_radius_visibility_and_closing(state: StudioState):
    with pytest.raises(ValueError):
        state.set_class(state.scheme.num_classes)
    assert state.set_class(IGNORE_INDEX) and state.class_name() == "unlabelled (ignore)"
    state.set_radius(500)
    assert state.radius == 100
    state.grow(-1)
    assert state.radius < 100
    rec = Recorder(state)
    assert state.set_hidden({1, 2}) and not state.set_hidden(frozenset({1, 2}))
    assert rec.seen == [("hidden_changed", frozenset({1, 2}))]
    state.go_to(0)
    session = state.close()
    assert session is not None and state.session is None and state.index == -1 and len(state) == 0
    assert not state.go_to(0)
    session.events.labels_changed.emit(0, Rect.full((H, W)))  # a closed session no longer reaches it
    assert state.mask is None


def test_a_revisit_does_not_hand_the_session_the_same_prediction_again(state: StudioState):
    pred = _prediction(2)
    state.go_to(0, pred)
    rec = Recorder(state)
    state.go_to(1)
    state.go_to(0, pred)  # the worker's cache hit: same mode, same weights
    assert "labels_changed" not in rec.names()  # the session was not told (nor repacked) again
    state.set_mode(Mode.IR, _prediction(3, Mode.IR))  # another mode's prediction is recorded
    assert state.session.prediction(0)[0, 0] == 3
