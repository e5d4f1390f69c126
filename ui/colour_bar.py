"""The colour bar of radiometric IR: the palette over the °C span, labelled in °C."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.ui.display_maps import DEFAULT_SPAN, thermal_lut


class ColourBar(QtWidgets.QWidget):
    """The palette from the span's low end (bottom) to its high end (top), labelled in °C; a child
    of the IR view, shown while the frame on screen is radiometric."""

    BAR_W, BAR_H = 12, 96

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._lut = thermal_lut("inferno")
        self._span = DEFAULT_SPAN
        self._picture: QtGui.QPixmap | None = None  # drawn once per palette / span, then blitted
        self._fit_labels()
        self.setToolTip("IR colours in °C (the span is set beside the IR palette)")

    def set_lut(self, lut: np.ndarray) -> None:
        self._lut = lut
        self._picture = None
        self.update()

    def set_span(self, lo: float, hi: float) -> None:
        self._span = (float(lo), float(hi))
        self._picture = None
        self._fit_labels()
        self.update()

    def _fit_labels(self) -> None:
        """Wide enough for the longest label ("\u221215.5 °C" needs more than "40 °C")."""
        widest = max(self.fontMetrics().horizontalAdvance(t) for t in self.labels())
        self.setFixedSize(self.BAR_W + max(70, widest + 14), self.BAR_H + 16)

    def labels(self) -> list[str]:
        """The tick labels, top (hot) to bottom (cold); below zero with a true minus sign."""
        lo, hi = self._span
        return [f"{v:g} °C".replace("-", "\u2212") for v in (hi, (lo + hi) / 2, lo)]

    def _colour_at(self, k: int) -> QtGui.QColor:
        r, g, b = (int(v) for v in self._lut[k])
        return QtGui.QColor(r, g, b)

    def paintEvent(self, _ev: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt name)
        if self._picture is None or self._picture.size() != self.size():
            self._picture = QtGui.QPixmap(self.size())
            self._picture.fill(QtCore.Qt.GlobalColor.transparent)
            self._draw(QtGui.QPainter(self._picture))
        p = QtGui.QPainter(self)
        p.drawPixmap(0, 0, self._picture)
        p.end()

    def _draw(self, p: QtGui.QPainter) -> None:
        p.fillRect(self.rect(), QtGui.QColor(0, 0, 0, 140))
        x0, y0 = 4, 8
        grad = QtGui.QLinearGradient(0, y0 + self.BAR_H, 0, y0)
        for k in range(0, 256, 15):
            grad.setColorAt(k / 255.0, self._colour_at(k))
        grad.setColorAt(1.0, self._colour_at(255))
        p.fillRect(QtCore.QRect(x0, y0, self.BAR_W, self.BAR_H), grad)
        p.setFont(self.font())
        fm = p.fontMetrics()
        for k, text in enumerate(self.labels()):
            y = y0 + k * self.BAR_H // 2
            # The tick crosses the bar, in black or white against the bar's colour there: a mark
            # outside the bar, between it and the text, read as a minus sign ("- 10 °C").
            here = self._colour_at(255 - k * 255 // 2)
            p.setPen(QtGui.QColor("#000000" if here.lightness() > 128 else "#ffffff"))
            line_y = min(y, y0 + self.BAR_H - 1)
            p.drawLine(x0, line_y, x0 + self.BAR_W - 1, line_y)
            p.setPen(QtGui.QColor("#e6e6e6"))
            p.drawText(x0 + self.BAR_W + 5, y + fm.ascent() // 2 - 1, text)
        p.end()
