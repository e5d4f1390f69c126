"""The main window's file-side chores: recent files, drag and drop, save prompt, dock layout.

A mixin of `MainWindow` (kept apart so each file stays small); it uses the window's `settings`,
`session`, `docks`, `open_sequence` and `show_error`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from csknet_studio.core.errors import CSKNetError

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
    from csknet_studio.core.project import PROJECT_SUFFIX, ProjectStore

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


class WindowFilesMixin:
    def recent_files(self) -> list[str]:
        v = self.settings.value("recent", []) or []
        return [v] if isinstance(v, str) else list(v)

    def _add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        items = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self.menus_changed()

    def menus_changed(self) -> None:
        from csknet_studio.ui.menus import fill_recent

        fill_recent(self)

    def recording_topics(self, path: str | Path, topics: dict[str, str] | None = None) -> dict[str, str] | None:
        """open_sequence keywords naming a recording's EO and IR topics: `topics` when both are
        given, else what the user picks in the topic picker (last choice preselected); {} for a path
        that is not a recording, None when the user cancelled."""
        from csknet_studio.core.data.rosbag import is_recording, list_image_topics
        from csknet_studio.ui.topic_dialog import choose_topics

        if not is_recording(path):
            return {}
        topics = dict(topics or {})
        if topics.get("eo_topic") and topics.get("ir_topic"):
            return topics
        key = "recording_topics/" + str(Path(path).resolve()).replace("/", "|")
        last = self.settings.value(key) or []
        eo = topics.get("eo_topic") or (last[0] if len(last) == 2 else None)
        ir = topics.get("ir_topic") or (last[1] if len(last) == 2 else None)
        found = list_image_topics(path)
        if len(found) < 2:
            return topics  # open_sequence says what is missing
        names = {t.name for t in found}
        picked = choose_topics(self, str(path), found, eo if eo in names else None, ir if ir in names else None)
        if picked is None:
            return None
        self.settings.setValue(key, list(picked))
        return {"eo_topic": picked[0], "ir_topic": picked[1]}

    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if urls:
            ev.acceptProposedAction()
            self.open_sequence(urls[0])

    def _ask_save(self) -> bool:
        """Unsaved corrections (autosave failed or is off): save, discard or cancel the close."""
        if self.session is not None and self.session.read_only:
            btn = QtWidgets.QMessageBox.question(
                self, "Read-only project", "This project is open read-only, so the corrections made here "
                "cannot be saved to it. Close and discard them?",
                QtWidgets.QMessageBox.StandardButton.Discard | QtWidgets.QMessageBox.StandardButton.Cancel)
            return btn == QtWidgets.QMessageBox.StandardButton.Discard
        btn = QtWidgets.QMessageBox.question(
            self, "Unsaved corrections", "Some corrections are not saved yet. Save them before closing?",
            QtWidgets.QMessageBox.StandardButton.Save | QtWidgets.QMessageBox.StandardButton.Discard
            | QtWidgets.QMessageBox.StandardButton.Cancel)
        if btn == QtWidgets.QMessageBox.StandardButton.Cancel:
            return False
        if btn == QtWidgets.QMessageBox.StandardButton.Save:
            return self.save_session()
        return True

    def save_session(self) -> bool:
        if self.session is None:
            return True
        try:
            path = self.session.save()
        except CSKNetError as exc:
            self.show_error(str(exc))
            return False
        self.show_status(f"corrections saved to {path}")
        return True

    def restore_state(self) -> None:
        """Restore dock layout after every panel is added (the panels' docks included)."""
        st = self.settings.value("window/state")
        if st is not None:
            self.restoreState(st)
            return
        left = [d for d in self.docks.values() if self.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
        right = [d for d in self.docks.values() if self.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea]
        def size_docks() -> None:
            if left:
                self.resizeDocks(left[:1], [190], Qt.Orientation.Horizontal)
            if right:
                self.resizeDocks(right[:1], [400], Qt.Orientation.Horizontal)

        QtCore.QTimer.singleShot(0, size_docks)
