"""GUI latency: event-loop stalls while the model runs, and frame change -> updated display.

A 5 ms QTimer ticks in the GUI thread; a stall is how much later than 5 ms each tick comes. The
same measurement runs first with nothing going on (the plain baseline, same process), then in each
phase. Phases are functions in `PHASES` (name -> run(ctx)); add one to measure more (fine-tuning is
one). Targets on the 2-core reference machine: p99 stall <= 20 ms, max <= 50 ms.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_latency.py [--seconds 8] [--model csknet-r18] [--load 1]

`--load N` runs N busy processes (a pure-Python spin loop each, at normal priority) for the whole
run, the "one other busy process" of a shared workstation; they are killed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

TICK_MS = 5


@dataclass
class Ctx:
    app: QtWidgets.QApplication
    win: object
    seconds: float
    notes: dict[str, str] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)


class StallMeter:
    """Ticks every 5 ms (precise timer); records how late each tick is."""

    def __init__(self) -> None:
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.late: list[float] = []
        self._last = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last:
            self.late.append(max(0.0, (now - self._last) * 1000 - TICK_MS))
        self._last = now

    def start(self) -> None:
        self.late, self._last = [], 0.0
        self.timer.start()

    def stop(self) -> np.ndarray:
        self.timer.stop()
        return np.asarray(self.late, dtype=float)


def pump(app, until: Callable[[], bool], timeout_s: float) -> bool:
    """Run the real event loop (blocked in Qt, GIL released, like `app.exec()`) until `until()`
    holds or the timeout passes. A `processEvents()` busy loop would keep the GIL and starve the
    worker thread, which a real session never does."""
    if until():
        return True
    loop = QtCore.QEventLoop()
    check = QtCore.QTimer()
    check.timeout.connect(lambda: until() and loop.quit())
    check.start(5)
    QtCore.QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    check.stop()
    return until()


def spin(app, seconds: float) -> None:
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


# ---------------------------------------------------------------------- phases
class Slider:
    """A user dragging the timeline: one frame on every tick, back and forth between the ends (a
    jump from the last frame to the first is a jump, measured by "step + wait", not scrubbing)."""

    def __init__(self, win) -> None:
        self.win, self.step = win, 1

    def move(self) -> None:
        i, n = self.win.current_index, len(self.win.sequence)
        if not 0 <= i + self.step < n:
            self.step = -self.step
        self.win.set_frame(i + self.step)


def phase_idle(ctx: Ctx) -> None:
    """Baseline: the window shown, nothing running."""
    spin(ctx.app, min(3.0, ctx.seconds))


def phase_scrub(ctx: Ctx) -> None:
    """Move one frame every 40 ms (a user dragging the slider); inference never stops."""
    win = ctx.win
    changes: list[int] = []
    win.frame_changed.connect(changes.append)
    t = QtCore.QTimer()
    slider = Slider(win)  # held here: Qt keeps only a weak reference to a bound method's object
    t.timeout.connect(slider.move)
    t.start(40)
    c0 = win.worker.inference_count
    spin(ctx.app, ctx.seconds)
    t.stop()
    win.frame_changed.disconnect(changes.append)
    ctx.notes["scrub"] = (f"{len(changes)} frame changes in {ctx.seconds:.0f} s, "
                          f"{win.worker.inference_count - c0} forward passes (coalesced)")


def phase_step(ctx: Ctx) -> None:
    """Step to an unseen frame, wait for its segmentation: frame change -> overlay updated."""
    win = ctx.win
    got: list[float] = []
    win.prediction_ready.connect(lambda _p: got.append(time.perf_counter()))
    end = time.perf_counter() + ctx.seconds
    start = win.current_index + 7
    k = 0
    while time.perf_counter() < end or k < 3:
        got.clear()
        win.set_frame((start + 7 * k) % len(win.sequence))
        t0 = win.frame_shown_at
        if pump(ctx.app, lambda: bool(got), 60):
            ctx.latencies_ms.append((got[0] - t0) * 1000)
        spin(ctx.app, 0.3)  # a quick step-through: shorter than the 400 ms background dwell
        k += 1


def phase_paint(ctx: Ctx) -> None:
    """A long brush stroke through the real tool path, one mouse event every 5 ms."""
    win = ctx.win
    s, i = win.session, win.current_index
    h, w = win.current_frame.shape
    win.tools.set_tool("brush")
    per_event: list[float] = []
    pts = [(w * (0.1 + 0.8 * k / 400), h * (0.5 + 0.3 * np.sin(k / 30))) for k in range(400)]
    s.begin_stroke(i, 1, win.tools.radius, pts[0])
    for p in pts[1:]:
        t0 = time.perf_counter()
        s.extend_stroke(p)  # -> labels_changed -> dirty-rect copy + repaint request
        ctx.app.processEvents()  # the repaint itself
        per_event.append((time.perf_counter() - t0) * 1000)
        spin(ctx.app, 0.004)
    s.end_stroke()
    a = np.asarray(per_event)
    ctx.notes["paint"] = (f"{len(a)} mouse moves on {h}x{w}: handling + repaint p50 {np.percentile(a, 50):.2f} ms, "
                          f"p99 {np.percentile(a, 99):.2f} ms, max {a.max():.2f} ms")
    win.session.undo()


def _finetune(ctx: Ctx, scrub: bool) -> None:
    """Fine-tuning runs in its thread (started from the real panel) for `seconds`, then is
    cancelled; with `scrub`, the frame also changes every 40 ms so inference never stops either."""
    win = ctx.win
    panel = win.panels.finetune
    h, w = win.current_frame.shape
    if not win.session.corrected_frames():  # one corrected frame: a polygon over its lower half
        win.session.fill_polygon(win.current_index, [(0, h // 2), (w - 1, h // 2), (w - 1, h - 1), (0, h - 1)], 1)
    panel.steps_spin.setValue(100000)
    steps: list[float] = []
    panel.worker.progress.connect(lambda *_a: steps.append(time.perf_counter()))
    t = QtCore.QTimer()
    slider = Slider(win)  # held here: Qt keeps only a weak reference to a bound method's object
    t.timeout.connect(slider.move)
    c0 = win.worker.inference_count
    t0 = time.perf_counter()
    if not panel.start():
        raise RuntimeError("fine-tuning did not start")
    if scrub:
        t.start(40)
    spin(ctx.app, ctx.seconds)
    pump(ctx.app, lambda: len(steps) >= 3, 120)  # past the set-up (copy, mIoU before) into steady steps
    t.stop()
    done: list[int] = []
    panel.worker.cancelled.connect(lambda: done.append(1))
    panel.cancel()
    pump(ctx.app, lambda: bool(done) or not panel.worker.running, 120)
    per = np.diff(steps) if len(steps) > 1 else np.asarray([np.nan, np.nan])
    name = "finetune+scrub" if scrub else "finetune"
    ctx.notes[name] = (f"{len(steps)} fine-tuning steps in {time.perf_counter() - t0:.1f} s "
                       f"({np.median(per) if per.size else np.nan:.2f} s/step after the first, "
                       f"{panel.worker.num_threads} torch thread(s)), "
                       f"{win.worker.inference_count - c0} forward passes meanwhile; cancelled, weights unchanged")


def phase_finetune(ctx: Ctx) -> None:
    _finetune(ctx, scrub=False)


def phase_finetune_scrub(ctx: Ctx) -> None:
    _finetune(ctx, scrub=True)


PHASES: dict[str, Callable[[Ctx], None]] = {
    "idle (baseline)": phase_idle,
    "scrubbing": phase_scrub,
    "step + wait": phase_step,
    "painting": phase_paint,
    "fine-tuning": phase_finetune,
    "fine-tuning + scrubbing": phase_finetune_scrub,
}


@contextlib.contextmanager
def competing_load(n: int):
    """N busy processes competing for the cores while the phases run."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def build(model_name: str, seq_path: str | None):
    import torch

    from csknet_studio.core.data import open_sequence
    from csknet_studio.core.demo import ensure_default_demo
    from csknet_studio.core.model import create_model
    from csknet_studio.ui.app import DEFAULT_CHECKPOINT, make_app
    from csknet_studio.ui.main_window import MainWindow

    app = make_app("dark")
    tmp = tempfile.mkdtemp(prefix="gui_latency_")
    settings = QtCore.QSettings(os.path.join(tmp, "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, device="cpu")
    win.confirm_close = lambda: True
    win.resize(1500, 900)
    win.show()
    if model_name == "default" and DEFAULT_CHECKPOINT.is_file():
        from csknet_studio.core.checkpoint import load_checkpoint

        lc = load_checkpoint(DEFAULT_CHECKPOINT)
        win.set_model(lc.model, lc.scheme, torch.device("cpu"))
    else:
        win.set_model(create_model("csknet-r18" if model_name == "default" else model_name), None,
                      torch.device("cpu"))
    seq = open_sequence(seq_path or ensure_default_demo())
    got: list[int] = []
    win.prediction_ready.connect(lambda _p: got.append(1))
    win.set_sequence(seq, project_path=os.path.join(tmp, "project"))
    pump(app, lambda: bool(got), 120)
    spin(app, 2.0)  # let the background modes of frame 0 finish
    return app, win


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the timed phases")
    ap.add_argument("--model", default="default", help="'default' (bundled checkpoint or csknet-r18) or a registry name")
    ap.add_argument("--sequence", default=None, help="sequence to scrub (default: the demo, 480x640)")
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated phase names")
    ap.add_argument("--load", type=int, default=0, help="busy competing processes during the run")
    args = ap.parse_args(argv)
    with competing_load(args.load):
        return run(args)


def run(args: argparse.Namespace) -> int:
    app, win = build(args.model, args.sequence)
    h, w = win.current_frame.shape
    print(f"model on {win.worker.device}, torch threads in worker: {max(1, (os.cpu_count() or 2) - 1)}, "
          f"frames {h}x{w}, cpu cores {os.cpu_count()}, competing busy processes {args.load}, "
          f"load average {os.getloadavg()[0]:.1f}")
    ctx = Ctx(app, win, args.seconds)
    rows = []
    base_p99 = None
    for name in args.phases.split(","):
        meter = StallMeter()
        meter.start()
        PHASES[name](ctx)
        late = meter.stop()
        p50, p99, mx = np.percentile(late, 50), np.percentile(late, 99), late.max()
        base_p99 = p99 if base_p99 is None else base_p99
        rows.append((name, len(late), p50, p99, mx))
    print("\n| phase | ticks | p50 stall ms | p99 stall ms | max stall ms | p99 vs idle |")
    print("|---|---|---|---|---|---|")
    for name, n, p50, p99, mx in rows:
        ok = "ok" if p99 <= 20 and mx <= 50 else "OVER TARGET"
        print(f"| {name} | {n} | {p50:.1f} | {p99:.1f} | {mx:.1f} | {p99 / max(base_p99, 0.1):.1f}x ({ok}) |")
    if ctx.latencies_ms:
        a = np.asarray(ctx.latencies_ms)
        print(f"\nframe change -> segmented overlay shown ({len(a)} steps): p50 {np.percentile(a, 50):.0f} ms, "
              f"max {a.max():.0f} ms (one forward pass: {win.worker.last_ms or 0:.0f} ms)")
    for k, v in ctx.notes.items():
        print(f"{k}: {v}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
