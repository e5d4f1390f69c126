"""Two modes of the current frame side by side, with the map of pixels where their labels differ.

Answers "what does the IR-only network lose (or gain) against EO+IR on this frame?". The widget
only displays: the labels come from the inference worker and the disagreement from
`core.uncertainty.disagreement`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.core.classes import ClassScheme
from csknet_studio.core.modes import ALL_MODES, Mode
from csknet_studio.core.uncertainty import Disagreement, disagreement
from csknet_studio.ui.image_views import ImageViewBox

# Disagreement LUT: 0 = agree (dark grey), 1 = disagree (bright magenta), so it reads in both themes.
_DIFF_LUT = np.array([[40, 40, 40, 255], [255, 0, 200, 255]], dtype=np.uint8)


def _image_item() -> pg.ImageItem:
    return pg.ImageItem(axisOrder="row-major")


class CompareView(QtWidgets.QWidget):
    """Left mode | right mode | disagreement, pan/zoom linked.

    `modes_changed(left, right)` asks the owner for the two modes of the current frame; the owner
    answers with `set_labels(mode, labels)` (both may arrive in any order, or come from cache).
    """

    modes_changed = QtCore.Signal(str, str)
    disagreement_changed = QtCore.Signal(float)  # fraction of pixels labelled in both that differ

    def __init__(self, scheme: ClassScheme, left: Mode = Mode.BOTH, right: Mode = Mode.IR,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._scheme = scheme
        self._labels: dict[Mode, np.ndarray] = {}
        self._stale = False  # the labels changed while the view was hidden: drawn when shown
        self._result: Disagreement | None = None
        self._shape: tuple[int, ...] | None = None

        self.left_combo = QtWidgets.QComboBox()
        self.right_combo = QtWidgets.QComboBox()
        for combo, mode in ((self.left_combo, left), (self.right_combo, right)):
            for m in ALL_MODES:
                combo.addItem(m.label, m.value)
            combo.setCurrentIndex(ALL_MODES.index(Mode(mode)))
            combo.setToolTip("Mode shown in this pane")
            combo.currentIndexChanged.connect(self._on_modes_changed)
        self.fraction_label = QtWidgets.QLabel("Disagreement: –")
        self.fraction_label.setToolTip("Share of the pixels labelled in both modes where the labels differ")

        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(self.left_combo)
        bar.addWidget(QtWidgets.QLabel("vs"))
        bar.addWidget(self.right_combo)
        bar.addStretch(1)
        bar.addWidget(self.fraction_label)

        self.graphics = pg.GraphicsLayoutWidget()
        self.left_item, self.right_item, self.diff_item = _image_item(), _image_item(), _image_item()
        self._titles: list[pg.LabelItem] = []
        views: list[pg.ViewBox] = []
        for col, item in enumerate((self.left_item, self.right_item, self.diff_item)):
            title = self.graphics.addLabel("", row=0, col=col)
            self._titles.append(title)
            vb = ImageViewBox()  # only "Reset zoom" on right-click
            self.graphics.addItem(vb, row=1, col=col)
            vb.addItem(item)
            if views:
                vb.setXLink(views[0])
                vb.setYLink(views[0])
            vb.sigRangeChangedManually.connect(self._on_user_zoom)
            views.append(vb)
        self.views = views
        self._user_zoomed = False
        for vb in views:
            vb.reset_action.triggered.disconnect()
            vb.reset_action.triggered.connect(self.fit)
        self.diff_item.setLookupTable(_DIFF_LUT)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(bar)
        layout.addWidget(self.graphics, 1)
        self._update_titles()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        """Tall enough to read the labels: a bottom dock opens at its widget's hint, and the
        graphics view's own hint gave three thumbnails some 50 px high."""
        return QtCore.QSize(900, 240)

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt name)
        return QtCore.QSize(300, 120)

    # --- state --------------------------------------------------------------------------------
    @property
    def left_mode(self) -> Mode:
        return Mode(self.left_combo.currentData())

    @property
    def right_mode(self) -> Mode:
        return Mode(self.right_combo.currentData())

    @property
    def result(self) -> Disagreement | None:
        """The disagreement of the two labels shown, None until both have arrived."""
        return self._result

    def set_scheme(self, scheme: ClassScheme) -> None:
        self._scheme = scheme
        self._redraw()

    def clear(self) -> None:
        """Forget the labels (new frame or new weights); the owner sends fresh ones."""
        self._labels.clear()
        self._redraw()

    def set_labels(self, mode: Mode | str, labels: np.ndarray) -> None:
        """Labels of the current frame for `mode`; ignored unless `mode` is one of the two shown."""
        mode = Mode(mode)
        if mode not in (self.left_mode, self.right_mode):
            return
        self._labels[mode] = np.ascontiguousarray(labels, dtype=np.uint8)
        self._redraw()

    def fit(self) -> None:
        """Frame the whole image in every pane (they are linked).

        The dock starts hidden, so a range set while it had no size is lost; fitting again when it
        is shown or resized (until the user zooms) puts the images on screen at once."""
        self._user_zoomed = False
        if self._shape is not None:
            h, w = self._shape[:2]
            self.views[0].setRange(QtCore.QRectF(0, 0, w, h), padding=0.0)

    def showEvent(self, ev: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt name)
        super().showEvent(ev)
        if self._stale:
            self._stale = False
            self._draw()
        if not self._user_zoomed:
            QtCore.QTimer.singleShot(0, self.fit)

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(ev)
        if not self._user_zoomed:
            QtCore.QTimer.singleShot(0, self.fit)

    # --- internals ----------------------------------------------------------------------------
    def _on_user_zoom(self, *_args) -> None:
        self._user_zoomed = True

    def _on_modes_changed(self) -> None:
        keep = {self.left_mode, self.right_mode}
        self._labels = {m: v for m, v in self._labels.items() if m in keep}
        self._update_titles()
        self._redraw()
        self.modes_changed.emit(self.left_mode.value, self.right_mode.value)

    def _update_titles(self) -> None:
        self._titles[0].setText(self.left_mode.label)
        self._titles[1].setText(self.right_mode.label)
        self._titles[2].setText("Disagreement")

    def _redraw(self) -> None:
        """Compare the two labels shown; draw them only while visible (hidden, drawing cost every
        frame change 0.5 ms of the GUI thread): a hidden view draws when it is shown."""
        a, b = self._labels.get(self.left_mode), self._labels.get(self.right_mode)
        self._result = None if a is None or b is None or a.shape != b.shape else \
            disagreement(a, b, ignore_index=self._scheme.ignore_index)
        self._stale = not self.isVisible()
        if not self._stale:
            self._draw()
        if self._result is not None:
            self.disagreement_changed.emit(self._result.fraction)

    def _draw(self) -> None:
        lut = self._scheme.lut((0, 0, 0, 255))
        for item, mode in ((self.left_item, self.left_mode), (self.right_item, self.right_mode)):
            labels = self._labels.get(mode)
            if labels is None:
                item.clear()
            else:
                item.setImage(labels, levels=(0, 255), lut=lut, autoLevels=False)
        shape = next((v.shape for v in self._labels.values()), None)
        if shape is not None and shape != self._shape:  # new frame size: frame it (views are linked)
            self._shape = shape
            self.fit()
        if self._result is None:
            self.diff_item.clear()
            self.fraction_label.setText("Disagreement: –")
            return
        self.diff_item.setImage(self._result.mask.astype(np.uint8), levels=(0, 1), lut=_DIFF_LUT,
                                autoLevels=False)
        self.fraction_label.setText(
            f"Disagreement: {100 * self._result.fraction:.1f} % ({self._result.pixels} px)")
