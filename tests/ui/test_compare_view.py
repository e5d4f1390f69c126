from __future__ import annotations

import numpy as np
import pytest

from csknet_studio.core.classes import PST900
from csknet_studio.core.modes import Mode
from csknet_studio.ui.compare_view import CompareView


@pytest.fixture
def view(qtbot):
    v = CompareView(PST900, Mode.BOTH, Mode.IR)
    qtbot.addWidget(v)
    v.show()
    return v


def test_a_hidden_view_compares_at_once_and_draws_when_shown(qtbot):
    v = CompareView(PST900, Mode.BOTH, Mode.IR)
    qtbot.addWidget(v)
    a = np.zeros((6, 8), np.uint8)
    b = a.copy()
    b[2, 3] = 1
    v.set_labels(Mode.BOTH, a)
    v.set_labels(Mode.IR, b)
    assert v.result is not None and v.result.pixels == 1  # the numbers do not wait for the view
    assert v.left_item.image is None and v.diff_item.image is None  # nothing drawn while hidden
    v.show()
    np.testing.assert_array_equal(v.left_item.image, a)
    assert v.diff_item.image is not None and "1 px" in v.fraction_label.text()


def test_disagreement_map_of_two_hand_made_label_maps(qtbot, view):
    a = np.zeros((6, 8), np.uint8)
    b = np.zeros((6, 8), np.uint8)
    a[1:3, 2:5] = 1  # 6 px where only BOTH says class 1
    b[4, :] = 2  # 8 px where only IR says class 2
    b[0, 0] = 255  # unlabelled in IR: never counts
    a[0, 0] = 3
    view.set_labels(Mode.BOTH, a)
    assert view.result is None  # one side only: nothing to compare yet
    with qtbot.waitSignal(view.disagreement_changed) as sig:
        view.set_labels(Mode.IR, b)
    expected = (a != b) & (a != 255) & (b != 255)
    np.testing.assert_array_equal(view.result.mask, expected)
    assert view.result.pixels == 14
    assert sig.args[0] == pytest.approx(14 / 47)
    np.testing.assert_array_equal(view.diff_item.image, expected.astype(np.uint8))
    np.testing.assert_array_equal(view.left_item.image, a)
    assert "29.8 %" in view.fraction_label.text()


def test_changing_a_mode_asks_for_it_and_drops_the_stale_side(qtbot, view):
    view.set_labels(Mode.BOTH, np.zeros((4, 4), np.uint8))
    view.set_labels(Mode.IR, np.ones((4, 4), np.uint8))
    assert view.result.fraction == 1.0
    with qtbot.waitSignal(view.modes_changed) as sig:
        view.right_combo.setCurrentIndex(2)  # EO only
    assert sig.args == ["both", "eo"]
    assert view.result is None and view.right_item.image is None
    view.set_labels(Mode.IR, np.ones((4, 4), np.uint8))  # not shown any more: ignored
    assert view.result is None
    view.set_labels(Mode.EO, np.zeros((4, 4), np.uint8))
    assert view.result.fraction == 0.0
