"""The main window's file-side chores: recent files, the recording topic picker, drag and drop,
the save prompt and the first dock layout.

`WindowFiles` is owned by the window (`win.files`) and works through the window's public face:
`settings`, `session`, `docks`, `open_sequence`, `show_error`, `show_status`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Qt

import csknet_studio.ui.topic_dialog as topic_dialog  # the module: tests replace choose_topics
from csknet_studio.core.data.rosbag import is_recording, list_image_topics
from csknet_studio.core.errors import CSKNetError
from csknet_studio.core.project import PROJECT_SUFFIX, ProjectStore
from csknet_studio.ui.menus import fill_recent

MAX_RECENT = 8

LAYOUT_NAMES = {"mfnet": "MFNet", "mfnet-cmx": "MFNet (CMX folders)", "pst900": "PST900", "fmb": "FMB",
                "msrs": "MSRS", "folders": "paired EO/IR folders", "pair": "one EO/IR image pair",
                "video": "EO/IR video pair", "hdf5": "HDF5", "memory": "arrays in memory"}


def describe_layout(seq) -> str:
    """"MFNet layout" etc.: what the reader recognised, named as the README's table names it."""
    layout = str(getattr(seq, "layout", "") or "unknown")
    return f"{LAYOUT_NAMES.get(layout, layout)} layout"


def without_path(message: str, path: str | Path) -> str:
    """An error that starts with the path it is about, without that path (the caller names it)."""
    p = Path(path)
    for form in {str(path), str(p), str(p.expanduser()), str(p.expanduser().resolve())}:
        if message.startswith(form + ": "):
            return message[len(form) + 2:]
    return message


def project_sequence(path: Path) -> tuple[Path, Path | None]:
    """(sequence to open, project to open it with): a `<seq>.csknet` folder names its sequence."""
    if not (path.is_dir() and path.suffix == PROJECT_SUFFIX):
        return path, None
    store = ProjectStore(path)
    if not store.exists():
        return path, None  # a folder that merely ends in .csknet: try it as a sequence
    source = store.load().source
    if source is None:
        raise CSKNetError(f"{path}: this project names no sequence on disk (it was made from arrays in memory)")
    if not source.exists():
        raise CSKNetError(f"{path}: its sequence {source.resolve()} is missing (moved or deleted?)")
    return source.resolve(), path


class WindowFiles(QtCore.QObject):
    """Recent files, recording topics, drops, the save prompt and the dock layout of `win`."""

    def __init__(self, win: QtWidgets.QMainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.state = win.state  # what is shown and edited (read here, changed through its methods)
        win.setAcceptDrops(True)
        win.installEventFilter(self)  # drops on the window open what was dropped

    def recent_files(self) -> list[str]:
        v = self.win.settings.value("recent", []) or []
        return [v] if isinstance(v, str) else list(v)

    def add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        items = [path] + [p for p in self.recent_files() if p != path]
        self.win.settings.setValue("recent", items[:MAX_RECENT])
        fill_recent(self.win)

    def recording_topics(self, path: str | Path, topics: dict[str, str] | None = None) -> dict[str, str] | None:
        """open_sequence keywords naming a recording's EO and IR topics: `topics` when both are
        given, else what the user picks in the topic picker (last choice preselected); {} for a path
        that is not a recording, None when the user cancelled."""
        if not is_recording(path):
            return {}
        topics = dict(topics or {})
        if topics.get("eo_topic") and topics.get("ir_topic"):
            return topics
        key = "recording_topics/" + str(Path(path).resolve()).replace("/", "|")
        last = self.win.settings.value(key) or []
        eo = topics.get("eo_topic") or (last[0] if len(last) == 2 else None)
        ir = topics.get("ir_topic") or (last[1] if len(last) == 2 else None)
        found = list_image_topics(path)
        if len(found) < 2:
            return topics  # open_sequence says what is missing
        names = {t.name for t in found}
        picked = topic_dialog.choose_topics(self.win, str(path), found, eo if eo in names else None,
                                            ir if ir in names else None)
        if picked is None:
            return None
        self.win.settings.setValue(key, list(picked))
        return {"eo_topic": picked[0], "ir_topic": picked[1]}

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802 (Qt name)
        if obj is self.win and ev.type() == QtCore.QEvent.Type.DragEnter and ev.mimeData().hasUrls():
            ev.acceptProposedAction()
            return True
        if obj is self.win and ev.type() == QtCore.QEvent.Type.Drop:
            urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
            if urls:
                ev.acceptProposedAction()
                self.win.open_sequence(urls[0])
                return True
        return False

    def ask_save(self) -> bool:
        """Unsaved corrections (autosave failed or is off): save, discard or cancel the close."""
        if self.state.session is not None and self.state.session.read_only:
            btn = QtWidgets.QMessageBox.question(
                self.win, "Read-only project", "This project is open read-only, so the corrections made here "
                "cannot be saved to it. Close and discard them?",
                QtWidgets.QMessageBox.StandardButton.Discard | QtWidgets.QMessageBox.StandardButton.Cancel)
            return btn == QtWidgets.QMessageBox.StandardButton.Discard
        btn = QtWidgets.QMessageBox.question(
            self.win, "Unsaved corrections", "Some corrections are not saved yet. Save them before closing?",
            QtWidgets.QMessageBox.StandardButton.Save | QtWidgets.QMessageBox.StandardButton.Discard
            | QtWidgets.QMessageBox.StandardButton.Cancel)
        if btn == QtWidgets.QMessageBox.StandardButton.Cancel:
            return False
        if btn == QtWidgets.QMessageBox.StandardButton.Save:
            return self.save_session()
        return True

    def save_session(self) -> bool:
        if self.state.session is None:
            return True
        try:
            path = self.state.session.save()
        except CSKNetError as exc:
            self.win.show_error(str(exc))
            return False
        self.win.show_status(f"corrections saved to {path}")
        return True

    def restore_state(self) -> None:
        """Restore dock layout after every panel is added (the panels' docks included)."""
        st = self.win.settings.value("window/state")
        if st is not None:
            self.win.restoreState(st)
            return
        left = [d for d in self.win.docks.values() if self.win.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
        right = [d for d in self.win.docks.values() if self.win.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea]
        def size_docks() -> None:
            if left:
                self.win.resizeDocks(left[:1], [190], Qt.Orientation.Horizontal)
            if right:
                self.win.resizeDocks(right[:1], [400], Qt.Orientation.Horizontal)

        QtCore.QTimer.singleShot(0, size_docks)
