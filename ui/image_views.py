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

from csknet_studio.core.edits import label_edges
from csknet_studio.core.frames import FramePair
from csknet_studio.ui.colour_bar import ColourBar
from csknet_studio.ui.display_maps import DEFAULT_SPAN, PALETTES, thermal_lut
from csknet_studio.ui.display_prep import DisplayStyle, FrameImages, FramePrefetcher, render_frame

__all__ = ["BASES", "PALETTES", "ImageViews", "thermal_lut"]

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

BASES = ("EO", "IR", "Blend", "Checker")


_PREMUL = QtGui.QImage.Format.Format_ARGB32_Premultiplied
_FAST_FORMATS = (QtGui.QImage.Format.Format_RGB32, _PREMUL)


class FastImageItem(pg.ImageItem):
    """An ImageItem that draws a QImage made ready elsewhere (`ui/display_prep.py`, possibly in
    another thread) when given one; otherwise its QImage is converted once per frame to a format
    the raster engine draws without a per-paint conversion (RGB888 / Indexed8 / Grayscale are
    converted on every paint)."""

    _prepared: QtGui.QImage | None = None

    def show_prepared(self, array: np.ndarray | None, qimage: QtGui.QImage | None) -> None:
        """Show `qimage` as the picture of `array` (kept as `image` for read-outs and bounds)."""
        if array is None or qimage is None:
            self._prepared = None
            self.clear()
            return
        self._prepared = qimage
        self.setImage(array, levels=None, autoLevels=False, lut=None)

    def render(self) -> None:
        if self._prepared is not None:
            self.qimage = self._prepared
            self._renderRequired = False
            self._unrenderable = False
            return
        super().render()
        q = self.qimage
        if q is not None and q.format() not in _FAST_FORMATS:
            self.qimage = q.convertToFormat(_PREMUL if q.hasAlphaChannel() else QtGui.QImage.Format.Format_RGB32)


class LabelImageItem(pg.ImageItem):
    """A class-id mask shown through a categorical RGBA LUT, with dirty-rectangle repaints.

    The item owns a premultiplied ARGB32 buffer that a QImage wraps: a brush stroke recolours only
    the touched rectangle of that buffer and asks Qt to repaint only that rectangle. In contour mode
    only the class boundaries are drawn, so the picture under the labels stays untouched."""

    def __init__(self) -> None:
        super().__init__()
        self._lut = np.zeros((256, 4), np.uint8)
        self._bgra = np.zeros((256, 4), np.uint8)  # premultiplied, QImage byte order (B, G, R, A)
        self._bgra32 = self._bgra.view(np.uint32)[:, 0]
        self._buf32: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self._buf: np.ndarray | None = None
        self._qimage: QtGui.QImage | None = None
        self.contours = False

    def set_contours(self, on: bool) -> None:
        """Draw class boundaries only (True) or filled regions (False)."""
        self.contours = bool(on)
        if self.mask is not None:
            self.repaint_rect(0, self.mask.shape[0], 0, self.mask.shape[1])

    def _colour(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """Recolour rows y0:y1, cols x0:x1 of the buffer from the mask."""
        m = self.mask
        if (y0, x0, y1, x1) == (0, 0, *m.shape):
            np.take(self._bgra32, m, out=self._buf32)
        else:
            self._buf32[y0:y1, x0:x1] = self._bgra32[m[y0:y1, x0:x1]]
        if self.contours:  # a boundary depends on the pixels around it: look one pixel further
            h, w = m.shape
            a0, a1, b0, b1 = max(0, y0 - 1), min(h, y1 + 1), max(0, x0 - 1), min(w, x1 + 1)
            edge = label_edges(m[a0:a1, b0:b1])[y0 - a0:y1 - a0, x0 - b0:x1 - b0]
            self._buf32[y0:y1, x0:x1][~edge] = 0

    def set_lut(self, lut: np.ndarray) -> None:
        self._lut = np.ascontiguousarray(lut, dtype=np.uint8)
        a = self._lut[:, 3:4].astype(np.uint16)
        rgb = (self._lut[:, :3].astype(np.uint16) * a // 255).astype(np.uint8)
        self._bgra = np.ascontiguousarray(np.concatenate([rgb[:, ::-1], self._lut[:, 3:4]], axis=1))
        self._bgra32 = self._bgra.view(np.uint32)[:, 0]  # one 4-byte gather per pixel
        if self.mask is not None:
            self._colour(0, self.mask.shape[0], 0, self.mask.shape[1])
            self.update()

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show `mask` (kept by reference: write into it, then call `repaint_rect`)."""
        if mask is None:
            self.mask = None
            self.clear()
            return
        self.mask = np.ascontiguousarray(mask, dtype=np.uint8)
        h, w = self.mask.shape
        if self._buf is None or self._buf.shape[:2] != (h, w):
            self._buf = np.zeros((h, w, 4), np.uint8)
            self._buf32 = self._buf.view(np.uint32)[..., 0]
            self._qimage = QtGui.QImage(self._buf.data, w, h, 4 * w, _PREMUL)
        self._colour(0, h, 0, w)
        self.setImage(self.mask, levels=None, autoLevels=False)

    def render(self) -> None:
        self.qimage = self._qimage
        self._renderRequired = False
        self._unrenderable = self._qimage is None

    def repaint_rect(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """The mask changed in rows y0:y1, cols x0:x1: recolour and repaint that area only."""
        if self.mask is None:
            return
        if self.contours:  # the boundary of the changed area moves with it: one pixel more each side
            h, w = self.mask.shape
            y0, y1, x0, x1 = max(0, y0 - 1), min(h, y1 + 1), max(0, x0 - 1), min(w, x1 + 1)
        self._colour(y0, y1, x0, x1)
        self.update(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))

    def rgba(self) -> np.ndarray:
        """(H, W, 4) RGBA premultiplied of what the item draws (tests)."""
        return self._buf[..., [2, 1, 0, 3]].copy()

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        ev.ignore()  # tools are served by the view box, whether or not a mask is shown

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        ev.ignore()


class ImageViewBox(pg.ViewBox):
    """A ViewBox for images: the active tool sees mouse events before pan/zoom does, and the context
    menu holds only "Reset zoom".

    The tool handler hangs on the view box, not on the label image: a frame whose labels have not
    arrived yet shows no mask (an ImageItem without an image has no area to hit), and a stroke made
    then must still paint rather than fall through to panning. pyqtgraph's own menu (axes, mouse
    mode, export) means nothing for a picture, so it is replaced."""

    def __init__(self, on_reset=None) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.setDefaultPadding(0.0)
        self.tool_handler = None  # set by a tool controller: handler(event) -> bool (True: consumed)
        self.context_menu = QtWidgets.QMenu()
        self.reset_action = self.context_menu.addAction("Reset zoom")
        self.reset_action.triggered.connect(on_reset if on_reset is not None else self.view_all)

    def view_all(self) -> None:
        self.autoRange(padding=0.0)

    def image_point(self, scene_pos: QtCore.QPointF) -> tuple[float, float]:
        """(x, y) of a scene position in the session's frame coordinates, where pixel (i, j) has its
        centre on (i, j); the view draws that pixel over [i, i+1), hence the half-pixel shift."""
        p = self.mapSceneToView(scene_pos)
        return float(p.x()) - 0.5, float(p.y()) - 0.5

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (Qt name)
        if axis is None and self.tool_handler is not None and self.tool_handler(ev):
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if self.tool_handler is not None and self.tool_handler(ev):
            return
        if ev.button() == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            self.context_menu.popup(ev.screenPos().toPoint())
            return
        super().mouseClickEvent(ev)


def _make_view(title: str, on_reset=None) -> tuple[pg.GraphicsView, ImageViewBox, QtWidgets.QLabel]:
    gv = pg.GraphicsView()
    # The view paints every pixel (an opaque background, then the images): without this Qt repainted
    # the splitter, the view strip and the window behind each view on every frame change.
    gv.viewport().setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)
    vb = ImageViewBox(on_reset)
    gv.setCentralItem(vb)
    label = QtWidgets.QLabel(title, gv)  # a child widget: costs nothing when the view repaints
    label.setStyleSheet("QLabel { background: rgba(0,0,0,140); color: #e6e6e6; padding: 1px 4px;"
                        " font-weight: bold; border: none; }")
    label.move(4, 4)
    label.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
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
        self._span = DEFAULT_SPAN  # °C span of radiometric IR (other IR keeps the fixed levels)
        self.prefetcher = FramePrefetcher()  # renders the next frames while the user scrubs

        self.eo_widget, self.eo_view, eo_t = _make_view("EO", self.reset_zoom)
        self.ir_widget, self.ir_view, ir_t = _make_view("IR", self.reset_zoom)
        self.overlay_widget, self.overlay_view, ov_t = _make_view("Overlay", self.reset_zoom)
        self._titles = (eo_t, ir_t, ov_t)
        self.colour_bar = ColourBar(self.ir_widget)
        self.colour_bar.move(4, 28)
        self.colour_bar.hide()
        self.eo_item = FastImageItem(axisOrder="row-major")
        self.ir_item = FastImageItem(axisOrder="row-major")
        self.base_item = FastImageItem(axisOrder="row-major")
        self.label_item = LabelImageItem()
        self.label_item.setZValue(10)
        self.eo_view.addItem(self.eo_item)
        self.ir_view.addItem(self.ir_item)
        self.overlay_view.addItem(self.base_item)
        self.overlay_view.addItem(self.label_item)
        self._syncing = False
        for vb in self.views:
            vb.sigRangeChangedManually.connect(lambda _m, vb=vb: self._sync_from(vb))
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
    def views(self) -> tuple[ImageViewBox, ImageViewBox, ImageViewBox]:
        return (self.eo_view, self.ir_view, self.overlay_view)

    @property
    def levels(self) -> dict[str, tuple[float, float]]:
        return dict(self._levels)

    def set_levels(self, levels: dict[str, tuple[float, float]]) -> None:
        """Fixed per sequence (from `Sequence.display_levels()`); never recomputed per frame."""
        self._levels = {k: (float(v[0]), float(v[1])) for k, v in levels.items()}
        self._rerender()

    def set_scheme_lut(self, lut: np.ndarray) -> None:
        self.label_item.set_lut(lut)

    def set_contours(self, on: bool) -> None:
        self.label_item.set_contours(on)

    def set_opacity(self, opacity: float) -> None:
        self.label_item.setOpacity(float(opacity))

    @property
    def opacity(self) -> float:
        return float(self.label_item.opacity())

    def set_palette(self, name: str) -> None:
        self._palette = name
        self.colour_bar.set_lut(thermal_lut(name))
        self._rerender()

    def set_span(self, lo: float, hi: float) -> None:
        """The °C span radiometric IR is shown through (coldest colour at lo, hottest at hi)."""
        self._span = (float(lo), float(hi))
        self.colour_bar.set_span(*self._span)
        if self._frame is not None and self._frame.ir is not None and self._frame.radiometry is not None:
            self._rerender()

    def celsius_at(self, x: int, y: int) -> float | None:
        """°C of the shown frame's IR at pixel (x, y), or None when it is not radiometric."""
        f = self._frame
        if f is None or f.ir is None or f.radiometry is None or f.bad:
            return None
        return float(f.radiometry.celsius(f.ir[y, x]))

    def set_base(self, base: str, blend: float | None = None) -> None:
        """What lies under the labels in the overlay: EO, IR, an EO/IR blend or a checkerboard."""
        if base not in BASES:
            raise ValueError(f"unknown overlay base {base!r}")
        self._base = base
        if blend is not None:
            self._blend = float(blend)
        self._titles[2].setText(f"Overlay ({base})")
        self._titles[2].adjustSize()
        self._rerender()

    # ------------------------------------------------------------------ frames
    @property
    def style(self) -> DisplayStyle:
        """What besides the frame decides the pictures (levels, palette, °C span, underlay)."""
        return DisplayStyle(self._levels["eo"], self._levels["ir"], self._palette, self._span,
                            self._base, self._blend)

    def show_frame(self, frame: FramePair, images: FrameImages | None = None) -> None:
        """Show `frame`, drawing `images` when they were rendered ahead (`FramePrefetcher`) with
        the current style; else render them here."""
        self._frame = frame
        first = self._shape != frame.shape
        self._shape = frame.shape
        self._apply(images if images is not None else render_frame(frame, self.style))
        if first:
            self.reset_zoom()

    def show_sequence_frame(self, sequence, index: int, frame: FramePair, step: int) -> None:
        """Show frame `index` of `sequence`, then render the next ones in the direction `step`."""
        style = self.style
        self.show_frame(frame, self.prefetcher.take(sequence, index, style))
        self.prefetcher.ahead(sequence, index, step, style)

    def _rerender(self) -> None:
        if self._frame is not None:
            self.prefetcher.clear()  # rendered in the old style
            self._apply(render_frame(self._frame, self.style))

    def _apply(self, im: FrameImages) -> None:
        self.eo_item.show_prepared(im.eo8, im.eo_image)
        self.ir_item.show_prepared(im.ir8, im.ir_image)
        self.base_item.show_prepared(im.base, im.base_image)
        self.colour_bar.setVisible(im.radiometric)

    def show_labels(self, mask: np.ndarray | None) -> None:
        self.label_item.set_mask(mask)

    def reset_zoom(self) -> None:
        if self._shape is not None:
            h, w = self._shape
            for vb in self.views:
                vb.setRange(QtCore.QRectF(0, 0, w, h), padding=0.0)

    def zoom_by(self, factor: float) -> None:
        """Keyboard zoom about the centre of the overlay (factor < 1 zooms in); the others follow."""
        if self._shape is None:
            return
        src = self.views[2]
        src.scaleBy((factor, factor))
        self._sync_from(src)

    def zoom_factor(self, vb: pg.ViewBox | None = None) -> float:
        """Shown size of `vb` (default: the overlay) over the frame's, the smaller of width and
        height (1 = the frame just fits, smaller = zoomed in)."""
        if self._shape is None:
            return 1.0
        h, w = self._shape
        (x0, x1), (y0, y1) = (vb or self.views[2]).viewRange()
        return min((x1 - x0) / w, (y1 - y0) / h)

    # ------------------------------------------------------------------ linked pan / zoom
    def _sync_from(self, src: pg.ViewBox) -> None:
        """Give every other view the same centre and zoom (relative to fit), whatever its size.

        pyqtgraph's XLink/YLink copy ranges, which mis-frames views of different shapes (the large
        overlay beside the small EO/IR column), so the link is made in image terms instead."""
        if self._syncing or self._shape is None:
            return
        h, w = self._shape
        (x0, x1), (y0, y1) = src.viewRange()
        f = self.zoom_factor(src)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self._syncing = True
        try:
            for vb in self.views:
                if vb is not src:
                    vb.setRange(QtCore.QRectF(cx - f * w / 2, cy - f * h / 2, f * w, f * h), padding=0.0)
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ mouse
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
