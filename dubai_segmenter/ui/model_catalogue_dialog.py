# SPDX-License-Identifier: GPL-2.0-or-later
"""The "Get model…" dialog: models on this computer, then the catalogue's, and a checked download.

The models already on disk (profile folder, a checkout's ``models/``, ``../shared/models``)
come first, newest first, and "Use selected" picks one; the catalogue's other models
follow with their metrics and download size.

Downloads go through QGIS's own network stack (``QgsFileDownloader`` on
``QgsNetworkAccessManager``), so the user's proxy, SSL and authentication settings apply.
A file is written into the profile's model folder under a hidden temporary name; when it
has arrived, its size and SHA-256 are checked against the catalogue
(``model_catalogue.finish_download``) and only then is it renamed and offered to the
dock. A 404, a dropped connection, a hash mismatch or Cancel leaves nothing behind and is
reported in one sentence.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsFileDownloader, QgsNetworkAccessManager, QgsSettings
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QUrl, pyqtSignal
from qgis.PyQt.QtNetwork import QNetworkReply, QNetworkRequest
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..engine.errors import CatalogueError, DownloadError
from ..engine.model_catalogue import (
    SHIPPED_CATALOGUE,
    Catalogue,
    CatalogueEntry,
    ModelFile,
    finish_download,
    parse_catalogue,
    temporary_path,
    to_url,
)
from ..engine.model_store import installed_models, model_folders
from ..model_locations import SETTING_CATALOGUE, catalogue_url, profile_model_folder

COLUMNS = ("Model", "Accuracy", "Mean IoU", "Download", "Licence", "On this computer")


class ModelCatalogueDialog(QDialog):
    """Lists the catalogue; downloads the chosen model into ``folder`` and emits ``installed(path)``."""

    installed = pyqtSignal(str)

    def __init__(self, parent=None, folder: Path | None = None, url: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Get a Dubai segmenter model")
        self.folder = folder or profile_model_folder()
        self.catalogue: Catalogue | None = None
        self._queue: list[ModelFile] = []
        self._current: tuple[ModelFile, Path] | None = None
        self._downloader: QgsFileDownloader | None = None
        self._rows: list[tuple[CatalogueEntry | None, Path | None, str]] = []  # (entry, installed file, name)
        self._catalogue_reply: QNetworkReply | None = None
        self.last_installed: Path | None = None  # the first file of the last download that completed
        self._build()
        self.load(url or catalogue_url())

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        location = QHBoxLayout()
        location.addWidget(QLabel("Catalogue"))
        self.url_edit = QLineEdit()
        self.url_edit.setToolTip("URL (or path) of a models.json, e.g. your organisation's mirror; "
                                 "saved as the setting dubai_segmenter/catalogue_url")
        location.addWidget(self.url_edit)
        self.read_button = QPushButton("Read")
        location.addWidget(self.read_button)
        layout.addLayout(location)
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        layout.addWidget(self.source_label)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        self.description = QLabel()
        self.description.setWordWrap(True)
        layout.addWidget(self.description)
        self.safetensors_box = QCheckBox(
            "Also the .safetensors file (for TensorFlow, fine-tuning and other tile sizes)")
        layout.addWidget(self.safetensors_box)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        layout.addWidget(self.progress_bar)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.use_button = QPushButton("Use selected")
        self.use_button.setToolTip("Choose this model, already on this computer, in the panel")
        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        for button in (self.use_button, self.download_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.read_button.clicked.connect(self.read_chosen_catalogue)
        self.download_button.clicked.connect(self.download_selected)
        self.use_button.clicked.connect(self.use_selected)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.resize(780, 460)

    def load(self, url: str) -> None:
        """List the models on this computer, then read the catalogue at ``url`` in the background.

        Through QGIS's network manager (proxy and authentication apply; file:// works too),
        without blocking: an unreachable intranet server must not freeze QGIS.
        """
        self.url_edit.setText(url)
        self.catalogue = None
        self.source_label.setText("")
        self._list()
        self._say(f"Reading the catalogue {url}…")
        self._abort_catalogue_read()
        reply = QgsNetworkAccessManager.instance().get(QNetworkRequest(QUrl(url)))
        self._catalogue_reply = reply
        reply.finished.connect(lambda: self._catalogue_read(reply, url))

    def _catalogue_read(self, reply: QNetworkReply, url: str) -> None:
        if reply is not self._catalogue_reply:
            reply.deleteLater()
            return  # an older request, superseded or aborted
        self._catalogue_reply = None
        try:
            if reply.error() != QNetworkReply.NetworkError.NoError:
                raise CatalogueError(f"cannot read the model catalogue {url}: {reply.errorString()}")
            self.catalogue = parse_catalogue(bytes(reply.readAll()), url)
        except CatalogueError as exc:
            self._say(str(exc), error=True)
        else:
            self.source_label.setText(f"<i>{self.catalogue.note}</i>" if self.catalogue.note else "")
            self._say("")
            self._list()
        finally:
            reply.deleteLater()

    def _abort_catalogue_read(self) -> None:
        superseded, self._catalogue_reply = self._catalogue_reply, None
        if superseded is not None:
            superseded.abort()  # its finished signal now finds it superseded and is ignored

    @property
    def loading(self) -> bool:
        """True while the catalogue is being read."""
        return self._catalogue_reply is not None

    def _list(self) -> None:
        """Fill the table: models on this computer first (newest first), then the catalogue's others."""
        self.table.setRowCount(0)
        entries = {e.name: e for e in self.catalogue.entries} if self.catalogue else {}
        installed = installed_models(model_folders(self.folder))
        self._rows = [(entries.get(m.name), m.path, m.name) for m in installed]
        self._rows += [(e, None, e.name) for e in entries.values() if e.name not in {m.name for m in installed}]
        for entry, path, name in self._rows:
            row = self.table.rowCount()
            self.table.insertRow(row)
            download = self._files(entry)[0] if entry is not None else None
            cells = (
                f"{name} (v{entry.version})" if entry is not None else name,
                _number(entry.metrics.get("pixel_accuracy")) if entry is not None else "",
                _number(entry.metrics.get("mean_iou")) if entry is not None else "",
                f"{download.size / 1e6:.0f} MB ({download.kind})" if download is not None else "not in the catalogue",
                entry.licence if entry is not None else "",
                str(path) if path is not None else "not installed",
            )
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        if self._rows:
            self.table.selectRow(0)
        self._selection_changed()

    def row_of(self, name: str) -> int:
        """The table row of a model name (-1 if not listed)."""
        return next((i for i, row in enumerate(self._rows) if row[2] == name), -1)

    def read_chosen_catalogue(self) -> None:
        """Remember the typed catalogue location (empty: back to the default) and list it."""
        text = self.url_edit.text().strip()
        settings = QgsSettings()
        if text and to_url(text) != SHIPPED_CATALOGUE.as_uri():
            settings.setValue(SETTING_CATALOGUE, text)
        else:
            settings.remove(SETTING_CATALOGUE)
        self.load(catalogue_url())

    def _selected(self) -> tuple[CatalogueEntry | None, Path | None, str] | None:
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()] if rows else None

    def selected_entry(self) -> CatalogueEntry | None:
        selected = self._selected()
        return selected[0] if selected else None

    def _selection_changed(self) -> None:
        selected = self._selected()
        entry, path, _ = selected if selected else (None, None, "")
        idle = self._downloader is None
        self.download_button.setEnabled(entry is not None and idle)
        self.use_button.setEnabled(path is not None and idle)
        if entry is not None:
            iou = ", ".join(f"{k} {v:.2f}" for k, v in entry.metrics.get("iou", {}).items())
            self.description.setText(f"{entry.description}" + (f"<br>IoU per class: {iou}" if iou else ""))
        else:
            self.description.setText(f"{path}" if path else "")

    def use_selected(self) -> None:
        """Choose a model that is already on this computer."""
        selected = self._selected()
        if selected and selected[1] is not None:
            self.installed.emit(str(selected[1]))
            self._say(f"Using {selected[1]}.")

    @staticmethod
    def _files(entry: CatalogueEntry) -> list[ModelFile]:
        """What the plugin runs first (the ONNX export: ONNX Runtime is a small install), then the rest."""
        return sorted(entry.files, key=lambda f: f.kind != "onnx")

    # --- downloading ------------------------------------------------------------------------

    def download_selected(self) -> None:
        entry = self.selected_entry()
        if entry is None or self._downloader is not None:
            return
        files = self._files(entry)
        self._queue = files if self.safetensors_box.isChecked() else files[:1]
        self._installed_now: list[Path] = []
        self.download_button.setEnabled(False)
        self.use_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._next()

    def _next(self) -> None:
        if not self._queue:
            self._done()
            return
        model_file = self._queue.pop(0)
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = temporary_path(self.folder, model_file.name)
        self._current = (model_file, temporary)
        self.progress_bar.setValue(0)
        self._say(f"Downloading {model_file.name} ({model_file.size / 1e6:.1f} MB) from {model_file.url}…")
        downloader = QgsFileDownloader(QUrl(model_file.url), str(temporary), "", True)
        downloader.downloadProgress.connect(self._progress)
        downloader.downloadCompleted.connect(self._completed)
        downloader.downloadError.connect(self._failed)
        downloader.downloadCanceled.connect(self._cancelled)
        # It deletes itself (deleteLater) after its last signal: C++ must own it, or dropping our
        # reference inside one of its signals would delete it while it still runs.
        sip.transferto(downloader, None)
        self._downloader = downloader
        downloader.startDownload()

    def _progress(self, received: int, total: int) -> None:
        expected = self._current[0].size if self._current else total
        if expected > 0:
            self.progress_bar.setValue(min(100, int(100 * received / expected)))

    def _completed(self, *_) -> None:
        model_file, temporary = self._current
        self._downloader = None
        try:
            path = finish_download(temporary, model_file, self.folder)
        except (DownloadError, OSError) as exc:
            self._stop(str(exc))
            return
        self._installed_now.append(path)
        self._say(f"Installed {path} (size and SHA-256 checked).")
        self._next()

    def _failed(self, errors) -> None:
        model_file, temporary = self._current
        reason = "; ".join(str(e) for e in errors) or "unknown network error"
        self._stop(f"{model_file.name} could not be downloaded from {model_file.url} ({reason}); nothing was kept.")

    def _cancelled(self) -> None:
        self._stop(f"Download of {self._current[0].name} cancelled; nothing was kept.")

    def cancel(self) -> None:
        if self._downloader is not None:
            self._downloader.cancelDownload()

    def _stop(self, message: str) -> None:
        """End the download queue after a failure or cancel: remove the partial file, say why."""
        if self._current is not None:
            self._current[1].unlink(missing_ok=True)
        self._downloader, self._current, self._queue = None, None, []
        self.progress_bar.setValue(0)
        self.cancel_button.setEnabled(False)
        self._selection_changed()
        self._say(message, error=True)

    def _done(self) -> None:
        self._current = None
        self.cancel_button.setEnabled(False)
        self.last_installed = self._installed_now[0]  # the ONNX export when it was offered: what the plugin runs
        installed = ", ".join(p.name for p in self._installed_now)
        self._list()  # the model moves to the models on this computer
        self._say(f"Installed {installed} in {self.folder} (size and SHA-256 checked).")
        self.installed.emit(str(self.last_installed))

    @property
    def busy(self) -> bool:
        return self._downloader is not None

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #b00" if error else "")
        self.status.setText(text)

    def reject(self) -> None:
        self.cancel()
        self._abort_catalogue_read()
        super().reject()


def _number(value) -> str:
    return "" if value is None else f"{float(value):.3f}"
