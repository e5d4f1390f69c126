"""Opening a sequence's project in the GUI: what to do when another copy holds it, and the report
of what loading repaired.

A project another running copy of the app holds is never written by this one: the user picks
*Open read-only* (look, export; nothing is saved), *Retry* (once the other copy is closed: its
lock is then free, or stale and taken over), or, only when the holder runs on another machine and
cannot be checked, *Take over*.
"""

from __future__ import annotations

from PySide6 import QtWidgets

from csknet_studio.core.errors import ProjectLockedError
from csknet_studio.core.session import AnnotationSession
from csknet_studio.ui.message_box import question_box

MAX_LISTED = 15


def ask_locked_dialog(parent: QtWidgets.QWidget | None, err: ProjectLockedError) -> str:
    """'read_only', 'retry', 'take_over' or 'cancel'."""
    box = question_box(parent, QtWidgets.QMessageBox.Icon.Warning, "Project in use",
                       "This project is open in another copy of CSKNet Studio.",
                       f"{err}\n\nTwo copies writing one project would lose corrections, so this "
                       "one can only read it until the other is closed.")
    read_only = box.addButton("Open read-only", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
    retry = box.addButton("Retry", QtWidgets.QMessageBox.ButtonRole.ActionRole)
    retry.setToolTip("After closing the other copy (or when it has crashed)")
    take = None
    if not err.checkable:
        take = box.addButton("Take over", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        take.setToolTip("Only if the copy on the other machine is no longer running")
    box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(read_only)
    box.exec()
    clicked = box.clickedButton()
    if clicked is read_only:
        return "read_only"
    if clicked is retry:
        return "retry"
    if take is not None and clicked is take:
        return "take_over"
    return "cancel"


def open_project_session(win, seq, project_path, scheme):
    """An AnnotationSession on `seq`, asking `win.ask_locked(err)` (tests replace it) when the
    project is held elsewhere. `win.project_flags` ({"read_only", "take_over_lock"}, from the
    command line) skip the question. Cancel re-raises the ProjectLockedError."""
    flags = dict(getattr(win, "project_flags", None) or {})
    read_only, take_over = bool(flags.get("read_only")), bool(flags.get("take_over_lock"))
    ask = getattr(win, "ask_locked", None) or (lambda err: ask_locked_dialog(win, err))
    while True:
        try:
            return AnnotationSession(seq, project_path, scheme=scheme, read_only=read_only, take_over_lock=take_over)
        except ProjectLockedError as err:
            choice = ask(err)
            if choice == "read_only":
                read_only = True
            elif choice == "take_over" and not err.checkable:
                take_over = True
            elif choice != "retry":
                raise


def problems_text(problems) -> str:
    lines = [f"• {p}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"… and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines)


def report_open(win, session) -> None:
    """Tell what loading repaired (a dialog) and that a read-only project saves nothing."""
    serious = [p for p in session.problems if p.action != "taken over"]
    if serious:
        win.show_error(f"Project {session.project_path} was opened with repairs:\n{problems_text(serious)}")
    if session.read_only:
        win.show_status(f"Read-only: corrections made here are not saved ({session.project_path})", 15000)


class SessionReports:
    """What the open session says as it works: problems found in mask files as frames are first
    shown, and autosave failures (one dialog, then status-bar reminders until a save succeeds)."""

    def __init__(self, win) -> None:
        self.win = win
        self.save_error_shown = False

    def watch(self, session) -> None:
        self.save_error_shown = False
        session.events.save_failed.connect(self._on_save_failed)
        session.events.saved.connect(self._on_saved)
        session.events.problems_found.connect(self._on_problems_found)
        report_open(self.win, session)

    def _on_problems_found(self, problems) -> None:
        """A mask file found unusable when its frame was first shown (dropped, or ids set to 255)."""
        self.win.show_status("; ".join(str(p) for p in problems), 15000)
        for p in problems:
            if p.frame is not None:
                self.win.frame_states.refresh(p.frame)

    def _on_save_failed(self, err) -> None:
        if self.save_error_shown:
            self.win.show_status(f"corrections not saved yet: {err}", 10000)
        else:
            self.save_error_shown = True
            self.win.show_error(str(err))

    def _on_saved(self, _path) -> None:
        self.save_error_shown = False
