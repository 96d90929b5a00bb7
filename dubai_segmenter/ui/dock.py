# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin's dock panel: a small controller between the view and Processing.

The panel is a friendly face on the Processing algorithms: Run builds their parameters
(run_parameters) and executes "Segment raster" or "Segment and vectorize" in a
QgsProcessingAlgRunnerTask, so the dock, the toolbox, the modeler and qgis_process share
one code path (input export, child process, cancel). The widgets are in dock_view, the
remembered choices in dock_settings, what happens to the outputs in run_results.
"""
from __future__ import annotations

import html
import json
from dataclasses import replace
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProject,
    QgsReferencedRectangle,
    QgsTask,
    QgsUnitTypes,
)
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QTimer, pyqtSlot
from qgis.PyQt.QtWidgets import QCheckBox, QMessageBox, QPushButton

from ..child_process.dependencies import check_dependencies
from ..child_process.interpreter import InterpreterError, resolve_interpreter
from ..child_process.managed_environment import create_environment
from ..child_process.runner import EngineError
from ..engine.classes import default_vector_classes
from ..engine.raster_legend import raster_classes
from ..model_locations import newest_model_path
from ..processing_provider.engine_algorithm import CANCELLED_MESSAGE
from ..processing_provider.engine_python import configured_python, engine_python, set_configured_python
from ..processing_provider.segment_algorithms import MODEL_FILE_FILTER
from ..qgis_compat import DISTANCE_METERS
from .dock_settings import DockSettings, ProcessingArea
from .dock_view import DockView
from .model_info import ModelInfo, read_model_info, summary_html
from .run_feedback import DockFeedback
from .run_parameters import RunInputs, run_parameters
from .run_results import add_output_layers, summary_rows

#: How long the dock watches QGIS's message bar for a "Task failed" notice after a cancel.
_NOTICE_WATCH_MS = 3000


class SegmenterDock(QgsDockWidget):
    """Panel from which an analyst runs a segmentation on a raster layer."""

    def __init__(self, iface, parent=None) -> None:
        super().__init__("Dubai Segmenter", parent)
        self.setObjectName("DubaiSegmenterDock")
        self.iface = iface
        self.view = DockView()
        self.view.model_widget.setFilter(MODEL_FILE_FILTER)
        self.get_model_button = QPushButton("Get model…")
        self.get_model_button.setToolTip("Download a model from the model catalogue into the QGIS profile")
        self.view.add_model_button(self.get_model_button)
        self.catalogue_dialog = None
        self.setWidget(self.view)
        self.model_info: ModelInfo | None = None
        self.task: QgsTask | None = None
        self._run: tuple | None = None  # (algorithm, context, feedback, input layer name) kept alive during a run
        self._info_task: QgsTask | None = None
        self._install_task: QgsTask | None = None
        self.output_layers: list = []
        self.view.python_widget.setFilePath(configured_python())
        self._show_default_python()
        settings = DockSettings.load()
        self.view.apply(settings if settings.model else replace(settings, model=newest_model_path()))
        self._connect()
        self._layer_changed()
        self._area_changed()
        self._model_changed()

    def _connect(self) -> None:
        view = self.view
        view.layer_combo.layerChanged.connect(self._layer_changed)
        view.area_combo.currentIndexChanged.connect(self._area_changed)
        view.model_widget.fileChanged.connect(self._model_changed)
        view.python_widget.fileChanged.connect(self._python_changed)
        view.install_button.clicked.connect(self._confirm_install)
        self.get_model_button.clicked.connect(self.open_model_catalogue)
        view.run_button.clicked.connect(self.run)
        view.cancel_button.clicked.connect(self.cancel)

    # --- reacting to choices --------------------------------------------------------------

    def _layer_changed(self, *_) -> None:
        layer = self.view.layer_combo.currentLayer()
        self.view.set_band_count(self.model_info.input_bands if self.model_info else 3)
        for index, combo in enumerate(self.view.band_combos):
            combo.setLayer(layer)
            combo.setBand(index + 1 if layer is not None and layer.bandCount() > index else -1)
        unit = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits()) if layer is not None else ""
        self.view.resolution_spin.setSuffix(f" {unit}/px" if unit else "")
        self._apply_model_resolution()

    def _area_changed(self, *_) -> None:
        polygons = self.view.area_combo.currentIndex() == ProcessingArea.POLYGONS
        self.view.polygon_combo.setEnabled(polygons)
        self.view.selected_only.setEnabled(polygons)

    def _python_changed(self, path: str) -> None:
        set_configured_python(path.strip())
        self._model_changed()

    def _show_default_python(self) -> None:
        """The placeholder says which Python runs the engine when the field is left empty."""
        try:
            default = resolve_interpreter(None)
            text = f"default: {default.path} ({default.source})"
        except InterpreterError:
            text = "none found: choose one or set DUBAI_SEGMENTER_PYTHON"
        self.view.python_widget.lineEdit().setPlaceholderText(text)
        self.view.python_widget.setToolTip(f"Python that runs the engine; empty: {text}")

    def _model_changed(self, *_) -> None:
        """Read the model's metadata in a background task (a child process, not TensorFlow)."""
        path = self.view.model_widget.filePath().strip()
        self.model_info = None
        if not path:
            self.view.model_summary.setHtml("Choose a model file.")
            return
        self.view.model_summary.setHtml("Reading the model…")

        def read(task: QgsTask, model_path: str) -> ModelInfo:
            return read_model_info(engine_python(), model_path)

        task = QgsTask.fromFunction("Reading a Dubai segmenter model", read, path, on_finished=self._model_read)
        self._info_task = task
        QgsApplication.taskManager().addTask(task)

    def _model_read(self, exception, info: ModelInfo | None = None) -> None:
        if exception is not None or info is None:
            self.view.model_summary.setHtml(f'<span style="color:#b00">{html.escape(_message(exception))}</span>')
            return
        if info.path != self.view.model_widget.filePath().strip():
            return  # the user chose another model meanwhile
        self.model_info = info
        self.view.model_summary.setHtml(summary_html(info))
        self.view.tile_spin.setValue(info.tile_size)
        self.view.overlap_spin.setValue(info.overlap)
        keys = {c.key for c in info.classes}
        wanted = [k for k in (self.view.checked_classes() or DockSettings.load().classes) if k in keys]
        self.view.set_classes(info.classes, wanted or [c.key for c in default_vector_classes(info.classes)])
        self._layer_changed()

    def _apply_model_resolution(self) -> None:
        """The model's training resolution is in metres: only a default for layers in metres."""
        layer = self.view.layer_combo.currentLayer()
        if (self.model_info is not None and self.model_info.resolution and layer is not None
                and layer.crs().mapUnits() == DISTANCE_METERS and self.view.resolution_spin.value() == 0):
            self.view.resolution_spin.setValue(self.model_info.resolution)

    # --- installing the engine's packages -------------------------------------------------

    @pyqtSlot()
    def open_model_catalogue(self) -> None:
        """The "Get model…" dialog; a model it installs becomes the panel's model."""
        from .model_catalogue_dialog import ModelCatalogueDialog

        self.catalogue_dialog = ModelCatalogueDialog(self)
        self.catalogue_dialog.installed.connect(self.view.model_widget.setFilePath)
        self.catalogue_dialog.show()

    @pyqtSlot()
    def _confirm_install(self) -> None:
        env_dir = managed_environment_dir()
        box = QMessageBox(QMessageBox.Icon.Question, "Install the engine's packages",
                          f"Create a Python environment in\n{env_dir}\nand install numpy, rasterio, shapely, "
                          "safetensors and ONNX Runtime into it (ONNX Runtime takes 78 MB on disk)?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        training = QCheckBox("Also the training stack: TensorFlow, onnx, tf2onnx (1.3 GB more on disk)")
        box.setCheckBox(training)
        if box.exec() == QMessageBox.StandardButton.Yes:
            self.install_packages(env_dir, training.isChecked())

    def install_packages(self, env_dir: Path, training: bool = False) -> None:
        """Create the managed environment in a background task; on success use its Python."""
        if self._install_task is not None:
            return
        feedback = DockFeedback()  # carries pip's output to the message area across threads
        feedback.message.connect(self.view.show_message)

        def work(task: QgsTask) -> str:
            return create_environment(env_dir, feedback.pushInfo, task.isCanceled, training=training)

        def finished(exception, python: str | None = None) -> None:
            self._install_task = None
            self.view.install_button.setEnabled(True)
            if exception is not None or python is None:
                self.view.show_message(_message(exception), True)
                return
            self.view.python_widget.setFilePath(python)
            self.view.show_message(f"Installed the engine's packages; using {python}.", False)

        self.view.install_button.setEnabled(False)
        self.view.show_message(f"Installing the engine's packages into {env_dir}…", False)
        self._install_task = QgsTask.fromFunction("Installing the Dubai segmenter engine's packages", work,
                                                  on_finished=finished)
        self._install_feedback = feedback
        QgsApplication.taskManager().addTask(self._install_task)

    # --- running --------------------------------------------------------------------------

    def save_settings(self) -> None:
        self.view.settings().save()

    def parameters(self) -> tuple[str, dict]:
        """The algorithm id and its parameters for the current state of the panel."""
        view = self.view
        extent = None
        if view.area_combo.currentIndex() == ProcessingArea.EXTENT and self.iface is not None:
            canvas = self.iface.mapCanvas()
            extent = QgsReferencedRectangle(canvas.extent(), canvas.mapSettings().destinationCrs())
        inputs = RunInputs(
            layer=view.layer_combo.currentLayer(),
            bands=tuple(combo.currentBand() for combo in view.band_combos),
            model_read=self.model_info is not None,
            extent=extent,
            mask_layer=view.polygon_combo.currentLayer(),
            selected_only=view.selected_only.isChecked(),
        )
        return run_parameters(view.settings(), inputs)

    @pyqtSlot()
    def run(self) -> None:
        if self.task is not None:
            return
        self.view.messages.clear()
        self.view.summary_table.setVisible(False)
        self.save_settings()
        try:
            report = check_dependencies(resolve_interpreter(configured_python()))
            algorithm_id, params = self.parameters()
        except (QgsProcessingException, InterpreterError) as exc:
            self.view.show_message(_message(exc), True)
            return
        if not report.ok:
            self.view.show_message(report.problem(), True)
            return
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        if algorithm is None:
            self.view.show_message("The Dubai segmenter Processing provider is not loaded.", True)
            return
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        feedback = DockFeedback()
        feedback.progressChanged.connect(self._progress)
        feedback.message.connect(self.view.show_message)
        task = QgsProcessingAlgRunnerTask(algorithm, params, context, feedback)
        task.executed.connect(self._finished)
        layer_name = self.view.layer_combo.currentLayer().name()
        self._run = (algorithm, context, feedback, layer_name)
        self.task = task
        self.view.set_running(True)
        self.view.progress_bar.setValue(0)
        self.view.show_message(f"Running {algorithm.displayName()} on {layer_name}…", False)
        QgsApplication.taskManager().addTask(task)

    @pyqtSlot()
    def cancel(self) -> None:
        if self.task is not None:
            self.view.show_message("Cancelling…", False)
            self._run[2].cancel()  # the engine stops at its next tile and removes its files
            self.task.cancel()

    @pyqtSlot(float)
    def _progress(self, percent: float) -> None:
        self.view.progress_bar.setValue(int(percent))

    def _finished(self, ok: bool, results: dict) -> None:
        _algorithm, _context, feedback, layer_name = self._run
        description = self.task.description()
        self.task, self._run = None, None
        self.view.set_running(False)
        if feedback.isCanceled():
            self.view.progress_bar.setValue(0)
            if CANCELLED_MESSAGE not in self.view.messages.toPlainText():
                self.view.show_message(CANCELLED_MESSAGE, False)
            self._withdraw_task_failed(description)
            return
        if not ok or not results:
            self.view.show_message("The run failed (see the messages above).", True)
            return
        self.view.progress_bar.setValue(100)
        self.output_layers = add_output_layers(results, layer_name)
        self.view.show_message(f"Added {', '.join(layer.name() for layer in self.output_layers)}.", False)
        self.view.show_summary(summary_rows(json.loads(results["CLASS_AREAS"]), raster_classes(results["OUTPUT"])))
        if self.iface is not None and self.iface.messageBar() is not None:
            self.iface.messageBar().pushMessage("Dubai Segmenter", f"{layer_name} segmented",
                                                level=Qgis.MessageLevel.Success, duration=5)

    def _withdraw_task_failed(self, description: str) -> None:
        """Take back QGIS's "Task failed" notice for this task: a cancel is not a failure.

        QGIS shows that notice for every task that ends without success and ran for more
        than a few seconds; it may arrive just before or just after this call, so the
        bar is cleaned now and watched for a moment.
        """
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is None:
            return

        def withdraw(*_) -> None:
            for item in list(bar.items()):
                if item.text() == description and "fail" in item.title().lower():
                    bar.popWidget(item)

        withdraw()
        bar.widgetAdded.connect(withdraw)
        QTimer.singleShot(_NOTICE_WATCH_MS, lambda: bar.widgetAdded.disconnect(withdraw))

    def shutdown(self) -> None:
        """Called when the plugin unloads: stop a running engine or pip rather than orphan it."""
        for task in (self.task, self._install_task):
            if task is not None:
                task.cancel()


def managed_environment_dir() -> Path:
    """Where the "Install" button puts its environment: in the QGIS profile, per user."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "dubai_segmenter" / "python-env"


def _message(exception) -> str:
    if isinstance(exception, (QgsProcessingException, InterpreterError, EngineError)):
        return str(exception)
    return f"{type(exception).__name__}: {exception}"
