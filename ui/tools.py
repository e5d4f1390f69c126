"""Painting tools on the overlay view: brush, eraser, flood fill, polygon, the model-assisted take
region / snap brush / box, plus frame-level edits.

Every edit goes through the `AnnotationSession` (undo, autosave live there); the session announces
the changed rectangle, the Studio's state (`core/studio.py`) copies just that rectangle into the
overlay mask and the window repaints it, so a stroke on a 480x640 frame costs a few small numpy slices per mouse move.
Undo/redo never change the active tool.

The mouse handler sits on the overlay's view box, not on the label image: a frame whose labels have
not arrived yet shows no mask, and a stroke made then still paints (on all-unlabelled labels; the
prediction arriving later never overwrites a corrected frame). The snap brush's superpixels are
computed in `SuperpixelWorker`; a stroke released before they are ready waits for them.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import QObject, Qt, Signal

from csknet_studio.core.assist import SuperpixelCache
from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.errors import CSKNetError
from csknet_studio.core.studio import ROUND_TOOLS, TOOLS
from csknet_studio.ui.polygon_tool import PolygonEditor
from csknet_studio.ui.superpixel_worker import SuperpixelWorker


def _shift(ev) -> bool:
    mods = ev.modifiers() if hasattr(ev, "modifiers") else Qt.KeyboardModifier.NoModifier
    return bool(mods & Qt.KeyboardModifier.ShiftModifier)


class ToolController(QObject):
    tool_changed = Signal(str)
    class_changed = Signal(int)

    def __init__(self, win) -> None:
        super().__init__(win)
        self.win = win
        self.state = win.state  # tool, class and radius live there; this draws and routes the mouse
        self._stroking = False
        self._snap_points: list[tuple[float, float]] = []
        self._box_start: tuple[float, float] | None = None
        self._waiting: list[tuple] = []  # snap strokes released before their superpixels were ready
        self._asked: tuple | None = None  # superpixel request in flight
        self.superpixels = SuperpixelCache()
        self.superpixel_worker = SuperpixelWorker(self)
        self.superpixel_worker.ready.connect(self._on_superpixels)
        self.superpixel_worker.failed.connect(self._on_superpixels_failed)
        win.views.overlay_view.tool_handler = self._handle
        win.frame_changed.connect(lambda _i: self._want_superpixels())
        win.sequence_opened.connect(self._on_sequence_opened)
        self._cursor = QtWidgets.QGraphicsEllipseItem()
        self._cursor.setPen(pg.mkPen((255, 255, 255, 200), width=0))
        self._cursor.setZValue(50)
        self._cursor.setVisible(False)
        self._cursor.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        win.views.overlay_view.addItem(self._cursor, ignoreBounds=True)
        self.polygon = PolygonEditor(win.views.overlay_view)  # the vertices in progress, as draggable handles
        win.views.overlay_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._snap_item = pg.PlotDataItem(pen=pg.mkPen((255, 255, 255, 220), width=2))
        self._snap_item.setZValue(60)
        self._snap_item.setVisible(False)  # shown while a snapping stroke is drawn
        win.views.overlay_view.addItem(self._snap_item, ignoreBounds=True)
        self._box_item = QtWidgets.QGraphicsRectItem()
        self._box_item.setPen(pg.mkPen((255, 255, 0), width=2, style=Qt.PenStyle.DashLine))
        self._box_item.setZValue(60)
        self._box_item.setVisible(False)
        self._box_item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        win.views.overlay_view.addItem(self._box_item, ignoreBounds=True)
        self.state.events.tool_changed.connect(self._on_tool)
        self.state.events.class_changed.connect(self._on_class)
        self.state.events.radius_changed.connect(
            lambda r: self.win.show_status(f"brush radius {r:.0f} px"))

    # ------------------------------------------------------------------ settings (the state's)
    @property
    def tool(self) -> str:
        return self.state.tool

    @property
    def class_id(self) -> int:
        return self.state.class_id

    @property
    def radius(self) -> float:
        return self.state.radius

    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}")
        self.cancel()
        if not self.state.set_tool(name):
            self._on_tool(name)  # the same tool again: say so all the same

    def _on_tool(self, name: str) -> None:
        self._cursor.setVisible(name in ROUND_TOOLS)
        act = self.win.actions_by_name.get(f"tool_{name}")
        if act is not None and not act.isChecked():
            act.setChecked(True)
        self.win.show_status(f"tool: {name}" + (f", radius {self.radius:.0f}" if name in ROUND_TOOLS else ""))
        self.tool_changed.emit(name)
        self._want_superpixels()

    def set_class(self, class_id: int) -> None:
        """Pick the paint class: a class of the scheme, or 255 (unlabelled, ignored by training)."""
        valid = 0 <= class_id < self.state.scheme.num_classes or class_id == IGNORE_INDEX
        if valid and not self.state.set_class(class_id):
            self._on_class(self.state.class_id)  # the same class again: say so all the same

    def _on_class(self, class_id: int) -> None:
        self.win.legend.set_current(class_id)
        self.win.show_status(f"class: {class_id} {self.state.class_name(class_id)}")
        self.class_changed.emit(class_id)

    def grow(self, step: int) -> None:
        self.state.grow(step)

    def hover(self, x: int, y: int) -> None:
        r = self.radius
        self._cursor.setRect(QtCore.QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))

    # ------------------------------------------------------------------ mouse
    def _on_mouse_moved(self, scene_pos) -> None:
        if self.tool == "polygon" and self.polygon.points:  # highlight the vertex a press would grab
            self.polygon.hover(self.win.views.overlay_view.image_point(scene_pos))

    def _handle(self, ev) -> bool:
        """Mouse events on the overlay view; True when consumed (else the view pans/zooms)."""
        win = self.win
        if self.tool == "pan" or self.state.session is None or self.state.index < 0:
            return False
        if ev.button() != Qt.MouseButton.LeftButton:
            return False
        pt = win.views.overlay_view.image_point(ev.scenePos())
        ev.accept()
        self.state.set_source("labels")  # show what the tool changes, not the raw prediction
        try:
            if hasattr(ev, "isStart"):  # drag
                self._drag(ev, pt)
            else:
                self._click(ev, pt)
        except (CSKNetError, ValueError) as exc:
            win.show_error(str(exc))
        return True

    def _drag(self, ev, pt) -> None:
        if self.tool == "snap":
            self._drag_snap(ev, pt)
            return
        if self.tool == "box":
            self._drag_box(ev, pt)
            return
        if self.tool == "polygon":  # a drag from a vertex moves it; the view never pans under it
            self.polygon.drag(ev, self.win.views.overlay_view.image_point(ev.buttonDownScenePos()), pt)
            return
        s, i = self.state.session, self.state.index
        if self.tool not in ("brush", "eraser"):
            return
        if ev.isStart():
            start = self.win.views.overlay_view.image_point(ev.buttonDownScenePos())
            s.begin_stroke(i, self.state.stroke_class, self.radius, start)
            self._stroking = True
        if self._stroking:
            if not s.stroke_active:  # another edit ended it mid-drag: the rest goes on as a new step
                s.begin_stroke(i, self.state.stroke_class, self.radius, pt)
            s.extend_stroke(pt)
            self.hover(round(pt[0]), round(pt[1]))
        if ev.isFinish() and self._stroking:
            s.end_stroke()
            self._stroking = False

    def _click(self, ev, pt) -> None:
        s, i = self.state.session, self.state.index
        if self.tool in ("brush", "eraser"):
            s.paint_stroke(i, [pt], self.state.stroke_class, self.radius)
        elif self.tool == "fill":
            s.flood_fill(i, pt, self.class_id)
        elif self.tool == "take":
            self.take_region(pt, assign=_shift(ev))
        elif self.tool == "snap":
            self._apply_snap(i, [pt], self.radius, self.class_id)
        elif self.tool == "box":
            self.win.show_status("drag a box around the object")
        elif self.tool == "polygon":
            if ev.double() and len(self.polygon.points) >= 3:
                self.finish_polygon()
                return
            self.polygon.add(pt)

    def _drag_snap(self, ev, pt) -> None:
        if ev.isStart():
            self._snap_points = [self.win.views.overlay_view.image_point(ev.buttonDownScenePos())]
        if not self._snap_points:
            return
        self._snap_points.append(pt)
        self._snap_item.setVisible(True)
        self._snap_item.setData([p[0] + 0.5 for p in self._snap_points], [p[1] + 0.5 for p in self._snap_points])
        self.hover(round(pt[0]), round(pt[1]))
        if ev.isFinish():
            points, self._snap_points = self._snap_points, []
            self._hide_snap_line()
            self._apply_snap(self.state.index, points, self.radius, self.class_id)

    def _hide_snap_line(self) -> None:
        self._snap_item.setData([], [])
        self._snap_item.setVisible(False)

    def _drag_box(self, ev, pt) -> None:
        if ev.isStart():
            self._box_start = self.win.views.overlay_view.image_point(ev.buttonDownScenePos())
        if self._box_start is None:
            return
        (x0, y0), (x1, y1) = self._box_start, pt
        self._box_item.setRect(QtCore.QRectF(min(x0, x1) + 0.5, min(y0, y1) + 0.5, abs(x1 - x0), abs(y1 - y0)))
        self._box_item.setVisible(True)
        if ev.isFinish():
            start, self._box_start = self._box_start, None
            self._box_item.setVisible(False)
            self.grabcut_box(start, pt)

    # ------------------------------------------------------------------ assisted tools
    def take_region(self, pt: tuple[float, float], assign: bool = False) -> None:
        """Take the predicted region under `pt` into the labels; `assign`: give it the current class."""
        s, i = self.state.session, self.state.index
        if s.prediction(i) is None:
            self.win.show_status("no prediction for this frame yet: take region needs the model's labels")
            return
        rect = s.take_region(i, pt, self.class_id if assign else None)
        self.win.show_status("region taken" + (f" as class {self.class_id}" if assign else " with its predicted class")
                             if not rect.empty else "the region is already in the labels")

    def grabcut_box(self, corner0: tuple[float, float], corner1: tuple[float, float]) -> None:
        """GrabCut in the box on the EO + IR composite; the foreground gets the current class."""
        win = self.win
        f = self.state.frame
        if f is None or f.bad:
            return
        rect = self.state.session.grabcut_box(self.state.index, corner0, corner1, self.class_id, f.eo, f.ir,
                                       win.views.levels)
        win.show_status("no foreground found in the box" if rect.empty else f"box: foreground set to class {self.class_id}")

    def _apply_snap(self, frame: int, points, radius: float, class_id: int) -> None:
        seg = self.superpixels.get(frame)
        if seg is None:
            self._waiting.append((self.state.session, frame, list(points), float(radius), int(class_id)))
            self.win.show_status(f"computing superpixels for frame {frame + 1}: the stroke is applied when they are ready")
            self._want_superpixels()
            return
        self.state.session.fill_superpixels(frame, seg, points, radius, class_id)

    def _want_superpixels(self) -> None:
        """Ask for the superpixels a waiting stroke needs, else the shown frame's (snap tool only)."""
        win = self.win
        if self.state.session is None:
            return
        frame = next((w[1] for w in self._waiting if w[1] not in self.superpixels), None)
        if frame is None:
            if self.tool != "snap" or self.state.index < 0 or self.state.index in self.superpixels:
                return
            frame = self.state.index
        tag = (id(self.state.session), frame)
        if tag == self._asked:
            return
        pair = self.state.frame if frame == self.state.index else self.state.sequence[frame]
        if pair is None or pair.bad:
            return
        self._asked = tag
        self.superpixel_worker.request(tag, pair.eo, pair.ir, win.views.levels)

    def _on_superpixels(self, tag, segments) -> None:
        if tag == self._asked:
            self._asked = None
        session = self.state.session
        if session is None or tag[0] != id(session):
            return  # computed for a sequence that is no longer open
        frame = tag[1]
        self.superpixels.put(frame, segments)
        ready = [w for w in self._waiting if w[0] is session and w[1] == frame]
        self._waiting = [w for w in self._waiting if w not in ready]
        for _s, f, points, radius, class_id in ready:
            try:
                session.fill_superpixels(f, segments, points, radius, class_id)
            except (CSKNetError, ValueError) as exc:
                self.win.show_error(str(exc))
        if ready:
            self.win.show_status(f"snap stroke applied on frame {frame + 1}")
        self._want_superpixels()

    def _on_superpixels_failed(self, tag, message: str) -> None:
        if tag == self._asked:
            self._asked = None
        lost = [w for w in self._waiting if (id(w[0]), w[1]) == tag]
        self._waiting = [w for w in self._waiting if w not in lost]
        self.win.show_error(f"Could not compute superpixels for frame {tag[1] + 1}: {message}"
                            + (f"\n{len(lost)} snap stroke(s) were not applied." if lost else ""))

    def _on_sequence_opened(self, _seq) -> None:
        self.superpixels.clear()
        self._waiting.clear()
        self._asked = None

    def shutdown(self) -> None:
        self.superpixel_worker.shutdown()

    # ------------------------------------------------------------------ commands
    def finish_polygon(self) -> None:
        pts = self.polygon.take()
        if len(pts) >= 3 and self.state.session is not None:
            try:
                self.state.session.fill_polygon(self.state.index, pts, self.class_id)
            except (CSKNetError, ValueError) as exc:
                self.win.show_error(str(exc))

    def fill_frame(self) -> None:
        """Shift+F: the whole frame becomes the picked class, one undoable edit. Ground truth
        starts from a clean frame (class 0, or 255 to mark everything undecided) instead of the
        model's prediction."""
        win = self.win
        if self.state.session is None or self.state.index < 0:
            return
        h, w = self.state.session.frame_shape(self.state.index)
        try:
            self.state.session.fill_polygon(self.state.index, [(-1, -1), (w, -1), (w, h), (-1, h)], self.class_id)
        except (CSKNetError, ValueError) as exc:
            win.show_error(str(exc))
            return
        win.show_status(f"whole frame set to class {self.class_id}")

    def remove_last_vertex(self) -> None:
        """Backspace: take back the polygon's last click, so one misplaced vertex does not cost the
        whole outline."""
        self.polygon.pop()

    def finish_gesture(self) -> None:
        """End what the mouse is doing before the frame changes: a brush or snap stroke is kept on
        its frame, a polygon or box in progress is dropped."""
        if self._stroking and self.state.session is not None and self.state.session.stroke_active:
            self.state.session.end_stroke()
        self._stroking = False
        points, self._snap_points = self._snap_points, []
        if points and self.state.session is not None:
            try:
                self._apply_snap(self.state.index, points, self.radius, self.class_id)
            except (CSKNetError, ValueError) as exc:
                self.win.show_error(str(exc))
        self.cancel()

    def cancel(self) -> None:
        """Abandon a polygon, box or stroke in progress (Esc, frame change); released snap strokes
        waiting for their superpixels are kept."""
        if self.polygon.points:
            self.polygon.clear()
        if self._snap_points:
            self._snap_points = []
            self._hide_snap_line()
        self._box_start = None
        if self._box_item.isVisible():
            self._box_item.setVisible(False)
        if self._stroking and self.state.session is not None:
            self.state.session.cancel_stroke()
        self._stroking = False

    def undo(self) -> None:
        self._step(True)

    def redo(self) -> None:
        self._step(False)

    def _step(self, undo: bool) -> None:
        s = self.state.session
        if s is None:
            return
        self.cancel()
        res = s.undo() if undo else s.redo()
        if res is None:
            self.win.show_status("nothing to " + ("undo" if undo else "redo"))
            return
        frame, _rect = res
        if frame != self.state.index:
            self.win.set_frame(frame)  # show where the change happened
        self.win.show_status(("undone" if undo else "redone") + f" on frame {frame + 1}")

    def accept_prediction(self) -> None:
        self._frame_edit("accept_prediction", "prediction accepted")

    def copy_previous(self) -> None:
        self._frame_edit("copy_from_previous", "labels copied from the previous frame")

    def _frame_edit(self, method: str, done: str) -> None:
        s, i = self.state.session, self.state.index
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
