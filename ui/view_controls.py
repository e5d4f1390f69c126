"""The strip above the views: overlay opacity, what lies under the labels, thermal palette and its
°C span (radiometric IR), and whether the overlay shows the model's prediction or the corrected labels.

View state only: nothing here touches labels (napari keeps view state apart from data).
"""

from __future__ import annotations

import contextlib

from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Signal

from csknet_studio.ui.display_maps import DEFAULT_SPAN, PALETTE_ALIASES, PALETTES
from csknet_studio.ui.flow_layout import FlowLayout
from csknet_studio.ui.image_views import BASES

SPAN_RANGE = (-273.0, 3000.0)  # °C a spin box accepts (FLIR cameras reach 2000 °C and more)
SPAN_OFF_TIP = ("The sequence's IR is not radiometric, so it keeps its fixed levels. View ▸ IR temperature "
                "scale… (or --ir-scale) says how its values read as °C")


class ViewControls(QtWidgets.QWidget):
    opacity_changed = Signal(float)
    base_changed = Signal(str, float)  # base, blend weight of IR
    palette_changed = Signal(str)
    source_changed = Signal(str)  # "labels" | "prediction"
    contours_changed = Signal(bool)
    span_changed = Signal(float, float)  # °C shown as the coldest / hottest colour (radiometric IR)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setMinimumWidth(90)
        self.opacity.setMaximumWidth(140)
        self.opacity.setToolTip("Label opacity in the overlay (O toggles labels on/off)")
        self.base = QtWidgets.QComboBox()
        self.base.addItems(list(BASES))
        self.base.setToolTip("Image under the labels: EO, IR, an EO/IR blend or a checkerboard "
                             "(Blend and Checker show whether the two modalities are registered)")
        self.blend = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.blend.setRange(0, 100)
        self.blend.setValue(50)
        self.blend.setMinimumWidth(70)
        self.blend.setMaximumWidth(100)
        self.blend.setToolTip("EO ↔ IR blend weight")
        self.blend.setEnabled(False)
        self.palette = QtWidgets.QComboBox()
        self.palette.addItems(list(PALETTES))
        self.palette.setCurrentText("inferno")
        self.palette.setToolTip("Thermal palette for IR (fixed levels per sequence, or the °C span)")
        self.span_lo, self.span_hi = self._span_box(DEFAULT_SPAN[0]), self._span_box(DEFAULT_SPAN[1])
        self.set_radiometric(False)
        self.source = QtWidgets.QComboBox()
        self.source.addItems(["Corrected labels", "Model prediction"])
        self.source.setToolTip("Overlay: the labels you keep (corrections, or the prediction where "
                               "a frame is untouched) or the raw prediction of the current mode (P)")
        self.contours = QtWidgets.QCheckBox("Contours")
        self.contours.setToolTip("Draw only the class boundaries, leaving the image under them visible")
        self.contours.toggled.connect(self.contours_changed)
        # A flow of small groups, not one row: on a narrow window the groups wrap onto a second row
        # instead of holding the window wide or hiding behind an extension button.
        flow = FlowLayout(self, spacing=10)
        flow.setContentsMargins(4, 2, 4, 2)
        for parts in (("Opacity", self.opacity), ("Under labels", self.base, self.blend), (self.contours,),
                      ("IR palette", self.palette, self.span_lo, "–", self.span_hi),
                      ("Overlay shows", self.source)):
            flow.addWidget(self._group(parts))
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        self.base.currentTextChanged.connect(self._emit_base)
        self.blend.valueChanged.connect(lambda _v: self._emit_base(self.base.currentText()))
        self.palette.currentTextChanged.connect(self.palette_changed)
        self.span_lo.valueChanged.connect(lambda _v: self._emit_span(self.span_lo))
        self.span_hi.valueChanged.connect(lambda _v: self._emit_span(self.span_hi))
        self.source.currentIndexChanged.connect(
            lambda i: self.source_changed.emit("prediction" if i == 1 else "labels"))

    def bind_settings(self, settings: QtCore.QSettings) -> None:
        """Restore underlay, blend, palette, opacity and contour mode from `settings`, and save each
        change there, so a relaunch looks as the user left it."""
        base = settings.value("view/base", self.base.currentText())
        palette = settings.value("view/palette", self.palette.currentText())
        palette = PALETTE_ALIASES.get(palette, palette)
        if base in BASES:
            self.base.setCurrentText(base)
        if palette in PALETTES:
            self.palette.setCurrentText(palette)
        for key, slider in (("view/opacity", self.opacity), ("view/blend", self.blend)):
            with contextlib.suppress(TypeError, ValueError):  # a hand-edited file: keep the default
                slider.setValue(int(settings.value(key, slider.value())))
        with contextlib.suppress(TypeError, ValueError):
            lo = float(settings.value("view/span_lo", self.span_lo.value()))
            hi = float(settings.value("view/span_hi", self.span_hi.value()))
            if lo < hi:
                self.set_span(lo, hi)
        self.contours.setChecked(str(settings.value("view/contours", "false")).lower() == "true")
        self.base.currentTextChanged.connect(lambda v: settings.setValue("view/base", v))
        self.palette.currentTextChanged.connect(lambda v: settings.setValue("view/palette", v))
        self.opacity.valueChanged.connect(lambda v: settings.setValue("view/opacity", v))
        self.blend.valueChanged.connect(lambda v: settings.setValue("view/blend", v))
        self.contours.toggled.connect(lambda on: settings.setValue("view/contours", "true" if on else "false"))
        self.span_changed.connect(lambda lo, hi: (settings.setValue("view/span_lo", lo),
                                                  settings.setValue("view/span_hi", hi)))

    @staticmethod
    def _group(parts: tuple) -> QtWidgets.QWidget:
        """A label (its tooltip the control's) and its controls, kept together when the strip wraps."""
        box = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for i, part in enumerate(parts):
            if isinstance(part, str):
                label = QtWidgets.QLabel(part)
                nxt = parts[i + 1] if i + 1 < len(parts) else None
                if isinstance(nxt, QtWidgets.QWidget):
                    label.setToolTip(nxt.toolTip())
                row.addWidget(label)
            else:
                row.addWidget(part)
        return box

    def _span_box(self, value: float) -> QtWidgets.QDoubleSpinBox:
        box = QtWidgets.QDoubleSpinBox()
        box.setRange(*SPAN_RANGE)
        box.setDecimals(1)
        box.setSingleStep(1.0)
        box.setSuffix(" °C")
        box.setKeyboardTracking(False)  # typing "35" redraws once, not at "3" then "35"
        box.setValue(value)
        return box

    @property
    def span(self) -> tuple[float, float]:
        return float(self.span_lo.value()), float(self.span_hi.value())

    def set_span(self, lo: float, hi: float) -> None:
        """Set both ends at once: one `span_changed`, never a moment with lo >= hi."""
        for box, v in ((self.span_lo, lo), (self.span_hi, hi)):
            box.blockSignals(True)
            box.setValue(v)
            box.blockSignals(False)
        self.span_changed.emit(*self.span)

    def set_radiometric(self, on: bool) -> None:
        """The °C span applies only to radiometric IR: the boxes are live for those sequences only."""
        for box, end in ((self.span_lo, "coldest"), (self.span_hi, "hottest")):
            box.setEnabled(on)
            box.setToolTip(f"°C shown as the palette's {end} colour, the same on every frame" if on
                           else SPAN_OFF_TIP)

    def _emit_span(self, moved: QtWidgets.QDoubleSpinBox) -> None:
        lo, hi = self.span
        if lo >= hi:  # the end the user moved pushes the other one along
            if moved is self.span_lo:
                self.set_span(lo, lo + 1.0)
            else:
                self.set_span(hi - 1.0, hi)
            return
        self.span_changed.emit(lo, hi)

    def _emit_base(self, base: str) -> None:
        self.blend.setEnabled(base == "Blend")
        self.base_changed.emit(base, self.blend.value() / 100.0)

    def show_source(self, source: str) -> None:
        """Follow the state's overlay source (no echo back through `source_changed`)."""
        with QtCore.QSignalBlocker(self.source):
            self.source.setCurrentIndex(1 if source == "prediction" else 0)


def fit_combos(root: QtWidgets.QWidget) -> None:
    """Every combo box under `root` as wide as its longest entry, popup included, so no entry is
    clipped ("Checker", "Corrected labels") whatever the theme's padding."""
    for combo in root.findChildren(QtWidgets.QComboBox):
        combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        view = combo.view()
        fm = view.fontMetrics()
        widest = max((fm.horizontalAdvance(combo.itemText(i)) for i in range(combo.count())), default=0)
        view.setMinimumWidth(widest + 40)  # item padding and a scroll bar
