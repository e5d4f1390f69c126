"""Image views: fixed levels, thermal palettes, overlay bases, linked zoom."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from csknet_studio.core.data.levels import apply_levels
from csknet_studio.core.frames import FramePair
from csknet_studio.ui.image_views import BASES, PALETTES, ImageViews, thermal_lut


def test_levels_map_raw_values_including_16_bit():
    ir16 = np.array([[1000, 2000, 3000]], np.uint16)
    np.testing.assert_array_equal(apply_levels(ir16, (1000, 3000)), [[0, 128, 255]])
    eo = np.array([[[10, 20, 30]]], np.uint8)
    np.testing.assert_array_equal(apply_levels(eo, (10, 30)), [[[0, 128, 255]]])
    f = np.array([[-1.0, 0.5, 2.0]], np.float32)
    np.testing.assert_array_equal(apply_levels(f, (0.0, 1.0)), [[0, 128, 255]])


@pytest.mark.parametrize("name", PALETTES)
def test_thermal_palettes_are_uint8_luts(name):
    lut = thermal_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    if name == "black-hot":
        assert lut[255].sum() == 0 and lut[0].sum() == 3 * 255  # hot is black
        np.testing.assert_array_equal(lut, thermal_lut("white-hot")[::-1])
    else:
        assert lut[255].sum() > lut[0].sum()  # hot is bright
    assert set(PALETTES) >= {"white-hot", "black-hot", "inferno", "ironbow"}
    np.testing.assert_array_equal(thermal_lut("grey"), thermal_lut("white-hot"))  # older settings' name


def test_bases_and_levels_fixed_per_sequence(qtbot):
    views = ImageViews()
    qtbot.addWidget(views)
    rng = np.random.default_rng(1)
    f = FramePair("a", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8),
                  rng.integers(2000, 3000, (40, 60), dtype=np.uint16))
    views.set_levels({"eo": (0, 255), "ir": (2000, 3000)})
    views.show_frame(f)
    assert views.ir_item.levels is None  # scaled once with the sequence's levels, never auto-levelled
    np.testing.assert_array_equal(views.ir_item.image, apply_levels(f.ir, (2000, 3000)))
    seen = {}
    for base in BASES:
        views.set_base(base)
        seen[base] = np.array(views.base_item.image, copy=True)
    assert seen["EO"].shape == (40, 60, 3)
    assert not np.array_equal(seen["Blend"], seen["EO"]) and not np.array_equal(seen["Checker"], seen["Blend"])
    chk = seen["Checker"]
    assert np.array_equal(chk[0, 0], seen["EO"][0, 0])  # tiles alternate EO / IR
    with pytest.raises(ValueError):
        views.set_base("nope")


def test_zoom_is_linked_in_image_terms(qtbot):
    views = ImageViews()
    qtbot.addWidget(views)
    views.resize(900, 500)
    views.show()
    f = FramePair("a", np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64), np.uint8))
    views.show_frame(f)
    views.eo_view.setRange(QtCore.QRectF(16, 12, 32, 24), padding=0.0)
    views._sync_from(views.eo_view)
    for vb in (views.ir_view, views.overlay_view):
        (x0, x1), (y0, y1) = vb.viewRange()
        assert abs((x0 + x1) / 2 - 32) < 1 and abs((y0 + y1) / 2 - 24) < 1
        assert min((x1 - x0) / 64, (y1 - y0) / 48) == pytest.approx(0.5, abs=0.05)
