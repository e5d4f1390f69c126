"""View > Segment and score every frame: background progress to 100 %, labels in the session, Cancel."""

from __future__ import annotations

import numpy as np

from csknet_studio.core.edits import Origin
from csknet_studio.core.modes import Mode


def test_every_frame_gets_its_prediction_with_progress_to_100_percent(main_window, qtbot):
    win, hub = main_window, main_window.panels
    n = len(win.sequence)
    seen = []
    hub.scanner.progress.connect(lambda d, t: seen.append((d, t)))
    with qtbot.waitSignal(hub.scanner.finished, timeout=60000):
        hub.scan_action.setChecked(True)
        assert hub.scan_progress.isVisible()
    assert seen[-1] == (n, n) and all(t == n for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # it only goes up
    assert hub.scan_progress.percent == 100.0 and not hub.scan_progress.isVisible()
    assert not hub.scan_action.isChecked()
    assert win.session.origins() == [Origin.PREDICTED] * n
    for i in range(n):
        np.testing.assert_array_equal(win.session.prediction(i), win.worker.cached(i, Mode.BOTH).labels)
    assert win.timeline.strip.states == ["predicted"] * n


def test_cancel_stops_the_run(main_window, qtbot):
    win, hub = main_window, main_window.panels
    n = len(win.sequence)
    with qtbot.waitSignal(hub.scanner.cancelled, timeout=10000):
        hub.scan_action.setChecked(True)
        hub.scan_progress.cancel_button.click()
    assert not hub.scanner.running and not hub.scan_action.isChecked() and not hub.scan_progress.isVisible()
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=30000)
    scored = sum(hub.tracker.score(i, Mode.BOTH) is not None for i in range(n))
    assert scored <= 2  # the shown frame and at most the one in flight
    assert sum(o is Origin.PREDICTED for o in win.session.origins()) <= 2
