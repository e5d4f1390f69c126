"""Timeline: play/pause, step buttons, a slider and a strip colouring each frame by its state.

The strip shows at a glance which frames are corrected (green), propagated and waiting for review
(amber), predicted (blue), bad (red) or not seen yet (grey), like CVAT's job timeline. Frame changes go out as `frame_requested(int)`; the
main window decides what to show, so keys, the list and the slider share one path.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Signal

STATE_COLORS: dict[str, QtGui.QColor] = {
    "new": QtGui.QColor(90, 90, 90),
    "predicted": QtGui.QColor(60, 130, 220),
    "propagated": QtGui.QColor(235, 160, 40),
    "corrected": QtGui.QColor(70, 190, 90),
    "bad": QtGui.QColor(220, 60, 60),
}
STATE_TEXT = {"new": "not seen", "predicted": "predicted", "propagated": "propagated (review it)",
              "corrected": "corrected", "bad": "bad (unreadable)"}


class StateStrip(QtWidgets.QWidget):
    """One coloured tick per frame (binned when there are more frames than pixels)."""

    clicked = Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.states: list[str] = []
        self.current = -1
        self._cache: QtGui.QImage | None = None
        self.setFixedHeight(10)
        self.setToolTip("Frame states: green corrected, amber propagated (review), blue predicted, red bad, "
                        "grey not seen")

    def invalidate(self) -> None:
        """States changed: rebuild the cached strip image on the next paint."""
        self._cache = None
        self.update()

    def _render(self, w: int, h: int) -> QtGui.QImage:
        img = QtGui.QImage(max(1, w), max(1, h), QtGui.QImage.Format.Format_RGB32)
        img.fill(STATE_COLORS["new"])
        n = len(self.states)
        if n:
            p = QtGui.QPainter(img)
            rank = {"new": 0, "predicted": 1, "corrected": 2, "propagated": 3, "bad": 4}
            for px in range(w):
                a, b = px * n // w, max(px * n // w + 1, (px + 1) * n // w)
                s = max(self.states[a:b], key=lambda s: rank.get(s, 0))
                if s != "new":
                    p.setPen(STATE_COLORS.get(s, STATE_COLORS["new"]))
                    p.drawLine(px, 0, px, h)
            p.end()
        return img

    def paintEvent(self, _ev) -> None:  # noqa: N802
        w, h = self.width(), self.height()
        if self._cache is None or self._cache.size() != QtCore.QSize(w, h):
            self._cache = self._render(w, h)
        p = QtGui.QPainter(self)
        p.drawImage(0, 0, self._cache)
        n = len(self.states)
        if 0 <= self.current < n:
            x = int((self.current + 0.5) * w / n)
            p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 2))
            p.drawLine(x, 0, x, h)

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if self.states:
            self.clicked.emit(min(len(self.states) - 1, int(ev.position().x() * len(self.states) / self.width())))


class JumpSlider(QtWidgets.QSlider):
    """A slider whose groove, when clicked, jumps to the frame under the pointer (a plain QSlider
    steps a page at a time, 10 frames), and the handle then follows the drag."""

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt name)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton and self.maximum() > self.minimum():
            opt = QtWidgets.QStyleOptionSlider()
            self.initStyleOption(opt)
            cc, st = QtWidgets.QStyle.ComplexControl.CC_Slider, self.style()
            handle = st.subControlRect(cc, opt, QtWidgets.QStyle.SubControl.SC_SliderHandle, self)
            pos = ev.position().toPoint()
            if not handle.contains(pos):
                groove = st.subControlRect(cc, opt, QtWidgets.QStyle.SubControl.SC_SliderGroove, self)
                span = max(1, groove.width() - handle.width())
                x = pos.x() - groove.x() - handle.width() // 2
                self.setValue(QtWidgets.QStyle.sliderValueFromPosition(
                    self.minimum(), self.maximum(), min(max(x, 0), span), span, opt.upsideDown))
        super().mousePressEvent(ev)  # the handle is under the pointer now: a drag goes on from here


class Timeline(QtWidgets.QWidget):
    """Slider + play/pause + steps. Playing advances one frame per tick of a QTimer."""

    frame_requested = Signal(int)
    playing_changed = Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        st = self.style()
        sp = QtWidgets.QStyle.StandardPixmap
        self._n = 0
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self._tick)
        self.fps = 10.0
        # Asked before each playback step: False holds the frame until its labels are on screen,
        # so playing shows the predictions as they arrive instead of frames outrunning the model.
        self.ready: Callable[[], bool] | None = None

        def button(icon, tip: str) -> QtWidgets.QToolButton:
            b = QtWidgets.QToolButton(self)
            b.setIcon(st.standardIcon(icon))
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
            return b

        self.first_btn = button(sp.SP_MediaSkipBackward, "First frame (Home)")
        self.prev_btn = button(sp.SP_MediaSeekBackward, "Previous frame (Left)")
        self.play_btn = button(sp.SP_MediaPlay, "Play / pause (Space)")
        self.next_btn = button(sp.SP_MediaSeekForward, "Next frame (Right)")
        self.last_btn = button(sp.SP_MediaSkipForward, "Last frame (End)")
        self.slider = JumpSlider(QtCore.Qt.Orientation.Horizontal, self)
        self.slider.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Click to jump to a frame, drag to scrub; inference follows the newest frame")
        self.goto = QtWidgets.QSpinBox(self)
        self.goto.setKeyboardTracking(False)  # typing "33" goes to 33, not to 3 first
        self.goto.setAccelerated(True)
        self.goto.setToolTip("Go to frame (Ctrl+G): type its number and press Enter")
        self.goto.valueChanged.connect(lambda v: self.frame_requested.emit(v - 1) if self._n else None)
        self.goto.lineEdit().returnPressed.connect(self.goto.clearFocus)  # keys go back to the window
        self.strip = StateStrip(self)
        self.label = QtWidgets.QLabel("/ -", self)
        self.label.setMinimumWidth(40)
        self.label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)

        self.first_btn.clicked.connect(lambda: self.frame_requested.emit(0))
        self.last_btn.clicked.connect(lambda: self.frame_requested.emit(max(0, self._n - 1)))
        self.prev_btn.clicked.connect(lambda: self.step(-1))
        self.next_btn.clicked.connect(lambda: self.step(1))
        self.play_btn.clicked.connect(self.toggle_play)
        self.slider.valueChanged.connect(self._on_slider)
        self.strip.clicked.connect(self.frame_requested)

        col = QtWidgets.QVBoxLayout()
        col.setSpacing(1)
        col.addWidget(self.slider)
        col.addWidget(self.strip)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        for b in (self.first_btn, self.prev_btn, self.play_btn, self.next_btn, self.last_btn):
            lay.addWidget(b)
        lay.addLayout(col, 1)
        lay.addWidget(self.goto)
        lay.addWidget(self.label)
        self.set_count(0)

    # ------------------------------------------------------------------ API
    def set_count(self, n: int) -> None:
        self._n = n
        self.stop()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        with QtCore.QSignalBlocker(self.goto):
            self.goto.setRange(min(1, n), max(1, n))
            self.goto.setValue(min(1, n))
        self.strip.states = ["new"] * n
        self.strip.invalidate()
        for w in (self.slider, self.goto, self.play_btn, self.prev_btn, self.next_btn, self.first_btn,
                  self.last_btn):
            w.setEnabled(n > 0)

    def set_current(self, index: int, name: str = "") -> None:
        """Reflect the shown frame (does not emit frame_requested)."""
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self.strip.current = index
        self.strip.update()
        with QtCore.QSignalBlocker(self.goto):
            self.goto.setValue(index + 1)
        # The name goes to the tooltip (and the Frames list), leaving the slider room in a narrow window.
        self.label.setText(f"/ {self._n}")
        self.label.setToolTip(f"frame {index + 1} of {self._n}" + (f": {name}" if name else ""))

    def set_state(self, index: int, state: str) -> None:
        if 0 <= index < len(self.strip.states) and self.strip.states[index] != state:
            self.strip.states[index] = state
            self.strip.invalidate()

    def set_states(self, states: list[str]) -> None:
        self.strip.states = list(states)
        self.strip.invalidate()

    def focus_goto(self) -> None:
        """Put the cursor in the go-to-frame box, its number selected, ready for typing."""
        self.goto.setFocus(QtCore.Qt.FocusReason.ShortcutFocusReason)
        self.goto.selectAll()

    def step(self, delta: int) -> None:
        if self._n:
            self.frame_requested.emit(min(self._n - 1, max(0, self.slider.value() + delta)))

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def toggle_play(self) -> None:
        if self.playing:
            self.stop()
        elif self._n > 1:
            self._timer.start(int(1000 / self.fps))
            self.play_btn.setIcon(self.style().standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaPause))
            self.playing_changed.emit(True)

    def stop(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.playing_changed.emit(False)
        self.play_btn.setIcon(self.style().standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaPlay))

    def _tick(self) -> None:
        if self.ready is not None and not self.ready():
            return  # try again at the next tick
        nxt = self.slider.value() + 1
        if nxt >= self._n:
            self.stop()
            return
        self.frame_requested.emit(nxt)

    def _on_slider(self, value: int) -> None:
        self.frame_requested.emit(value)
