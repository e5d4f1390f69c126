"""Model internals: GSU gate maps, exchanged channels, channel feature maps and uncertainty.

Shows what the fusion did on the frame on screen: how much of the EO decoder's features, the IR
decoder's and their sum the Gated Spectral Unit took at each pixel, which channels each exchange site swapped between the streams, a chosen
channel before and after its exchange, and the per-pixel entropy that guides correction. It only
displays numpy arrays from a `Prediction`; feature maps are computed in `FeatureWorker`'s thread.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.core.data.levels import apply_levels
from csknet_studio.ui.image_views import ImageViewBox

# Gate-map keys of a prediction: the GSU after the decoders has one gate per input (Fo, Fi, Fo + Fi);
# the older ensemble model has one two-input gate per encoder stage ("layer3", ...).
GATE_ORDER = ("eo", "ir", "sum")
GATE_LABELS = {"eo": "EO decoder", "ir": "IR decoder", "sum": "EO + IR sum"}
GATE_MEANING = {
    "eo": "how much of the EO decoder's features the fusion took, per pixel",
    "ir": "how much of the IR decoder's features the fusion took, per pixel",
    "sum": "how much of the EO + IR sum the fusion took, per pixel",
}
DIRECTIONS: tuple[str, ...] = ("ir->eo", "eo->ir")
# How a direction reads on screen: an arrow, so a wrapped line never breaks inside "ir->eo".
DIR_TEXT = {"ir->eo": "IR\u2192EO", "eo->ir": "EO\u2192IR"}
_DIR_STYLE = {"ir->eo": ("#ff7f0e", "t1", 0.18), "eo->ir": ("#1f9bff", "t", -0.18)}  # colour, symbol, y offset


def _image_item() -> pg.ImageItem:
    return pg.ImageItem(axisOrder="row-major")


def _to_display(img: np.ndarray | None, levels: tuple[float, float] | None) -> np.ndarray | None:
    """Grey uint8 background for blending (EO is turned to luminance), with the sequence's levels."""
    if img is None:
        return None
    g = apply_levels(img, levels if levels is not None else (float(img.min()), float(img.max())))
    return cv2.cvtColor(g, cv2.COLOR_RGB2GRAY) if g.ndim == 3 else g


class _Caption(QtWidgets.QLabel):
    """A wrapped caption (unwrapped, its text widened the whole dock) that never gets shorter:
    "No prediction yet." on every frame change, then three or four lines of figures, resized the
    maps above it each time, and pyqtgraph laid their colour-bar axes out again in Python."""

    def __init__(self, lines: int = 3) -> None:
        super().__init__()
        self.setWordWrap(True)
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self.setMinimumHeight(self.fontMetrics().lineSpacing() * lines + 4)

    def _grow(self) -> None:
        need = self.heightForWidth(self.width()) if self.width() > 0 else 0
        if need > self.minimumHeight():
            self.setMinimumHeight(need)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        super().setText(text)
        self._grow()

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self._grow()


class _HeatView(pg.GraphicsLayoutWidget):
    """A heat map over an optional grey background, with a fixed-range colour bar."""

    def __init__(self, cmap: str, levels: tuple[float, float] = (0.0, 1.0), label: str = "") -> None:
        super().__init__()
        self.view = ImageViewBox()  # only "Reset zoom" on right-click
        self.addItem(self.view, row=0, col=0)
        self.background = _image_item()
        self.heat = _image_item()
        self.view.addItem(self.background)
        self.view.addItem(self.heat)
        self.levels = levels
        self._shape: tuple[int, int] | None = None
        colours = pg.colormap.get(cmap)
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=colours, interactive=False, label=label, width=14)
        # The map keeps the bar's fixed levels and colours through its own LUT. Linked to the image
        # (`setImageItem`), the bar recomputed its axis ticks in Python on every new map, which
        # stalled the GUI thread while the user scrubbed.
        self.heat.setLookupTable(colours.getLookupTable(nPts=256))
        self.addItem(self.colorbar, row=0, col=1)

    def show_map(self, data: np.ndarray | None, shape: tuple[int, int] | None, background: np.ndarray | None,
                 opacity: float) -> None:
        """Stretch `data` over an image of `shape` (gate maps are at feature resolution)."""
        if data is None:
            self.heat.clear()
            self.background.clear()
            return
        h, w = shape if shape is not None else data.shape
        if background is not None:
            self.background.setImage(background, levels=(0, 255), autoLevels=False)
            self.background.setRect(QtCore.QRectF(0, 0, w, h))
            self.heat.setOpacity(opacity)
        else:
            self.background.clear()
            self.heat.setOpacity(1.0)
        self.heat.setImage(np.ascontiguousarray(data, dtype=np.float32), levels=self.levels, autoLevels=False)
        self.heat.setRect(QtCore.QRectF(0, 0, w, h))
        if (h, w) != self._shape:  # a new frame size: frame it once, then leave the user's zoom alone
            self._shape = (h, w)
            self.view.autoRange(padding=0.0)


class InternalsPanel(QtWidgets.QWidget):
    """Tabs: Gates | Exchange | Uncertainty, fed by `set_prediction` and `set_frame`.

    Signals are requests to the owner: `channel_selected(layer, direction, channel)` asks for that
    channel's feature maps (answered with `set_feature_maps`), `next_uncertain_requested()` asks
    to move to the most uncertain frame.
    """

    channel_selected = QtCore.Signal(str, str, int)
    next_uncertain_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._pred = None
        self._frame_images: dict[str, np.ndarray | None] = {"eo": None, "ir": None}
        self._levels: dict[str, tuple[float, float]] = {}
        self._display_cache: dict[str, np.ndarray | None] = {}
        self._points: dict[str, np.ndarray] = {}
        self._feature_shape: tuple[int, ...] | None = None
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self._build_gates(), "Gates")
        self.tabs.addTab(self._build_exchange(), "Exchange")
        self.tabs.addTab(self._build_uncertainty(), "Uncertainty")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs)
        self._show_empty()

    # --- construction -------------------------------------------------------------------------
    def _build_gates(self) -> QtWidgets.QWidget:
        page = QtWidgets.QWidget()
        self.stage_combo = QtWidgets.QComboBox()
        self.stage_combo.setToolTip("Which gate of the Gated Spectral Unit is shown: the share of the EO "
                                    "decoder's features, the IR decoder's or their sum that the fusion took")
        self.blend_combo = QtWidgets.QComboBox()
        for text, key in (("No image", ""), ("Over EO", "eo"), ("Over IR", "ir")):
            self.blend_combo.addItem(text, key)
        self.blend_combo.setCurrentIndex(1)
        self.blend_combo.setToolTip("Blend the gate map over an image of the frame")
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(60)
        self.opacity_slider.setToolTip("Gate map opacity over the image")
        self.gate_info = _Caption()
        self.gate_view = _HeatView("viridis", label="gate (0 = not taken, 1 = taken whole)")
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Gate"))
        bar.addWidget(self.stage_combo)
        bar.addWidget(self.blend_combo)
        bar.addWidget(self.opacity_slider, 1)
        lay = QtWidgets.QVBoxLayout(page)
        lay.addLayout(bar)
        lay.addWidget(self.gate_view, 1)
        lay.addWidget(self.gate_info)
        self.stage_combo.currentIndexChanged.connect(self._draw_gate)
        self.blend_combo.currentIndexChanged.connect(self._draw_gate)
        self.opacity_slider.valueChanged.connect(self._draw_gate)
        return page

    def _build_exchange(self) -> QtWidgets.QWidget:
        page = QtWidgets.QWidget()
        self.exchange_plot = pg.PlotWidget(background=None)  # the theme's background: a plot, not an image
        self.exchange_plot.setLabel("bottom", "channel index")
        self.exchange_plot.showGrid(x=True, alpha=0.2)
        self.exchange_plot.getViewBox().invertY(True)
        self.exchange_plot.addLegend(offset=(-10, 10))
        self.exchange_scatter: dict[str, pg.ScatterPlotItem] = {}
        for d in DIRECTIONS:
            colour, symbol, _ = _DIR_STYLE[d]
            sp = pg.ScatterPlotItem(size=7, pen=None, brush=pg.mkBrush(colour), symbol=symbol, name=DIR_TEXT[d],
                                    hoverable=True, tip=None)
            sp.sigClicked.connect(self._on_point_clicked)
            self.exchange_plot.addItem(sp)
            self.exchange_scatter[d] = sp
        self.exchange_info = _Caption()
        self.feature_title = QtWidgets.QLabel("Click a channel to see its feature map before and after exchange.")
        self.feature_title.setWordWrap(True)
        self.feature_views = pg.GraphicsLayoutWidget()
        self.feature_items: dict[str, pg.ImageItem] = {}
        first: pg.ViewBox | None = None
        for col, key in enumerate(("before", "after")):
            self.feature_views.addLabel(key, row=0, col=col)
            vb = ImageViewBox()
            self.feature_views.addItem(vb, row=1, col=col)
            item = _image_item()
            item.setColorMap(pg.colormap.get("CET-D1"))
            vb.addItem(item)
            if first is None:
                first = vb
            else:
                vb.setXLink(first)
                vb.setYLink(first)
            self.feature_items[key] = item
        lay = QtWidgets.QVBoxLayout(page)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.exchange_plot)
        bottom = QtWidgets.QWidget()
        bl = QtWidgets.QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.feature_title)
        bl.addWidget(self.feature_views, 1)
        split.addWidget(bottom)
        lay.addWidget(self.exchange_info)
        lay.addWidget(split, 1)
        return page

    def _build_uncertainty(self) -> QtWidgets.QWidget:
        page = QtWidgets.QWidget()
        self.entropy_view = _HeatView("inferno", label="entropy (normalised)")
        self.entropy_blend_combo = QtWidgets.QComboBox()
        for text, key in (("No image", ""), ("Over EO", "eo"), ("Over IR", "ir")):
            self.entropy_blend_combo.addItem(text, key)
        self.entropy_blend_combo.setToolTip("Blend the entropy map (60 %) over an image of the frame")
        self.entropy_blend_combo.currentIndexChanged.connect(self._draw_entropy)
        self.entropy_info = _Caption()
        self.next_button = QtWidgets.QPushButton("Next most uncertain frame")
        self.next_button.setToolTip("Go to the predicted frame with the highest mean entropy that is not "
                                    "corrected yet (U)")
        self.next_button.clicked.connect(self.next_uncertain_requested)
        self.next_button.setMinimumWidth(self.next_button.sizeHint().width() + 16)  # text off the edges
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.entropy_info, 1)
        row.addWidget(self.next_button)
        blend_row = QtWidgets.QHBoxLayout()
        blend_row.addWidget(QtWidgets.QLabel("Entropy"))
        blend_row.addWidget(self.entropy_blend_combo, 1)
        lay = QtWidgets.QVBoxLayout(page)
        lay.addLayout(blend_row)
        lay.addWidget(self.entropy_view, 1)
        lay.addLayout(row)
        return page

    # --- inputs -------------------------------------------------------------------------------
    @property
    def prediction(self):
        return self._pred

    def set_frame(self, eo: np.ndarray | None, ir: np.ndarray | None,
                  levels: dict[str, tuple[float, float]] | None = None) -> None:
        """Images the gate map can be blended over, with the sequence's fixed display levels."""
        self._frame_images = {"eo": eo, "ir": ir}
        self._levels = dict(levels or {})
        self._display_cache.clear()
        if self._pred is not None:  # with no prediction there is no map to blend them under
            self._draw_gate()
            self._draw_entropy()

    def set_prediction(self, pred) -> None:
        """Show a `core.predictor.Prediction` (None clears the panel)."""
        self._pred = pred
        if pred is None:
            self._show_empty()
            return
        self._empty = False
        stages = list(getattr(pred, "gate_maps", {}) or {})
        stages.sort(key=lambda k: (GATE_ORDER.index(k) if k in GATE_ORDER else len(GATE_ORDER), k))
        current = self.stage_combo.currentData()
        with QtCore.QSignalBlocker(self.stage_combo):
            self.stage_combo.clear()
            for key in stages:
                self.stage_combo.addItem(GATE_LABELS.get(key, key), key)
            if current in stages:
                self.stage_combo.setCurrentIndex(stages.index(current))
        self._draw_gate()
        self._draw_exchange()
        self._draw_entropy()

    def set_feature_maps(self, layer: str, direction: str, channel: int,
                         before: np.ndarray, after: np.ndarray) -> None:
        """Answer to `channel_selected`: one channel at an exchange site, before and after it."""
        lo = float(min(np.min(before), np.min(after)))
        hi = float(max(np.max(before), np.max(after)))
        m = max(abs(lo), abs(hi), 1e-6)  # symmetric, so 0 sits in the middle of the diverging map
        for key, data in (("before", before), ("after", after)):
            self.feature_items[key].setImage(np.ascontiguousarray(data, dtype=np.float32), levels=(-m, m),
                                             autoLevels=False)
        if before.shape != self._feature_shape:
            self._feature_shape = before.shape
            self.feature_items["before"].getViewBox().autoRange(padding=0.0)
        stream = direction.split("->")[1]
        self.feature_title.setText(
            f"{layer}, channel {channel} of the {stream.upper()} stream ({DIR_TEXT.get(direction, direction)}): before "
            f"[{float(np.min(before)):.2g}, {float(np.max(before)):.2g}] | after exchange "
            f"[{float(np.min(after)):.2g}, {float(np.max(after)):.2g}] (blue < 0 < red)")

    def show_feature_error(self, message: str) -> None:
        for item in self.feature_items.values():
            item.clear()
        self.feature_title.setText(f"Feature maps unavailable: {message}")

    # --- data the plots hold (read by tests and the owner) ------------------------------------
    def exchange_points(self, direction: str) -> np.ndarray:
        """(N, 2) [channel, layer row] points plotted for `direction`."""
        return self._points.get(direction, np.zeros((0, 2)))

    def exchange_layers(self) -> list[str]:
        return list(getattr(self, "_layers", []))

    # --- drawing ------------------------------------------------------------------------------
    def _show_empty(self) -> None:
        """No prediction: clear every view once (scrubbing past frames repeats this per frame)."""
        if getattr(self, "_empty", False):
            return
        self._empty = True
        self.gate_view.show_map(None, None, None, 1.0)
        self.entropy_view.show_map(None, None, None, 1.0)
        for sp in self.exchange_scatter.values():
            sp.setData([], [])
        self._points = {}
        self._layers = []
        self.gate_info.setText("No prediction yet.")
        self.exchange_info.setText("No prediction yet.")
        self.entropy_info.setText("No prediction yet.")

    def _background(self, key: str) -> np.ndarray | None:
        if key not in self._display_cache:
            self._display_cache[key] = _to_display(self._frame_images.get(key), self._levels.get(key))
        return self._display_cache[key]

    def _image_shape(self) -> tuple[int, int] | None:
        if self._pred is not None and getattr(self._pred, "labels", None) is not None:
            return tuple(self._pred.labels.shape[:2])
        return None

    def _draw_gate(self) -> None:
        gates = getattr(self._pred, "gate_maps", None) or {}
        stage = self.stage_combo.currentData()
        if stage not in gates:
            self.gate_view.show_map(None, None, None, 1.0)
            mode = getattr(self._pred, "mode", None)
            self.gate_info.setText("No gate maps: the GSU runs only when both streams do." if self._pred is not None
                                   and str(getattr(mode, "value", mode)) != "both" else
                                   "No gate maps in this prediction.")
            return
        gate = gates[stage]
        meaning = "gate (0 = not taken, 1 = taken whole)" if stage in GATE_ORDER else "gate (1 = EO, 0 = IR)"
        self.gate_view.colorbar.getAxis("left").setLabel(meaning)  # the ensemble model's stage gates: weight on EO
        key = self.blend_combo.currentData()
        bg = self._background(key) if key else None
        self.gate_view.show_map(gate, self._image_shape(), bg, self.opacity_slider.value() / 100)
        what = GATE_MEANING.get(stage, "share of EO in the fused feature; IR gets the rest")
        self.gate_info.setText(f"{GATE_LABELS.get(stage, stage)}: {gate.shape[1]}x{gate.shape[0]} gate, mean "
                               f"{float(gate.mean()):.2f}, spatial std {float(gate.std()):.2f} ({what})")

    def _draw_exchange(self) -> None:
        exchanged = getattr(self._pred, "exchanged", None) or {}
        self._layers = list(exchanged)
        self._points = {}
        counts = []
        for d in DIRECTIONS:
            xs, ys = [], []
            for row, layer in enumerate(self._layers):
                idx = np.asarray(exchanged[layer].get(d, np.zeros(0, np.int64)), dtype=np.int64)
                xs.append(idx)
                ys.append(np.full(idx.shape, row, dtype=np.float64))
            x = np.concatenate(xs) if xs else np.zeros(0, np.int64)
            y = np.concatenate(ys) if ys else np.zeros(0)
            self._points[d] = np.stack([x, y], axis=1) if x.size else np.zeros((0, 2))
            _, _, off = _DIR_STYLE[d]
            self.exchange_scatter[d].setData(x=x.astype(np.float64), y=y + off,
                                             data=[(self._layers[int(r)], d, int(c)) for c, r in zip(x, y, strict=True)])
            counts.append(f"{DIR_TEXT[d]}: {x.size}")
        axis = self.exchange_plot.getAxis("left")
        axis.setTicks([[(i, name) for i, name in enumerate(self._layers)]])
        if not self._layers:
            self.exchange_info.setText("No exchange sites ran (exchange needs both streams).")
            return
        per_layer = ", ".join(
            f"{name} {len(exchanged[name].get('ir->eo', ()))}/{len(exchanged[name].get('eo->ir', ()))}"
            for name in self._layers)
        self.exchange_info.setText(f"Exchanged channels ({', '.join(counts)}). Per site "
                                   f"{DIR_TEXT['ir->eo']} / {DIR_TEXT['eo->ir']}: {per_layer}")

    def _draw_entropy(self) -> None:
        ent = getattr(self._pred, "entropy", None)
        if ent is None:
            self.entropy_view.show_map(None, None, None, 1.0)
            self.entropy_info.setText("No entropy in this prediction.")
            return
        key = self.entropy_blend_combo.currentData()
        bg = self._background(key) if key else None
        self.entropy_view.show_map(ent, None, bg if bg is not None and bg.shape == ent.shape else None, 0.6)
        self.entropy_info.setText(f"Mean entropy {float(np.mean(ent)):.3f}; "
                                  f"{100 * float(np.mean(ent > 0.5)):.1f} % of pixels above 0.5")

    def _on_point_clicked(self, _item, points, _ev=None) -> None:
        if len(points) == 0:
            return
        data = points[0].data()
        if data is None:
            return
        layer, direction, channel = data
        self.feature_title.setText(f"Computing {layer}, channel {channel} ({DIR_TEXT.get(direction, direction)})…")
        self.channel_selected.emit(layer, direction, int(channel))
