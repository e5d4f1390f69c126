from __future__ import annotations

import numpy as np
import pytest

from csknet_studio.core.modes import Mode
from csknet_studio.core.uncertainty import UncertaintyTracker, disagreement


def test_disagreement_counts_only_pixels_labelled_in_both():
    a = np.array([[0, 1, 2], [3, 255, 1]], dtype=np.uint8)
    b = np.array([[0, 2, 2], [1, 1, 255]], dtype=np.uint8)
    d = disagreement(a, b)
    assert d.mask.tolist() == [[False, True, False], [True, False, False]]
    assert d.pixels == 2
    assert d.fraction == pytest.approx(2 / 4)


def test_disagreement_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="equal"):
        disagreement(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))


def test_next_most_uncertain_skips_excluded_and_other_modes():
    t = UncertaintyTracker()
    t.record(0, Mode.BOTH, np.full((4, 4), 0.2, np.float32))
    t.record(1, Mode.BOTH, 0.9)
    t.record(2, Mode.BOTH, 0.5)
    t.record(3, Mode.IR, 1.0)
    assert t.next_most_uncertain(Mode.BOTH) == 1
    assert t.next_most_uncertain(Mode.BOTH, exclude={1}) == 2
    assert t.next_most_uncertain(Mode.IR) == 3
    assert t.next_most_uncertain(Mode.EO) is None
    assert t.score(0, "both") == pytest.approx(0.2)


def test_new_weights_version_forgets_old_scores_and_ignores_late_results():
    t = UncertaintyTracker()
    t.record(5, Mode.BOTH, 0.9, weights_version=0)
    t.record(2, Mode.BOTH, 0.1, weights_version=1)
    assert len(t) == 1
    t.record(7, Mode.BOTH, 0.99, weights_version=0)  # late result from replaced weights
    assert t.next_most_uncertain(Mode.BOTH) == 2
