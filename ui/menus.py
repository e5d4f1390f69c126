"""Menus, the toolbar and every keyboard shortcut of the main window, in one table-like place.

Each action carries its shortcut in its tooltip, and is registered in `win.actions_by_name` so the
F1 shortcuts sheet (ui/shortcuts.py) and tests can find it.
"""

from __future__ import annotations

from pathlib import Path

import PySide6
from PySide6 import QtCore, QtGui, QtWidgets

from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.modes import Mode
from csknet_studio.core.studio import PaintStart
from csknet_studio.core.version import __version__
from csknet_studio.ui.legend import class_key
from csknet_studio.ui.model_loading import load_model_into
from csknet_studio.ui.theme import apply_theme

_SP = QtWidgets.QStyle.StandardPixmap
_ICON_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"


def _icon(win, std=None, name: str | None = None) -> QtGui.QIcon:
    if name is not None and (_ICON_DIR / f"{name}.svg").is_file():
        return QtGui.QIcon(str(_ICON_DIR / f"{name}.svg"))
    return win.style().standardIcon(std) if std is not None else QtGui.QIcon()


# One keyboard zoom step: the shown width shrinks or grows by this factor.
ZOOM_STEP = 1.25

def _action(win, name: str, text: str, slot, shortcuts=(), tip: str = "", icon=None,
            checkable: bool = False) -> QtGui.QAction:
    act = QtGui.QAction(text, win)
    if shortcuts:
        act.setShortcuts([QtGui.QKeySequence(s) for s in shortcuts])
    keys = ", ".join(QtGui.QKeySequence(s).toString(QtGui.QKeySequence.SequenceFormat.NativeText)
                     for s in shortcuts)
    act.setToolTip(f"{tip or text}" + (f" ({keys})" if keys else ""))
    act.setStatusTip(tip or text)
    if icon is not None:
        act.setIcon(icon)
    act.setCheckable(checkable)
    if slot is not None:
        (act.toggled if checkable else act.triggered).connect(slot)
    win.actions_by_name[name] = act
    win.addAction(act)
    return act


def _set_paint_start(win, on: bool) -> None:
    """What a stroke on a frame whose prediction is still coming paints over (kept in settings)."""
    win.state.paint_start = PaintStart.PREDICTION if on else PaintStart.EMPTY
    win.settings.setValue("edit/paint_start", win.state.paint_start.value)


def _open_dialog(win, kind: str) -> None:
    start = str(Path(win.files.recent_files()[0]).parent) if win.files.recent_files() else str(Path.home())
    if kind == "folder":
        path = QtWidgets.QFileDialog.getExistingDirectory(win, "Open sequence folder", start)
    else:
        filt = {"video": "Videos (*.mp4 *.avi *.mkv *.mov);;All files (*)",
                "hdf5": "HDF5 (*.h5 *.hdf5);;All files (*)",
                "recording": "Recordings (*.bag *.mcap *.db3 metadata.yaml);;All files (*)"}[kind]
        path, _ = QtWidgets.QFileDialog.getOpenFileName(win, f"Open {kind}", start, filt)
        if path and Path(path).name == "metadata.yaml":  # a ROS 2 bag is the folder holding it
            path = str(Path(path).parent)
    if path:
        win.open_sequence(path)


def _open_checkpoint(win) -> None:
    path, _ = QtWidgets.QFileDialog.getOpenFileName(win, "Open checkpoint", str(Path.home()),
                                                    "Checkpoints (*.pt *.pth);;All files (*)")
    if path:
        load_model_into(win, path)


def build_menus(win) -> None:
    """The menu bar and the main toolbar, menu by menu (panels add theirs later)."""
    mb = win.menuBar()
    for name in ("File", "Edit", "View", "Model", "Tools", "Help"):
        win.menus[name] = mb.addMenu(name if name != "Tools" else "&Tools")
    tb = win.addToolBar("Main")
    tb.setObjectName("toolbar_main")
    tb.setMovable(False)
    tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    _file_menu(win, tb)
    _edit_menu(win)
    tb.addSeparator()  # undo, redo and accept early: on a narrow screen the toolbar's end folds away
    for name in ("undo", "redo", "accept"):
        tb.addAction(win.actions_by_name[name])
    _mode_actions(win, tb)
    _tool_actions(win, tb)
    _view_menu(win)


def _file_menu(win, tb: QtWidgets.QToolBar) -> None:
    f = win.menus["File"]
    f.addAction(_action(win, "open_folder", "Open folder…", lambda: _open_dialog(win, "folder"), ["Ctrl+O"],
                        "Open a sequence folder (paired EO/IR images)", _icon(win, _SP.SP_DirOpenIcon)))
    f.addAction(_action(win, "open_video", "Open video…", lambda: _open_dialog(win, "video"), [],
                        "Open a video sequence"))
    f.addAction(_action(win, "open_hdf5", "Open HDF5…", lambda: _open_dialog(win, "hdf5"), [],
                        "Open an HDF5 sequence"))
    f.addAction(_action(win, "open_recording", "Open recording…", lambda: _open_dialog(win, "recording"), [],
                        "Open a ROS 1 / ROS 2 bag or an MCAP file and pick its EO and IR image topics"))
    win.recent_menu = f.addMenu("Open recent")
    f.addAction(_action(win, "open_checkpoint", "Open checkpoint…", lambda: _open_checkpoint(win), [],
                        "Load model weights (.pt)"))
    f.addSeparator()
    f.addAction(_action(win, "save", "Save corrections", win.files.save_session, ["Ctrl+S"],
                        "Write corrections to the project now (they are autosaved after each edit)",
                        _icon(win, _SP.SP_DialogSaveButton)))
    f.addSeparator()
    f.addAction(_action(win, "quit", "Quit", win.close, ["Ctrl+Q"]))
    tb.addAction(win.actions_by_name["open_folder"])
    tb.addAction(win.actions_by_name["save"])
    fill_recent(win)


def _edit_menu(win) -> None:
    e = win.menus["Edit"]
    e.addAction(_action(win, "undo", "Undo", win.tools.undo, ["Ctrl+Z"], "Undo the last edit",
                        _icon(win, _SP.SP_ArrowBack, "undo")))
    e.addAction(_action(win, "redo", "Redo", win.tools.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "Redo",
                        _icon(win, _SP.SP_ArrowForward, "redo")))
    e.addSeparator()
    e.addAction(_action(win, "accept", "Accept prediction", win.tools.accept_prediction, ["A"],
                        "Keep the model's labels for this frame as its correction (on a propagated frame: its "
                        "propagated labels)",
                        _icon(win, _SP.SP_DialogApplyButton)))
    e.addAction(_action(win, "copy_prev", "Copy labels from previous frame", win.tools.copy_previous, ["C"],
                        "Replace this frame's labels with the previous frame's"))
    e.addSeparator()
    late = _action(win, "paint_start_prediction", "Late prediction fills unpainted pixels",
                   lambda on: _set_paint_start(win, on), (),
                   "Strokes made before a frame's prediction arrives start from unlabelled pixels; with "
                   "this on, the prediction then fills the pixels still unlabelled (one undoable step)",
                   checkable=True)
    late.setChecked(win.settings.value("edit/paint_start", "empty") == "prediction")
    _set_paint_start(win, late.isChecked())
    e.addAction(late)


def _mode_actions(win, tb: QtWidgets.QToolBar) -> None:
    """1 / 2 / 3: EO + IR, IR only, EO only (Model menu and toolbar)."""
    modes = QtGui.QActionGroup(win)
    tb.addSeparator()
    for key, mode in zip(("1", "2", "3"), (Mode.BOTH, Mode.IR, Mode.EO), strict=True):
        act = _action(win, f"mode_{mode.value}", mode.label,
                      lambda on, m=mode: on and win.set_mode(m), [key],
                      f"Segment with {mode.label}", checkable=True)
        modes.addAction(act)
        win.menus["Model"].addAction(act)
        tb.addAction(act)
    win.actions_by_name["mode_both"].setChecked(True)
    tb.addSeparator()
    win.menus["Model"].addSeparator()
    mirror = _action(win, "mirror", "Average with the mirrored frame", lambda on: _set_mirror(win, on), (),
                     "Each prediction is the mean of the frame's and its left-right mirror's: about 1 point "
                     "of mIoU more, at twice the time a frame", checkable=True)
    mirror.setChecked(win.settings.value("model/mirror", False, type=bool))
    _set_mirror(win, mirror.isChecked())
    win.menus["Model"].addAction(mirror)


def _set_mirror(win, on: bool) -> None:
    win.settings.setValue("model/mirror", bool(on))
    win.worker.set_mirror(on)


_TOOL_ACTIONS = (
    ("pan", "Pan / zoom", "V", "Navigate: drag pans, wheel zooms"),
    ("brush", "Brush", "B", "Paint the picked class ([ and ] change the size)"),
    ("eraser", "Eraser", "E", "Erase to unlabelled"),
    ("fill", "Flood fill", "F", "Fill the connected region under the click"),
    ("polygon", "Polygon", "G", "Click vertices, drag one to move it; double-click or Enter fills, Backspace removes the last vertex, "
     "Esc cancels"),
    ("take", "Take region", "W", "Click: take the model's region under the cursor with its predicted class; "
     "Shift+click: with the picked class"),
    ("snap", "Snap brush", "S", "Paint whole superpixels of EO + IR: the stroke stops at edges either modality sees"),
    ("box", "Box (GrabCut)", "R", "Drag a box around an object: GrabCut on EO + IR gives its foreground the "
     "picked class"),
)


def _tool_actions(win, tb: QtWidgets.QToolBar) -> None:
    """The Tools menu: painting tools, brush size, class picks, and the gestures' keys."""
    tools = QtGui.QActionGroup(win)
    for name, text, key, tip in _TOOL_ACTIONS:
        act = _action(win, f"tool_{name}", text, lambda on, n=name: on and win.tools.set_tool(n), [key], tip,
                      _icon(win, None, name), checkable=True)
        tools.addAction(act)
        win.menus["Tools"].addAction(act)
        tb.addAction(act)
    win.actions_by_name["tool_pan"].setChecked(True)
    win.menus["Tools"].addSeparator()
    win.menus["Tools"].addAction(_action(win, "brush_smaller", "Smaller brush", lambda: win.tools.grow(-1), ["["]))
    win.menus["Tools"].addAction(_action(win, "brush_bigger", "Bigger brush", lambda: win.tools.grow(1), ["]"]))
    pick = win.menus["Tools"].addMenu("Pick class")
    for i in range(10):  # Shift+id picks the class the legend lists with that id
        pick.addAction(_action(win, f"class_{i}", f"Pick class {i}", lambda _=False, c=i: win.tools.set_class(c),
                               [class_key(i)], f"Paint with class {i}"))
    pick.addAction(_action(win, "class_unlabelled", "Pick unlabelled (ignore)",
                           lambda _=False: win.tools.set_class(IGNORE_INDEX), [class_key(IGNORE_INDEX)],
                           "Paint, fill or outline pixels as unlabelled (255): training and scoring skip them"))
    _action(win, "finish_polygon", "Finish polygon", win.tools.finish_polygon, ["Return"])
    _action(win, "polygon_back", "Remove last vertex", win.tools.remove_last_vertex, ["Backspace"])
    win.menus["Tools"].addAction(_action(win, "fill_frame", "Set whole frame to class", win.tools.fill_frame,
                                         ["Shift+F"], "The whole frame becomes the picked class (undoable)"))
    _action(win, "cancel_tool", "Cancel", win.tools.cancel, ["Escape"])


def _view_menu(win) -> None:
    v = win.menus["View"]
    v.addAction(_action(win, "play", "Play / pause", win.timeline.toggle_play, ["Space"]))
    v.addAction(_action(win, "next", "Next frame", win.next_frame, ["Right"]))
    v.addAction(_action(win, "prev", "Previous frame", win.prev_frame, ["Left"]))
    v.addAction(_action(win, "first", "First frame", lambda: win.set_frame(0), ["Home"]))
    v.addAction(_action(win, "goto", "Go to frame…", win.timeline.focus_goto, ["Ctrl+G"],
                        "Type a frame number in the box beside the timeline"))
    v.addAction(_action(win, "last", "Last frame", lambda: win.state.sequence and win.set_frame(len(win.state.sequence) - 1),
                        ["End"]))
    v.addSeparator()
    v.addAction(_action(win, "toggle_source", "Prediction / corrected labels", win.state.toggle_source, ["P"],
                        "Show the raw prediction of the current mode or the labels you keep"))
    v.addAction(_action(win, "toggle_overlay", "Show labels", lambda on: win.views.label_item.setVisible(on), ["O"],
                        "Show or hide the label overlay", checkable=True))
    win.actions_by_name["toggle_overlay"].setChecked(True)
    v.addAction(_action(win, "zoom_in", "Zoom in", lambda: win.views.zoom_by(1 / ZOOM_STEP), ["Ctrl+=", "Ctrl++"],
                        "Zoom all views in about their centre"))
    v.addAction(_action(win, "zoom_out", "Zoom out", lambda: win.views.zoom_by(ZOOM_STEP), ["Ctrl+-"],
                        "Zoom all views out about their centre"))
    v.addAction(_action(win, "reset_zoom", "Reset zoom", win.views.reset_zoom, ["Ctrl+0"]))
    v.addAction(_action(win, "views_row", "Three views in a row",
                        lambda on: win.views.set_layout("row" if on else "focus"), [],
                        "EO, IR and overlay in one row (off: EO over IR beside a large overlay)", checkable=True))
    v.addSeparator()
    theme = v.addMenu("Theme")
    for t in ("dark", "light"):
        theme.addAction(_action(win, f"theme_{t}", t.capitalize(),
                                lambda _=False, t=t: _set_theme(win, t)))
    v.addSeparator()


def _set_theme(win, theme: str) -> None:
    apply_theme(QtWidgets.QApplication.instance(), theme)
    win.settings.setValue("theme", theme)


def finish_menus(win) -> None:
    """Once every panel has added its actions: Quit goes last in File, and Help gets About."""
    f, quit_act = win.menus["File"], win.actions_by_name["quit"]
    f.removeAction(quit_act)
    f.addSeparator()
    f.addAction(quit_act)
    h = win.menus["Help"]
    h.addSeparator()
    h.addAction(_action(win, "about", "About CSKNet Studio", lambda: show_about(win), [],
                        "Version, model and licences"))
    win.toolbar_fit = ToolbarFit(win.findChild(QtWidgets.QToolBar, "toolbar_main"))


class ToolbarFit(QtCore.QObject):
    """Names beside the icons while the toolbar has room for every button, icons alone (names in
    the tooltips) when it has not, so a laptop screen shows every tool instead of folding the last
    ones behind the extension button."""

    def __init__(self, tb: QtWidgets.QToolBar) -> None:
        super().__init__(tb)
        self.tb = tb
        self._wide = 0  # the width every button needs with its name beside its icon
        tb.installEventFilter(self)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802 (Qt name)
        if ev.type() == QtCore.QEvent.Type.Resize:
            self.fit()
        return False

    def fit(self) -> None:
        beside = QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        if self.tb.toolButtonStyle() == beside:
            self._wide = self.tb.sizeHint().width()
        style = beside if self.tb.width() >= self._wide else QtCore.Qt.ToolButtonStyle.ToolButtonIconOnly
        if style != self.tb.toolButtonStyle():
            self.tb.setToolButtonStyle(style)


def show_about(win) -> QtWidgets.QMessageBox:
    """A non-modal About box (modal boxes would stall the event loop and the tests)."""
    ck = win.checkpoint_path
    model = (f"model: {ck.name} ({ck})" if ck is not None else
             "model: untrained (no checkpoint loaded)" if win.worker.model is not None else "model: none loaded")
    text = (f"<b>CSKNet Studio</b> {__version__}<br><br>"
            "Labelling and analysis of paired visible (EO) and thermal (IR) image sequences with "
            "CSK-Net, a two-stream segmentation network (arXiv 2312.02240).<br><br>"
            f"{model}<br>"
            f"PySide6 {PySide6.__version__}, Qt {QtCore.qVersion()}<br><br>"
            "Licence: MIT. The bundled demo is synthetic and MIT too; datasets you open keep their own "
            "licences.")
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Information, "About CSKNet Studio", text,
                                QtWidgets.QMessageBox.StandardButton.Ok, win)
    box.setTextFormat(QtCore.Qt.TextFormat.RichText)
    box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
    win.keep_box(box)  # closed with the window, like its error boxes
    box.open()
    return box


def name_class_actions(win, scheme) -> None:
    """Give the Shift+id actions the scheme's class names (the F1 sheet lists them by name)."""
    for i in range(10):
        act = win.actions_by_name.get(f"class_{i}")
        if act is None:
            continue
        known = i < scheme.num_classes
        name = scheme.shown_name(i)
        act.setText(f"Pick {i} {name}")
        act.setToolTip(f"Paint with class {i} '{name}' ({class_key(i)})")
        act.setEnabled(known)
        act.setVisible(known)


def fill_recent(win) -> None:
    menu = win.recent_menu
    menu.clear()
    recent = win.files.recent_files()
    for p in recent:
        act = menu.addAction(p)
        act.triggered.connect(lambda _=False, p=p: win.open_sequence(p))
    menu.setEnabled(bool(recent))
