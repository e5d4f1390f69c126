"""The topic picker: which image topic of a recording is EO and which is IR."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtWidgets

from csknet_studio.core.data.rosbag import ImageTopic, TopicError, pick_topics


class TopicDialog(QtWidgets.QDialog):
    """Two combo boxes over the recording's image topics; OK needs two different topics."""

    def __init__(self, parent: QtWidgets.QWidget | None, source: str, topics: Sequence[ImageTopic],
                 eo: str | None = None, ir: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Pick the EO and IR topics")
        self.setObjectName("topic_dialog")
        self.topics = list(topics)
        if eo is None or ir is None:
            try:
                eo, ir = pick_topics(self.topics, eo, ir)
            except TopicError:  # no default: the user picks
                eo = eo or self.topics[0].name
                ir = ir or self.topics[min(1, len(self.topics) - 1)].name
        form = QtWidgets.QFormLayout(self)
        note = QtWidgets.QLabel(f"{source}\nholds {len(self.topics)} image topics. Frames of the two topics are "
                                "paired by nearest timestamp.")
        note.setWordWrap(True)
        form.addRow(note)
        self.eo_box = self._combo(eo)
        self.ir_box = self._combo(ir)
        form.addRow("EO (visible):", self.eo_box)
        form.addRow("IR (thermal):", self.ir_box)
        self.warning = QtWidgets.QLabel("")
        self.warning.setStyleSheet("color: #d9822b")
        form.addRow(self.warning)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.eo_box.currentIndexChanged.connect(self._check)
        self.ir_box.currentIndexChanged.connect(self._check)
        self._check()

    def _combo(self, current: str | None) -> QtWidgets.QComboBox:
        box = QtWidgets.QComboBox(self)
        for t in self.topics:
            box.addItem(t.describe(), t.name)
        names = [t.name for t in self.topics]
        if current in names:
            box.setCurrentIndex(names.index(current))
        return box

    def _check(self) -> None:
        same = self.eo_box.currentData() == self.ir_box.currentData()
        self.warning.setText("EO and IR must be two different topics." if same else "")
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setEnabled(not same)

    def choice(self) -> tuple[str, str]:
        return str(self.eo_box.currentData()), str(self.ir_box.currentData())


def choose_topics(parent: QtWidgets.QWidget | None, source: str, topics: Sequence[ImageTopic],
                  eo: str | None = None, ir: str | None = None) -> tuple[str, str] | None:
    """(EO topic, IR topic) the user picked, or None when they cancelled."""
    dlg = TopicDialog(parent, source, topics, eo, ir)
    try:
        return dlg.choice() if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted else None
    finally:
        dlg.deleteLater()
