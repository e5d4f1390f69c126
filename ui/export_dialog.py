"""File > Export labels: HDF5 (default), PNG masks, COCO JSON or CVAT segmentation masks, with
progress, cancel and a clear outcome.

The dialog only collects options; `ExportWorker` runs `core.export` in its own thread. A cancel
or a failure (disk full, no permission) leaves any earlier file as it was, and says so. The final
message counts the frames written of each origin (corrected / propagated / predicted / unlabelled),
read back from what the file records.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from csknet_studio.core.errors import CSKNetError
from csknet_studio.core.export_read import count_origins, read_frame_origins
from csknet_studio.core.export_writer import prestart as prestart_writer
from csknet_studio.core.modes import Mode
from csknet_studio.core.user_dirs import in_user_cache, kept_export_dir
from csknet_studio.ui.export_worker import ExportOptions, ExportWorker

_DEFAULT_NAME = {"hdf5": "{}_labels.h5", "png": "{}_masks", "coco": "{}_coco.json", "cvat": "{}_cvat"}
_WRITTEN = {"hdf5": "Labels written to", "png": "PNG masks written to the folder",
            "coco": "COCO labels written to", "cvat": "CVAT segmentation masks written to the folder"}


def default_export_path(session, fmt: str) -> Path:
    """`<sequence>_labels.h5`, `_masks/`, `_coco.json` or `_cvat/` beside the sequence (home when in memory)."""
    src = getattr(session, "source", None)
    base = Path(src) if src is not None and not str(src).startswith("<") else Path.home() / "labels"
    stem = base.stem if base.suffix else base.name
    folder = kept_export_dir() if in_user_cache(base) else base.parent  # the demo lives in the cache
    return folder / _DEFAULT_NAME[fmt].format(stem)


class ExportDialog(QtWidgets.QDialog):
    """Signals `exported(path)`, `failed(message)`, `cancelled()`; the outcome is also shown in a
    non-modal message box (`message_box`), so nothing here ever blocks the event loop."""

    exported = QtCore.Signal(str)
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()

    def __init__(self, session, inference_worker=None, mode: Mode | str = Mode.BOTH,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export labels")
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self._session = session
        self._infer = inference_worker
        self._mode = Mode(mode)
        self.worker = ExportWorker(self)
        prestart_writer()  # the HDF5 writer process starts (0.3 s) while the user picks the options
        self.progress_dialog: QtWidgets.QProgressDialog | None = None
        self.message_box: QtWidgets.QMessageBox | None = None

        self._make_format_radios()
        self._shown_fmt = "hdf5"
        self.path_edit = QtWidgets.QLineEdit(str(default_export_path(session, "hdf5")))
        self.path_edit.setToolTip("File (HDF5, COCO) or folder (PNG, CVAT) the labels are written to")
        self.path_edit.setMinimumWidth(self.path_edit.fontMetrics().horizontalAdvance("x" * 60))
        self.browse_button = QtWidgets.QPushButton("Browse…")
        self.browse_button.setMinimumWidth(self.browse_button.sizeHint().width() + 16)  # text off the edges
        self.compression_combo = QtWidgets.QComboBox()
        self.compression_combo.addItems(["gzip", "lzf"])
        self.compression_combo.setToolTip("gzip: smaller files; lzf: faster")
        self.probs_check = QtWidgets.QCheckBox("Include class probabilities (float16; computes missing frames)")
        self.probs_check.setEnabled(getattr(inference_worker, "model", None) is not None)
        self.images_check = QtWidgets.QCheckBox("Copy the EO / IR images into the file")
        has_model = getattr(inference_worker, "model", None) is not None
        self.predictions_check = QtWidgets.QCheckBox(
            "The model's predictions" + (" (computes missing ones)" if has_model else ""))
        self.predictions_check.setChecked(True)
        self.predictions_check.setToolTip("Off: those frames are written as 255 (unlabelled). Without a model, "
                                          "only the frames already segmented have a prediction.")
        self.propagated_check = QtWidgets.QCheckBox("Propagated frames (not reviewed yet) with their labels")
        self.propagated_check.setChecked(True)
        self.propagated_check.setToolTip("Off: propagated frames are written like uncorrected ones")
        self.counts: dict[str, int] = {}

        path_row = QtWidgets.QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        self.frames_box = QtWidgets.QGroupBox("Frames nobody corrected")
        fl = QtWidgets.QVBoxLayout(self.frames_box)
        fl.addWidget(self.predictions_check)
        fl.addWidget(self.propagated_check)
        self.hdf5_box = QtWidgets.QGroupBox("HDF5 options")
        hl = QtWidgets.QFormLayout(self.hdf5_box)
        hl.addRow("Compression", self.compression_combo)
        hl.addRow(self.probs_check)
        hl.addRow(self.images_check)
        self._make_other_boxes()
        self.format_boxes = {"hdf5": self.hdf5_box, "png": self.png_box, "coco": self.coco_box,
                             "cvat": self.cvat_box}
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        lay = QtWidgets.QVBoxLayout(self)
        format_box = QtWidgets.QGroupBox("Format")
        rl = QtWidgets.QVBoxLayout(format_box)
        for radio in self.format_radios.values():
            rl.addWidget(radio)
        lay.addWidget(format_box)
        output_box = QtWidgets.QGroupBox("Output")
        output_box.setLayout(path_row)
        lay.addWidget(output_box)
        lay.addWidget(self.frames_box)
        for box in self.format_boxes.values():
            lay.addWidget(box)
        lay.addWidget(self.buttons)

        for radio in self.format_radios.values():
            radio.toggled.connect(self._on_format)
        self.browse_button.clicked.connect(self._browse)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        self.worker.progress.connect(self._on_progress)
        self.worker.exported.connect(self._on_exported)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self._on_format()

    def _make_format_radios(self) -> None:
        self.hdf5_radio = QtWidgets.QRadioButton("HDF5 file (labels, class names, colours; one file)")
        self.png_radio = QtWidgets.QRadioButton("PNG masks (one indexed PNG per frame, pixel = class id)")
        self.coco_radio = QtWidgets.QRadioButton("COCO JSON (RLE masks, one annotation per object)")
        self.coco_radio.setToolTip("COCO's instance format; the masks are RLE as pycocotools encodes them")
        self.cvat_radio = QtWidgets.QRadioButton("CVAT / Pascal VOC segmentation masks (colour PNGs, labelmap.txt)")
        self.cvat_radio.setToolTip("The folder layout of CVAT's 'Segmentation mask 1.1' (Pascal VOC)")
        self.format_radios = {"hdf5": self.hdf5_radio, "png": self.png_radio, "coco": self.coco_radio,
                              "cvat": self.cvat_radio}
        self.hdf5_radio.setChecked(True)

    def _make_other_boxes(self) -> None:
        """The PNG, COCO and CVAT options (the HDF5 box shares widgets with the frame options)."""
        self.corrected_check = QtWidgets.QCheckBox("Only corrected frames")
        self.coco_class_check = QtWidgets.QCheckBox("One annotation per class and frame (not per object)")
        self.coco_images_check = QtWidgets.QCheckBox("Write the EO / IR images as PNGs beside the file (images/)")
        self.cvat_objects_check = QtWidgets.QCheckBox("Object masks too (SegmentationObject/)")
        self.cvat_objects_check.setChecked(True)
        self.png_box = QtWidgets.QGroupBox("PNG options")
        QtWidgets.QVBoxLayout(self.png_box).addWidget(self.corrected_check)
        self.coco_box = QtWidgets.QGroupBox("COCO options")
        cl = QtWidgets.QVBoxLayout(self.coco_box)
        cl.addWidget(self.coco_class_check)
        cl.addWidget(self.coco_images_check)
        self.cvat_box = QtWidgets.QGroupBox("CVAT options")
        QtWidgets.QVBoxLayout(self.cvat_box).addWidget(self.cvat_objects_check)

    # --- options ------------------------------------------------------------------------------
    @property
    def fmt(self) -> str:
        return next((f for f, radio in self.format_radios.items() if radio.isChecked()), "hdf5")

    def options(self) -> ExportOptions:
        fmt = self.fmt
        copy = self.images_check if fmt == "hdf5" else self.coco_images_check
        return ExportOptions(fmt=fmt, path=self.path_edit.text().strip(),
                             compression=self.compression_combo.currentText(),
                             include_probabilities=self.probs_check.isChecked() and fmt == "hdf5",
                             copy_images=copy.isChecked() and fmt in ("hdf5", "coco"),
                             only_corrected=self.corrected_check.isChecked() and fmt == "png",
                             mode=self._mode, include_predictions=self.predictions_check.isChecked(),
                             include_propagated=self.propagated_check.isChecked(),
                             coco_per_class=self.coco_class_check.isChecked() and fmt == "coco",
                             cvat_objects=self.cvat_objects_check.isChecked())

    def _on_format(self) -> None:
        """Show the chosen format's options; a default path follows the format, a typed one stays."""
        fmt = self.fmt
        for f, box in self.format_boxes.items():
            box.setVisible(f == fmt)
        if Path(self.path_edit.text()) == default_export_path(self._session, self._shown_fmt):
            self.path_edit.setText(str(default_export_path(self._session, fmt)))
        self._shown_fmt = fmt

    def _browse(self) -> None:
        start = self.path_edit.text()
        if self.fmt in ("png", "cvat"):
            path = QtWidgets.QFileDialog.getExistingDirectory(self, f"Folder for the {self.fmt.upper()} masks", start)
        else:
            pattern, suffix = ("HDF5 (*.h5 *.hdf5)", ".h5") if self.fmt == "hdf5" else ("COCO JSON (*.json)", ".json")
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export labels", start, pattern)
            if path and not Path(path).suffix:
                path += suffix
        if path:
            self.path_edit.setText(path)

    # --- run ------------------------------------------------------------------------------------
    def start(self) -> bool:
        opts = self.options()
        if not opts.path:
            self._show_message(QtWidgets.QMessageBox.Icon.Warning, "Choose where to write the labels.")
            return False
        if self.worker.running:
            return False
        n = len(self._session)
        pd = QtWidgets.QProgressDialog(f"Exporting {n} frames to {opts.path}…", "Cancel", 0, n, self)
        pd.setWindowTitle("Export labels")
        pd.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
        pd.setMinimumDuration(300)
        pd.setAutoClose(False)
        pd.setAutoReset(False)
        pd.canceled.connect(self.worker.cancel)
        self.progress_dialog = pd
        self.export_button.setEnabled(False)
        try:
            self.worker.start_export(self._session, opts, self._infer)
        except Exception as exc:  # the session could not be read: report, stay usable
            self._on_failed(str(exc))
            return False
        return True

    def cancel(self) -> None:
        self.worker.cancel()

    def _close_progress(self) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None
        self.export_button.setEnabled(True)

    def _on_progress(self, done: int, total: int, _value: float) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.setMaximum(total)
            self.progress_dialog.setValue(done)

    def _on_exported(self, path: str) -> None:
        self._close_progress()
        what = _WRITTEN[self.fmt]
        try:
            self.counts = count_origins(read_frame_origins(path))
            tally = ", ".join(f"{v} {k}" for k, v in self.counts.items())
            tally = f"\n\n{sum(self.counts.values())} frames: {tally}"
        except CSKNetError:  # the file is written; only the tally is missing
            self.counts, tally = {}, ""
        self._show_message(QtWidgets.QMessageBox.Icon.Information, f"{what}\n{path}{tally}")
        self.exported.emit(path)
        self.accept()

    def _on_failed(self, message: str) -> None:
        self._close_progress()
        self._show_message(QtWidgets.QMessageBox.Icon.Warning, f"Export failed:\n{message}")
        self.failed.emit(message)

    def _on_cancelled(self) -> None:
        self._close_progress()
        self._show_message(QtWidgets.QMessageBox.Icon.Information,
                           "Export cancelled; any earlier file at that path is unchanged.")
        self.cancelled.emit()

    def _show_message(self, icon, text: str) -> None:
        parent = self.parentWidget() or self
        box = QtWidgets.QMessageBox(icon, "Export labels", text, QtWidgets.QMessageBox.StandardButton.Ok, parent)
        box.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_box = box
        box.open()

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        """Closing the dialog cancels a running export (its file is not written)."""
        if self.worker.running and int(result) != QtWidgets.QDialog.DialogCode.Accepted.value:
            self.worker.shutdown()
        super().done(result)
