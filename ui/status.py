"""Status bar: device, milliseconds per inference, frame, and what lies under the cursor.

The cursor read-out gives the class under the pointer and both modalities' raw pixel values
(16-bit IR stays 16-bit), and the temperature in °C when the IR is radiometric: what a labeller
checks before trusting a thermal edge.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from csknet_studio.core.modes import Mode
from csknet_studio.ui.display_maps import format_celsius


class HeldLabel(QtWidgets.QLabel):
    """A label of fixed size, wide enough for the widest of the texts it is `hold`-ing. Qt lays the
    window out again whenever a label's text changes, unless the label's size is fixed: on every
    frame change that relayout and the repaint it caused cost the GUI thread 1.5 ms. A new font or
    style sizes it again."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self._texts: tuple[str, ...] = ()

    def hold(self, *texts: str) -> None:
        self._texts = texts
        m = self.contentsMargins()
        widest = max(self.fontMetrics().horizontalAdvance(t) for t in texts)
        self.setFixedSize(widest + m.left() + m.right() + 2 * self.margin() + 6, self.fontMetrics().height() + 4)

    def changeEvent(self, ev: QtCore.QEvent) -> None:  # noqa: N802 (Qt name)
        super().changeEvent(ev)
        if self._texts and ev.type() in (QtCore.QEvent.Type.FontChange, QtCore.QEvent.Type.StyleChange):
            self.hold(*self._texts)


class StatusBar(QtWidgets.QStatusBar):
    """Permanent read-outs on the right; transient messages on the left."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.cursor_label = QtWidgets.QLabel("")
        self.frame_label = HeldLabel("no sequence")
        self.ms_label = HeldLabel("-- ms")
        self.device_label = QtWidgets.QLabel("device: -")
        self.busy_label = HeldLabel("")
        self.cursor_label.setMinimumWidth(330)
        self.ms_label.hold("99999 ms")
        self.busy_label.hold("computing…")
        self._frames_held = -1
        self._hold_frame_label(0)
        tips = {
            self.cursor_label: "Pixel under the cursor: class, EO RGB, IR value and, for radiometric IR, °C",
            self.frame_label: "Frame shown and the mode it was segmented with",
            self.ms_label: "Time of the last forward pass",
            self.device_label: "Where the model runs",
            self.busy_label: "The inference worker is computing",
        }
        for w, tip in tips.items():
            w.setToolTip(tip)
            self.addPermanentWidget(w)
        self.messageChanged.connect(self.setToolTip)  # a message cut off at the read-outs reads whole on hover

    def set_device(self, device: str) -> None:
        self.device_label.setText(f"device: {device}")

    def set_ms(self, ms: float | None) -> None:
        self.ms_label.setText("-- ms" if ms is None else f"{ms:.0f} ms")

    def _hold_frame_label(self, count: int) -> None:
        if count != self._frames_held:
            self._frames_held = count
            self.frame_label.hold("no sequence", *(f"frame {count}/{count} [{m.label}]" for m in Mode))

    def set_frame(self, index: int, count: int, name: str = "", mode: str = "") -> None:
        if index < 0:
            self.frame_label.setText("no sequence")
            return
        self._hold_frame_label(count)
        self.frame_label.setText(f"frame {index + 1}/{count}" + (f" [{mode}]" if mode else ""))
        self.frame_label.setToolTip(name)

    def set_busy(self, busy: bool) -> None:
        self.busy_label.setText("computing…" if busy else "")

    def set_cursor(self, x: int, y: int, class_name: str | None, eo, ir, celsius: float | None = None) -> None:
        """eo: RGB triple or None; ir: scalar or None; celsius: the IR pixel in °C, None when not radiometric."""
        parts = [f"x {x} y {y}"]
        parts.append(f"class: {class_name}" if class_name is not None else "class: -")
        if eo is not None:
            parts.append("EO " + ",".join(str(int(v)) for v in eo))
        if ir is not None:
            v = float(ir)
            parts.append(f"IR {int(v)}" if v.is_integer() else f"IR {v:.2f}")
        if celsius is not None:
            parts.append(format_celsius(celsius))
        self.cursor_label.setText("  ".join(parts))

    def clear_cursor(self) -> None:
        self.cursor_label.setText("")
