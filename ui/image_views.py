"""EO, IR and overlay views side by side (pyqtgraph), pan/zoom linked.

pyqtgraph's fast-display rules: row-major C-contiguous frames, `levels=` fixed per sequence (never
auto-levels per frame), colour maps as uint8 LUTs, and the label mask as a second `ImageItem`
with the scheme's categorical LUT and its own opacity. `LabelImageItem` keeps the mask array it
displays (an Indexed8 QImage wraps that memory), so a brush stroke writes the pixels in place and
repaints only the dirty rectangle.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Signal

from csknet_studio.core.frames import FramePair

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

PALETTES = ("grey", "inferno", "ironbow")
BASES = ("EO", "IR", "Blend", "Checker")

_IRONBOW = [(0.0, (0, 0, 0)), (0.15, (32, 0, 96)), (0.35, (145, 0, 160)), (0.55, (230, 60, 40)),
            (0.75, (255, 150, 0)), (0.9, (255, 225, 60)), (1.0, (255, 255, 255))]


def thermal_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 LUT for the IR channel."""
    x = np.linspace(0.0, 1.0, 256)
    if name == "grey":
        g = (x * 255).round().astype(np.uint8)
        return np.stack([g, g, g], axis=1)
    if name == "inferno":
        return pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)
    if name == "ironbow":
        pos = [p for p, _ in _IRONBOW]
        cols = np.array([c for _, c in _IRONBOW], dtype=float)
        return np.stack([np.interp(x, pos, cols[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)
    raise ValueError(f"unknown thermal palette {name!r}; known: {', '.join(PALETTES)}")


def to_display_u8(img: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Scale raw values into uint8 with fixed levels (for blends computed once per frame)."""
    lo, hi = float(levels[0]), float(levels[1])
    scale = 255.0 / max(hi - lo, 1e-6)
    out = (img.astype(np.float32) - lo) * scale
    return np.clip(out, 0, 255).astype(np.uint8)


class LabelImageItem(pg.ImageItem):
    """A class-id mask shown through a categorical RGBA LUT; supports dirty-rectangle repaints."""

    def __init__(self) -> None:
        super().__init__()
        self._lut = np.zeros((256, 4), np.uint8)
        self.mask: np.ndarray | None = None
        self.drag_handler = None  # set by the tool controller: handler(event) -> bool

    def set_lut(self, lut: np.ndarray) -> None:
        self._lut = np.ascontiguousarray(lut, dtype=np.uint8)
        self.setLookupTable(self._lut)

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show `mask` (kept by reference: in-place edits + `repaint_rect` show without a copy)."""
        if mask is None:
            self.mask = None
            self.clear()
            return
        self.mask = np.ascontiguousarray(mask, dtype=np.uint8)
        self.setImage(self.mask, levels=None, autoLevels=False, lut=self._lut)

    def repaint_rect(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """The mask changed in rows y0:y1, cols x0:x1: schedule a repaint of that area only."""
        if self.qimage is None:
            self._renderRequired = True
        self.update(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        if self.drag_handler is not None and self.drag_handler(ev):
            return
        ev.ignore()

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if self.drag_handler is not None and self.drag_handler(ev):
            return
        ev.ignore()


def _make_view(title: str) -> tuple[pg.GraphicsView, pg.ViewBox, pg.TextItem]:
    gv = pg.GraphicsView()
    vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
    vb.setDefaultPadding(0.0)
    gv.setCentralItem(vb)
    label = pg.TextItem(title, anchor=(0, 0), color=(230, 230, 230), fill=pg.mkBrush(0, 0, 0, 140))
    font = QtGui.QFont()
    font.setPointSize(9)
    font.setBold(True)
    label.setFont(font)
    label.setZValue(100)
    gv.setToolTip(f"{title} view: wheel zooms, drag pans (all views move together)")
    return gv, vb, label


class ImageViews(QtWidgets.QWidget):
    """Three linked views: EO, IR (thermal palette) and the overlay (base + label mask)."""

    hovered = Signal(int, int)  # pixel x, y under the cursor (any view); -1, -1 when outside

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._levels: dict[str, tuple[float, float]] = {"eo": (0.0, 255.0), "ir": (0.0, 255.0)}
        self._frame: FramePair | None = None
        self._palette = "inferno"
        self._base = "EO"
        self._blend = 0.5
        self._shape: tuple[int, int] | None = None

        self.eo_widget, self.eo_view, eo_t = _make_view("EO")
        self.ir_widget, self.ir_view, ir_t = _make_view("IR")
        self.overlay_widget, self.overlay_view, ov_t = _make_view("Overlay")
        self._titles = (eo_t, ir_t, ov_t)
        self.eo_item = pg.ImageItem(axisOrder="row-major")
        self.ir_item = pg.ImageItem(axisOrder="row-major")
        self.base_item = pg.ImageItem(axisOrder="row-major")
        self.label_item = LabelImageItem()
        self.label_item.setZValue(10)
        self.eo_view.addItem(self.eo_item)
        self.ir_view.addItem(self.ir_item)
        self.overlay_view.addItem(self.base_item)
        self.overlay_view.addItem(self.label_item)
        for vb, t in zip(self.views, self._titles, strict=True):
            vb.addItem(t, ignoreBounds=True)
            vb.sigRangeChanged.connect(self._place_titles)
        self._syncing = False
        for vb in self.views:
            vb.sigRangeChangedManually.connect(lambda _m, vb=vb: self._sync_from(vb))
        self.ir_item.setLookupTable(thermal_lut(self._palette))
        self.set_opacity(0.55)

        for w in (self.eo_widget, self.ir_widget, self.overlay_widget):
            w.setMinimumSize(160, 120)
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self._column = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self._column.setChildrenCollapsible(False)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.splitter)
        self.layout_name = ""
        self.set_layout("focus")
        for w, vb in zip((self.eo_widget, self.ir_widget, self.overlay_widget), self.views, strict=True):
            w.scene().sigMouseMoved.connect(lambda pos, vb=vb: self._on_mouse(vb, pos))

    def set_layout(self, name: str) -> None:
        """"focus": EO over IR in a column beside a large overlay; "row": three equal views."""
        if name not in ("focus", "row"):
            raise ValueError(f"unknown view layout {name!r}")
        if name == self.layout_name:
            return
        self.layout_name = name
        if name == "focus":
            self._column.addWidget(self.eo_widget)
            self._column.addWidget(self.ir_widget)
            self.splitter.addWidget(self._column)
            self.splitter.addWidget(self.overlay_widget)
            self._column.show()
            self.splitter.setStretchFactor(0, 1)
            self.splitter.setStretchFactor(1, 2)
            self.splitter.setSizes([1000, 2000])
        else:
            for w in (self.eo_widget, self.ir_widget, self.overlay_widget):
                self.splitter.addWidget(w)
            self._column.hide()
            self.splitter.setSizes([1000, 1000, 1000])
        QtCore.QTimer.singleShot(0, self.reset_zoom)

    # ------------------------------------------------------------------ state
    @property
    def views(self) -> tuple[pg.ViewBox, pg.ViewBox, pg.ViewBox]:
        return (self.eo_view, self.ir_view, self.overlay_view)

    @property
    def levels(self) -> dict[str, tuple[float, float]]:
        return dict(self._levels)

    def set_levels(self, levels: dict[str, tuple[float, float]]) -> None:
        """Fixed per sequence (from `Sequence.display_levels()`); never recomputed per frame."""
        self._levels = {k: (float(v[0]), float(v[1])) for k, v in levels.items()}
        if self._frame is not None:
            self.show_frame(self._frame)

    def set_scheme_lut(self, lut: np.ndarray) -> None:
        self.label_item.set_lut(lut)

    def set_opacity(self, opacity: float) -> None:
        self.label_item.setOpacity(float(opacity))

    @property
    def opacity(self) -> float:
        return float(self.label_item.opacity())

    def set_palette(self, name: str) -> None:
        self._palette = name
        self.ir_item.setLookupTable(thermal_lut(name))
        if self._frame is not None and self._base in ("IR", "Blend", "Checker"):
            self._show_base()

    def set_base(self, base: str, blend: float | None = None) -> None:
        """What lies under the labels in the overlay: EO, IR, an EO/IR blend or a checkerboard."""
        if base not in BASES:
            raise ValueError(f"unknown overlay base {base!r}")
        self._base = base
        if blend is not None:
            self._blend = float(blend)
        self._titles[2].setText(f"Overlay ({base})")
        if self._frame is not None:
            self._show_base()

    # ------------------------------------------------------------------ frames
    def show_frame(self, frame: FramePair) -> None:
        self._frame = frame
        first = self._shape != frame.shape
        self._shape = frame.shape
        if frame.eo is not None:
            self.eo_item.setImage(frame.eo, levels=self._levels["eo"], autoLevels=False)
        else:
            self.eo_item.clear()
        if frame.ir is not None:
            self.ir_item.setImage(frame.ir, levels=self._levels["ir"], autoLevels=False)
        else:
            self.ir_item.clear()
        self._show_base()
        if first:
            self.reset_zoom()

    def show_labels(self, mask: np.ndarray | None) -> None:
        self.label_item.set_mask(mask)

    def reset_zoom(self) -> None:
        if self._shape is not None:
            h, w = self._shape
            for vb in self.views:
                vb.setRange(QtCore.QRectF(0, 0, w, h), padding=0.0)
                self._place_titles(vb)

    def _ir_rgb(self, frame: FramePair) -> np.ndarray:
        return thermal_lut(self._palette)[to_display_u8(frame.ir, self._levels["ir"])]

    def _eo_rgb(self, frame: FramePair) -> np.ndarray:
        if frame.eo.dtype == np.uint8 and self._levels["eo"] == (0.0, 255.0):
            return frame.eo
        return to_display_u8(frame.eo, self._levels["eo"])

    def _show_base(self) -> None:
        f = self._frame
        base = self._base
        if f.eo is None and f.ir is None:
            self.base_item.clear()
            return
        if f.eo is None:
            base = "IR"
        elif f.ir is None:
            base = "EO"
        if base == "EO":
            self.base_item.setImage(f.eo, levels=self._levels["eo"], autoLevels=False, lut=None)
        elif base == "IR":
            self.base_item.setImage(f.ir, levels=self._levels["ir"], autoLevels=False,
                                    lut=thermal_lut(self._palette))
        else:
            eo, ir = self._eo_rgb(f), self._ir_rgb(f)
            if base == "Blend":
                a = self._blend
                img = (eo.astype(np.float32) * (1 - a) + ir.astype(np.float32) * a).astype(np.uint8)
            else:
                h, w = f.shape
                tile = max(16, min(h, w) // 8)
                yy, xx = np.indices((h, w))
                sel = ((yy // tile + xx // tile) % 2).astype(bool)
                img = np.where(sel[..., None], ir, eo)
            self.base_item.setImage(np.ascontiguousarray(img), levels=None, autoLevels=False, lut=None)

    # ------------------------------------------------------------------ linked pan / zoom
    def _sync_from(self, src: pg.ViewBox) -> None:
        """Give every other view the same centre and zoom (relative to fit), whatever its size.

        pyqtgraph's XLink/YLink copy ranges, which mis-frames views of different shapes (the large
        overlay beside the small EO/IR column), so the link is made in image terms instead."""
        if self._syncing or self._shape is None:
            return
        h, w = self._shape
        (x0, x1), (y0, y1) = src.viewRange()
        f = min((x1 - x0) / w, (y1 - y0) / h)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self._syncing = True
        try:
            for vb in self.views:
                if vb is not src:
                    vb.setRange(QtCore.QRectF(cx - f * w / 2, cy - f * h / 2, f * w, f * h), padding=0.0)
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ mouse
    def _place_titles(self, vb: pg.ViewBox, *_args) -> None:
        (x0, _x1), (y0, _y1) = vb.viewRange()
        for v, t in zip(self.views, self._titles, strict=True):
            if v is vb:
                t.setPos(x0, y0)

    def _on_mouse(self, vb: pg.ViewBox, scene_pos: QtCore.QPointF) -> None:
        if self._shape is None or not vb.sceneBoundingRect().contains(scene_pos):
            self.hovered.emit(-1, -1)
            return
        p = vb.mapSceneToView(scene_pos)
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        h, w = self._shape
        if 0 <= x < w and 0 <= y < h:
            self.hovered.emit(x, y)
        else:
            self.hovered.emit(-1, -1)

    def overlay_image(self) -> QtGui.QImage:
        """The overlay view rendered as an image (tests compare these across modes)."""
        return self.overlay_widget.grab().toImage()
