"""Frames rendered ahead in a background thread: the GUI thread only swaps the finished images."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import csknet_studio.ui.image_views as image_views
from csknet_studio.core.data import ArraySequence
from csknet_studio.ui.display_prep import DisplayStyle, FramePrefetcher, render_frame


@pytest.fixture
def seq():
    rng = np.random.default_rng(3)
    return ArraySequence(rng.integers(0, 255, (8, 24, 32, 3), np.uint8),
                         rng.integers(1000, 3000, (8, 24, 32), np.uint16), names=[f"f{i}" for i in range(8)])


def _wait(fut_map, index, qtbot):
    qtbot.waitUntil(lambda: index in fut_map and fut_map[index].done(), timeout=10000)


@pytest.mark.parametrize("base", ["EO", "IR", "Blend", "Checker"])
def test_a_rendering_is_ready_to_draw_and_matches_its_arrays(seq, base):
    style = DisplayStyle(ir_levels=(1000.0, 3000.0), palette="ironbow", base=base)
    im = render_frame(seq[2], style)
    assert im.eo_image.format() == im.ir_image.format() == im.base_image.format()  # RGB32: no conversion
    c = im.ir_image.pixelColor(5, 7)
    from csknet_studio.ui.display_maps import thermal_lut

    assert (c.red(), c.green(), c.blue()) == tuple(thermal_lut("ironbow")[im.ir8[7, 5]])
    assert im.base.shape[:2] == (24, 32)


def test_the_prefetcher_renders_ahead_in_the_direction_of_travel(seq, qtbot):
    pf = FramePrefetcher()
    style = DisplayStyle(ir_levels=(1000.0, 3000.0))
    try:
        pf.ahead(seq, 4, -1, style)  # scrubbing backwards: 3, 2, 1
        assert sorted(pf._jobs) == [1, 2, 3]
        _wait(pf._jobs, 3, qtbot)
        got = pf.take(seq, 3, style)
        np.testing.assert_array_equal(got.ir8, render_frame(seq[3], style).ir8)
        _wait(pf._jobs, 2, qtbot)
        assert pf.take(seq, 2, DisplayStyle(palette="white-hot")) is None  # another style: stale
        assert pf.take(seq, 1, style) is None  # the style change dropped the rest
    finally:
        pf.shutdown()


def test_frames_just_passed_stay_rendered_within_a_bound(qtbot):
    from csknet_studio.ui.display_prep import KEEP_RENDERED

    rng = np.random.default_rng(4)
    n = 3 * KEEP_RENDERED
    long_seq = ArraySequence(rng.integers(0, 255, (n, 16, 16, 3), np.uint8), rng.integers(0, 255, (n, 16, 16), np.uint8),
                             names=[f"f{i}" for i in range(n)])
    pf = FramePrefetcher()
    style = DisplayStyle()
    try:
        for i in range(n - 4):  # a slider dragged forward, each frame's rendering ready before it is shown
            pf.ahead(long_seq, i, 1, style)
            qtbot.waitUntil(lambda i=i: all(f.done() for f in pf._jobs.values()), timeout=10000)
            if i:
                assert pf.take(long_seq, i + 1, style) is not None
        assert len(pf._jobs) <= KEEP_RENDERED + 3  # the kept ones and the ones ahead: no more
        assert pf.take(long_seq, n - 6, style) is not None  # dragged back: a frame just passed
    finally:
        pf.shutdown()


def test_scrubbing_swaps_images_rendered_off_the_gui_thread(main_window, qtbot, monkeypatch):
    win = main_window
    threads: list[str] = []
    real = image_views.render_frame
    monkeypatch.setattr(image_views, "render_frame", lambda *a: (threads.append(threading.current_thread().name),
                                                                  real(*a))[1])
    win.set_frame(1)
    _wait(win.views.prefetcher._jobs, 2, qtbot)
    threads.clear()
    win.set_frame(2)
    assert threads == []  # nothing rendered on the GUI thread: frame 2 was ready
    shown = win.views.ir_item.image
    np.testing.assert_array_equal(shown, real(win.current_frame, win.views.style).ir8)
    win.views.set_palette("white-hot")  # a style change renders the shown frame at once
    assert threads == ["MainThread"]


def test_the_app_hands_the_gil_to_the_gui_thread_quickly(qapp):
    import sys

    from csknet_studio.ui.app import GIL_SWITCH_INTERVAL_S, make_app

    make_app("dark")
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S) and GIL_SWITCH_INTERVAL_S <= 0.001
