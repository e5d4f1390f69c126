"""Painting tools on the overlay view: brush, eraser, flood fill, polygon, plus frame-level edits.

Every edit goes through the `AnnotationSession` (undo, autosave live there); the session announces
the changed rectangle and the main window copies just that rectangle into the displayed mask and
repaints it, so a stroke on a 480x640 frame costs a few small numpy slices per mouse move.
Undo/redo never change the active tool.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import QObject, Qt, Signal

from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.errors import CSKNetError

TOOLS = ("pan", "brush", "eraser", "fill", "polygon")


class ToolController(QObject):
    tool_changed = Signal(str)
    class_changed = Signal(int)

    def __init__(self, win) -> None:
        super().__init__(win)
        self.win = win
        self.tool = "pan"
        self.radius = 6.0
        self.class_id = 1
        self._polygon: list[tuple[float, float]] = []
        self._stroking = False
        item = win.views.label_item
        item.drag_handler = self._handle
        self._cursor = QtWidgets.QGraphicsEllipseItem()
        self._cursor.setPen(pg.mkPen((255, 255, 255, 200), width=0))
        self._cursor.setZValue(50)
        self._cursor.setVisible(False)
        self._cursor.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        win.views.overlay_view.addItem(self._cursor, ignoreBounds=True)
        self._poly_item = pg.PlotDataItem(pen=pg.mkPen((255, 255, 0), width=2), symbol="o", symbolSize=5)
        self._poly_item.setZValue(60)
        win.views.overlay_view.addItem(self._poly_item, ignoreBounds=True)

    # ------------------------------------------------------------------ settings
    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}")
        self.cancel()
        self.tool = name
        self._cursor.setVisible(name in ("brush", "eraser"))
        act = self.win.actions_by_name.get(f"tool_{name}")
        if act is not None and not act.isChecked():
            act.setChecked(True)
        if name != "pan" and self.win.controls.source_name != "labels":
            self.win.controls.toggle_source()  # paint on what gets saved, not on the raw prediction
        self.win.show_status(f"tool: {name}" + (f", radius {self.radius:.0f}" if name in ("brush", "eraser") else ""))
        self.tool_changed.emit(name)

    def set_class(self, class_id: int) -> None:
        if 0 <= class_id < self.win.scheme.num_classes:
            self.class_id = int(class_id)
            self.win.legend.set_current(self.class_id)
            self.win.show_status(f"class: {self.class_id} {self.win.scheme.class_names[self.class_id]}")
            self.class_changed.emit(self.class_id)

    def grow(self, step: int) -> None:
        self.radius = float(min(100, max(1, self.radius + step * max(1, self.radius // 5))))
        self.win.show_status(f"brush radius {self.radius:.0f} px")

    def hover(self, x: int, y: int) -> None:
        r = self.radius
        self._cursor.setRect(QtCore.QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))

    # ------------------------------------------------------------------ mouse
    def _handle(self, ev) -> bool:
        """Mouse events on the label item; True when consumed (else the view pans/zooms)."""
        win = self.win
        if self.tool == "pan" or win.session is None or win.current_index < 0:
            return False
        if ev.button() != Qt.MouseButton.LeftButton:
            return False
        p = ev.pos()
        pt = (float(p.x()), float(p.y()))
        ev.accept()
        try:
            if hasattr(ev, "isStart"):  # drag
                self._drag(ev, pt)
            else:
                self._click(ev, pt)
        except (CSKNetError, ValueError) as exc:
            win.show_error(str(exc))
        return True

    def _stroke_class(self) -> int:
        return IGNORE_INDEX if self.tool == "eraser" else self.class_id

    def _drag(self, ev, pt) -> None:
        s, i = self.win.session, self.win.current_index
        if self.tool not in ("brush", "eraser"):
            return
        if ev.isStart():
            start = ev.buttonDownPos()
            s.begin_stroke(i, self._stroke_class(), self.radius, (float(start.x()), float(start.y())))
            self._stroking = True
        if self._stroking:
            s.extend_stroke(pt)
            self.hover(int(pt[0]), int(pt[1]))
        if ev.isFinish() and self._stroking:
            s.end_stroke()
            self._stroking = False

    def _click(self, ev, pt) -> None:
        s, i = self.win.session, self.win.current_index
        if self.tool in ("brush", "eraser"):
            s.paint_stroke(i, [pt], self._stroke_class(), self.radius)
        elif self.tool == "fill":
            s.flood_fill(i, pt, self.class_id)
        elif self.tool == "polygon":
            if ev.double() and len(self._polygon) >= 3:
                self.finish_polygon()
                return
            self._polygon.append(pt)
            self._draw_polygon()

    def _draw_polygon(self) -> None:
        pts = self._polygon
        if not pts:
            self._poly_item.setData([], [])
            return
        xs = [p[0] for p in pts] + ([pts[0][0]] if len(pts) > 2 else [])
        ys = [p[1] for p in pts] + ([pts[0][1]] if len(pts) > 2 else [])
        self._poly_item.setData(xs, ys)

    # ------------------------------------------------------------------ commands
    def finish_polygon(self) -> None:
        pts, self._polygon = self._polygon, []
        self._draw_polygon()
        if len(pts) >= 3 and self.win.session is not None:
            try:
                self.win.session.fill_polygon(self.win.current_index, pts, self.class_id)
            except (CSKNetError, ValueError) as exc:
                self.win.show_error(str(exc))

    def cancel(self) -> None:
        """Abandon a polygon or a stroke in progress (Esc, frame change)."""
        if self._polygon:
            self._polygon = []
            self._draw_polygon()
        if self._stroking and self.win.session is not None:
            self.win.session.cancel_stroke()
        self._stroking = False

    def undo(self) -> None:
        self._step(True)

    def redo(self) -> None:
        self._step(False)

    def _step(self, undo: bool) -> None:
        s = self.win.session
        if s is None:
            return
        self.cancel()
        res = s.undo() if undo else s.redo()
        if res is None:
            self.win.show_status("nothing to " + ("undo" if undo else "redo"))
            return
        frame, _rect = res
        if frame != self.win.current_index:
            self.win.set_frame(frame)  # show where the change happened
        self.win.show_status(("undone" if undo else "redone") + f" on frame {frame + 1}")

    def accept_prediction(self) -> None:
        self._frame_edit("accept_prediction", "prediction accepted")

    def copy_previous(self) -> None:
        self._frame_edit("copy_from_previous", "labels copied from the previous frame")

    def _frame_edit(self, method: str, done: str) -> None:
        s, i = self.win.session, self.win.current_index
        if s is None or i < 0:
            return
        self.cancel()
        try:
            getattr(s, method)(i)
        except (CSKNetError, ValueError) as exc:
            self.win.show_error(str(exc))
            return
        self.win.show_status(done)


__all__ = ["ToolController", "TOOLS"]
