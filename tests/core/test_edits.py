"""core.edits building blocks used outside the session: the class-boundary mask."""

from __future__ import annotations

import numpy as np

from csknet_studio.core.edits import label_edges


def test_label_edges_marks_both_sides_of_a_boundary() -> None:
    mask = np.zeros((6, 8), np.uint8)
    mask[:, 4:] = 2
    edge = label_edges(mask)
    assert edge[:, 3].all() and edge[:, 4].all()
    assert not edge[:, [0, 1, 2, 5, 6, 7]].any()
