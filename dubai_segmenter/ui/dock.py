"""The plugin's dock panel, opened by the toolbar button and the Raster menu entry.

The panel is a friendly face on the Processing algorithms: Run builds their parameters
and executes "Segment raster" or "Segment and vectorize" in a QgsProcessingAlgRunnerTask,
so the dock, the toolbox, the modeler and qgis_process share one code path (input export,
child process, cancel). The map stays usable during a run; on success the outputs are
added to the project in the class colours and the per-class areas are listed.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapLayerProxyModel,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProject,
    QgsRasterLayer,
    QgsReferencedRectangle,
    QgsSettings,
    QgsTask,
    QgsUnitTypes,
    QgsVectorLayer,
)
from qgis.gui import QgsDockWidget, QgsDoubleSpinBox, QgsFileWidget, QgsMapLayerComboBox, QgsRasterBandComboBox
from qgis.PyQt.QtCore import Qt, pyqtSlot
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..child_process.dependencies import check_dependencies
from ..child_process.interpreter import InterpreterError, resolve_interpreter
from ..child_process.managed_environment import create_environment
from ..child_process.runner import EngineError
from ..engine.classes import DUBAI_CLASSES
from ..engine.raster_legend import raster_classes
from ..processing_provider.classified_raster import format_area
from ..processing_provider.engine_algorithm import DEFAULT_VECTOR_CLASS_INDICES
from ..processing_provider.engine_python import configured_python, engine_python, set_configured_python
from ..processing_provider.layer_styles import polygon_layer_uri, style_classified_raster, style_polygons
from ..processing_provider.segment_algorithms import MODEL_FILE_FILTER
from .model_info import ModelInfo, read_model_info, summary_html
from .run_feedback import DockFeedback

SETTINGS_GROUP = "dubai_segmenter/dock/"
AREA_WHOLE, AREA_EXTENT, AREA_POLYGONS = range(3)
AREA_LABELS = ("Whole layer", "Current map extent", "Inside polygons of a layer")


class SegmenterDock(QgsDockWidget):
    """Panel from which an analyst runs a segmentation on a raster layer."""

    def __init__(self, iface, parent=None) -> None:
        super().__init__("Dubai Segmenter", parent)
        self.setObjectName("DubaiSegmenterDock")
        self.iface = iface
        self.model_info: ModelInfo | None = None
        self.task: QgsTask | None = None
        self._run: tuple | None = None  # (algorithm, context, feedback, input layer name) kept alive during a run
        self._info_task: QgsTask | None = None
        self._install_task: QgsTask | None = None
        self.output_layers: list = []
        self._build()
        self._restore_settings()
        self._connect()
        self._layer_changed()
        self._area_changed()
        self._model_changed()

    # --- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self._input_group())
        layout.addWidget(self._model_group())
        layout.addWidget(self._polygon_group())
        layout.addWidget(self._output_group())
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        layout.addWidget(self.progress_bar)
        self.summary_table = QTableWidget(0, 3)
        self.summary_table.setObjectName("summaryTable")
        self.summary_table.setHorizontalHeaderLabels(["Class", "Area", "Share"])
        self.summary_table.horizontalHeader().setStretchLastSection(True)
        self.summary_table.verticalHeader().setVisible(False)
        self.summary_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.summary_table.setVisible(False)
        layout.addWidget(self.summary_table)
        self.messages = QTextBrowser()
        self.messages.setObjectName("messages")
        self.messages.setMinimumHeight(60)
        self.messages.setMaximumHeight(140)
        layout.addWidget(self.messages)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)

    def _input_group(self) -> QGroupBox:
        group = QGroupBox("Input")
        form = QFormLayout(group)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        _narrow(self.layer_combo)
        form.addRow("Raster layer", self.layer_combo)
        self.band_row = QHBoxLayout()
        self.band_combos: list[QgsRasterBandComboBox] = []
        form.addRow(QLabel("Bands, in the order the model reads them"))
        form.addRow(self.band_row)
        self.area_combo = QComboBox()
        self.area_combo.addItems(AREA_LABELS)
        form.addRow("Processing area", self.area_combo)
        self.polygon_combo = QgsMapLayerComboBox()
        self.polygon_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        _narrow(self.polygon_combo)
        self.selected_only = QCheckBox("Selected polygons only")
        form.addRow("Polygons", self.polygon_combo)
        form.addRow("", self.selected_only)
        self.resolution_spin = QgsDoubleSpinBox()
        self.resolution_spin.setDecimals(4)
        self.resolution_spin.setRange(0.0, 1e6)
        self.resolution_spin.setSpecialValueText("layer's own")
        self.resolution_spin.setClearValue(0.0)
        self.resolution_spin.setToolTip("Map units per pixel to process at; defaults to the model's training "
                                        "resolution when the layer is in metres")
        form.addRow("Resolution", self.resolution_spin)
        return group

    def _model_group(self) -> QGroupBox:
        group = QGroupBox("Model")
        form = QFormLayout(group)
        self.python_widget = QgsFileWidget()
        self.python_widget.setDialogTitle("Python interpreter with the engine's packages")
        self.python_widget.lineEdit().setPlaceholderText("default: the checkout's .venv or python3")
        form.addRow("Python", self.python_widget)
        self.install_button = QPushButton("Install packages…")
        self.install_button.setToolTip("Create a Python environment in the QGIS profile folder with numpy, rasterio, "
                                       "shapely, safetensors and TensorFlow (about 1 GB to download) and use it")
        form.addRow("", self.install_button)
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter(MODEL_FILE_FILTER)
        self.model_widget.setDialogTitle("Model file")
        form.addRow("Model file", self.model_widget)
        # A read-only text view, not a QLabel: a wrapped label gets squeezed or widens the panel.
        self.model_summary = QTextBrowser()
        self.model_summary.setObjectName("modelSummary")
        self.model_summary.setFrameShape(QTextBrowser.NoFrame)
        self.model_summary.setFixedHeight(118)
        self.model_summary.viewport().setAutoFillBackground(False)
        form.addRow(self.model_summary)
        self.tile_spin, self.overlap_spin, self.batch_spin = QSpinBox(), QSpinBox(), QSpinBox()
        self.tile_spin.setRange(32, 4096)
        self.tile_spin.setSingleStep(32)
        self.tile_spin.setValue(512)
        self.overlap_spin.setRange(0, 2048)
        self.overlap_spin.setValue(128)
        self.batch_spin.setRange(1, 64)
        self.tile_spin.setSuffix(" px")
        self.overlap_spin.setSuffix(" px")
        form.addRow("Tile size", self.tile_spin)
        form.addRow("Tile overlap", self.overlap_spin)
        form.addRow("Tiles per batch", self.batch_spin)
        return group

    def _polygon_group(self) -> QGroupBox:
        self.polygon_group = QGroupBox("Polygons")
        self.polygon_group.setCheckable(True)
        form = QFormLayout(self.polygon_group)
        self.class_list = QListWidget()
        self.class_list.setObjectName("classList")
        self.class_list.setMinimumHeight(130)
        self.class_list.setMaximumHeight(150)
        form.addRow("Classes", self.class_list)
        self.min_area_spin = QgsDoubleSpinBox()
        self.min_area_spin.setRange(0.0, 1e9)
        self.min_area_spin.setDecimals(2)
        self.min_area_spin.setClearValue(0.0)
        form.addRow("Minimum area", self.min_area_spin)
        self.simplify_spin = QgsDoubleSpinBox()
        self.simplify_spin.setRange(0.0, 1e6)
        self.simplify_spin.setDecimals(3)
        self.simplify_spin.setClearValue(0.0)
        form.addRow("Simplify", self.simplify_spin)
        self._fill_classes(DUBAI_CLASSES, [DUBAI_CLASSES[i].key for i in DEFAULT_VECTOR_CLASS_INDICES])
        return self.polygon_group

    def _output_group(self) -> QGroupBox:
        group = QGroupBox("Outputs (empty: temporary files)")
        form = QFormLayout(group)
        self.raster_output = QgsFileWidget()
        self.raster_output.setStorageMode(QgsFileWidget.SaveFile)
        self.raster_output.setFilter("GeoTIFF (*.tif)")
        form.addRow("Classified raster", self.raster_output)
        self.vector_output = QgsFileWidget()
        self.vector_output.setStorageMode(QgsFileWidget.SaveFile)
        self.vector_output.setFilter("GeoPackage (*.gpkg)")
        form.addRow("Polygons", self.vector_output)
        return group

    def _fill_classes(self, classes, checked_keys) -> None:
        self.class_list.clear()
        for c in classes:
            item = QListWidgetItem(c.name)
            item.setData(Qt.UserRole, c.key)
            item.setData(Qt.DecorationRole, QColor(*c.color))
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if c.key in checked_keys else Qt.Unchecked)
            self.class_list.addItem(item)

    def checked_classes(self) -> list[str]:
        return [self.class_list.item(i).data(Qt.UserRole) for i in range(self.class_list.count())
                if self.class_list.item(i).checkState() == Qt.Checked]

    def set_checked_classes(self, keys) -> None:
        for i in range(self.class_list.count()):
            item = self.class_list.item(i)
            item.setCheckState(Qt.Checked if item.data(Qt.UserRole) in keys else Qt.Unchecked)

    # --- signals --------------------------------------------------------------------------

    def _connect(self) -> None:
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.area_combo.currentIndexChanged.connect(self._area_changed)
        self.model_widget.fileChanged.connect(self._model_changed)
        self.python_widget.fileChanged.connect(self._python_changed)
        self.install_button.clicked.connect(self._confirm_install)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)

    def _layer_changed(self, *_) -> None:
        layer = self.layer_combo.currentLayer()
        wanted = self.model_info.input_bands if self.model_info else 3
        while len(self.band_combos) < wanted:
            combo = QgsRasterBandComboBox()
            combo.setShowNotSetOption(True)
            _narrow(combo)
            self.band_combos.append(combo)
            self.band_row.addWidget(combo)
        while len(self.band_combos) > wanted:
            self.band_row.removeWidget(self.band_combos[-1])
            self.band_combos.pop().deleteLater()
        for index, combo in enumerate(self.band_combos):
            combo.setLayer(layer)
            has_band = layer is not None and layer.bandCount() > index
            combo.setBand(index + 1 if has_band else -1)
        unit = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits()) if layer is not None else ""
        self.resolution_spin.setSuffix(f" {unit}/px" if unit else "")
        self._apply_model_resolution()

    def _area_changed(self, *_) -> None:
        polygons = self.area_combo.currentIndex() == AREA_POLYGONS
        self.polygon_combo.setEnabled(polygons)
        self.selected_only.setEnabled(polygons)

    def _python_changed(self, path: str) -> None:
        set_configured_python(path.strip())
        self._model_changed()

    def _model_changed(self, *_) -> None:
        """Read the model's metadata in a background task (a child process, not TensorFlow)."""
        path = self.model_widget.filePath().strip()
        self.model_info = None
        if not path:
            self.model_summary.setHtml("Choose a model file.")
            return
        self.model_summary.setHtml("Reading the model…")

        def read(task: QgsTask, model_path: str) -> ModelInfo:
            return read_model_info(engine_python(), model_path)

        task = QgsTask.fromFunction("Reading a Dubai segmenter model", read, path, on_finished=self._model_read)
        self._info_task = task
        QgsApplication.taskManager().addTask(task)

    def _model_read(self, exception, info: ModelInfo | None = None) -> None:
        if exception is not None or info is None:
            self.model_summary.setHtml(f'<span style="color:#b00">{html.escape(_message(exception))}</span>')
            return
        if info.path != self.model_widget.filePath().strip():
            return  # the user chose another model meanwhile
        self.model_info = info
        self.model_summary.setHtml(summary_html(info))
        self.tile_spin.setValue(info.tile_size)
        self.overlap_spin.setValue(info.overlap)
        checked = self.checked_classes()
        self._fill_classes(info.classes, checked)
        self._layer_changed()

    @pyqtSlot()
    def _confirm_install(self) -> None:
        env_dir = managed_environment_dir()
        answer = QMessageBox.question(
            self, "Install the engine's packages",
            f"Create a Python environment in\n{env_dir}\nand install numpy, rasterio, shapely, safetensors and "
            "TensorFlow into it (about 1 GB to download, several minutes)?",
        )
        if answer == QMessageBox.Yes:
            self.install_packages(env_dir)

    def install_packages(self, env_dir: Path) -> None:
        """Create the managed environment in a background task; on success use its Python."""
        if self._install_task is not None:
            return
        feedback = DockFeedback()  # carries pip's output to the message area across threads
        feedback.message.connect(self.show_message)

        def work(task: QgsTask) -> str:
            return create_environment(env_dir, feedback.pushInfo, task.isCanceled)

        def finished(exception, python: str | None = None) -> None:
            self._install_task = None
            self.install_button.setEnabled(True)
            if exception is not None or python is None:
                self.show_message(_message(exception), True)
                return
            self.python_widget.setFilePath(python)
            self.show_message(f"Installed the engine's packages; using {python}.", False)

        self.install_button.setEnabled(False)
        self.show_message(f"Installing the engine's packages into {env_dir}…", False)
        self._install_task = QgsTask.fromFunction("Installing the Dubai segmenter engine's packages", work,
                                                  on_finished=finished)
        self._install_feedback = feedback
        QgsApplication.taskManager().addTask(self._install_task)

    def _apply_model_resolution(self) -> None:
        """The model's training resolution is in metres: only a default for layers in metres."""
        layer = self.layer_combo.currentLayer()
        if (self.model_info is not None and self.model_info.resolution and layer is not None
                and layer.crs().mapUnits() == QgsUnitTypes.DistanceMeters and self.resolution_spin.value() == 0):
            self.resolution_spin.setValue(self.model_info.resolution)

    # --- settings -------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        settings = QgsSettings()
        get = lambda key, default, kind: settings.value(SETTINGS_GROUP + key, default, type=kind)  # noqa: E731
        self.python_widget.setFilePath(configured_python())
        self.model_widget.setFilePath(get("model", "", str))
        self.tile_spin.setValue(get("tile", self.tile_spin.value(), int))
        self.overlap_spin.setValue(get("overlap", self.overlap_spin.value(), int))
        self.batch_spin.setValue(get("batch", 1, int))
        self.resolution_spin.setValue(get("resolution", 0.0, float))
        self.area_combo.setCurrentIndex(get("area", AREA_WHOLE, int))
        self.polygon_group.setChecked(get("polygons", True, bool))
        saved = get("classes", "", str)
        if saved:
            self.set_checked_classes(saved.split(","))
        self.min_area_spin.setValue(get("min_area", 0.0, float))
        self.simplify_spin.setValue(get("simplify", 0.0, float))
        self.raster_output.setFilePath(get("raster_output", "", str))
        self.vector_output.setFilePath(get("vector_output", "", str))

    def save_settings(self) -> None:
        settings = QgsSettings()
        for key, value in (
            ("model", self.model_widget.filePath()), ("tile", self.tile_spin.value()),
            ("overlap", self.overlap_spin.value()), ("batch", self.batch_spin.value()),
            ("resolution", self.resolution_spin.value()), ("area", self.area_combo.currentIndex()),
            ("polygons", self.polygon_group.isChecked()), ("classes", ",".join(self.checked_classes())),
            ("min_area", self.min_area_spin.value()), ("simplify", self.simplify_spin.value()),
            ("raster_output", self.raster_output.filePath()), ("vector_output", self.vector_output.filePath()),
        ):
            settings.setValue(SETTINGS_GROUP + key, value)

    # --- running --------------------------------------------------------------------------

    def parameters(self) -> tuple[str, dict]:
        """The algorithm id and its parameters for the current state of the panel."""
        layer = self.layer_combo.currentLayer()
        if layer is None:
            raise QgsProcessingException("Choose a raster layer.")
        params = {
            "INPUT": layer.id(),
            "MODEL": self.model_widget.filePath().strip(),
            # Until the model's metadata is read, leave tiling to the engine (the model's defaults).
            "TILE_SIZE": self.tile_spin.value() if self.model_info else None,
            "OVERLAP": self.overlap_spin.value() if self.model_info else None,
            "BATCH_SIZE": self.batch_spin.value(),
            "RESOLUTION": self.resolution_spin.value() or None,
            "OUTPUT": self.raster_output.filePath().strip() or "TEMPORARY_OUTPUT",
        }
        bands = [combo.currentBand() for combo in self.band_combos]
        if all(b > 0 for b in bands):
            params["BANDS"] = bands
        area = self.area_combo.currentIndex()
        if area == AREA_EXTENT:
            canvas = self.iface.mapCanvas()
            params["EXTENT"] = QgsReferencedRectangle(canvas.extent(), canvas.mapSettings().destinationCrs())
        elif area == AREA_POLYGONS:
            polygons = self.polygon_combo.currentLayer()
            if polygons is None:
                raise QgsProcessingException("Choose the polygon layer that delimits the processing area.")
            params["MASK"] = QgsProcessingFeatureSourceDefinition(polygons.id(), self.selected_only.isChecked())
        if not self.polygon_group.isChecked():
            return "dubai_segmenter:segment_raster", params
        keys = self.checked_classes()
        if not keys:
            raise QgsProcessingException("Choose at least one class to vectorize, or untick Polygons.")
        all_keys = [c.key for c in DUBAI_CLASSES]
        unknown = [k for k in keys if k not in all_keys]
        if unknown:
            raise QgsProcessingException(f"Classes {', '.join(unknown)} are not Dubai classes; the toolbox "
                                         "algorithms vectorize building, land, road, vegetation, water, unlabeled.")
        params.update({
            "CLASSES": [all_keys.index(k) for k in keys],
            "MIN_AREA": self.min_area_spin.value(),
            "SIMPLIFY": self.simplify_spin.value(),
            "OUTPUT_VECTOR": self.vector_output.filePath().strip() or "TEMPORARY_OUTPUT",
        })
        return "dubai_segmenter:segment_and_vectorize", params

    @pyqtSlot()
    def run(self) -> None:
        if self.task is not None:
            return
        self.messages.clear()
        self.summary_table.setVisible(False)
        self.save_settings()
        try:
            algorithm_id, params = self.parameters()
            interpreter = resolve_interpreter(configured_python())
            report = check_dependencies(interpreter)
        except (QgsProcessingException, InterpreterError) as exc:
            self.show_message(_message(exc), True)
            return
        if not report.ok:
            self.show_message(report.problem(), True)
            return
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        if algorithm is None:
            self.show_message("The Dubai segmenter Processing provider is not loaded.", True)
            return
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        feedback = DockFeedback()
        feedback.progressChanged.connect(self._progress)
        feedback.message.connect(self.show_message)
        task = QgsProcessingAlgRunnerTask(algorithm, params, context, feedback)
        task.executed.connect(self._finished)
        self._run = (algorithm, context, feedback, self.layer_combo.currentLayer().name())
        self.task = task
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setValue(0)
        self.show_message(f"Running {algorithm.displayName()} on {self._run[3]}…", False)
        QgsApplication.taskManager().addTask(task)

    @pyqtSlot()
    def cancel(self) -> None:
        if self.task is not None:
            self.show_message("Cancelling…", False)
            self.task.cancel()

    @pyqtSlot(float)
    def _progress(self, percent: float) -> None:
        self.progress_bar.setValue(int(percent))

    @pyqtSlot(str, bool)
    def show_message(self, text: str, error: bool = False) -> None:
        colour = "#b00" if error else "#333"
        escaped = html.escape(text).replace("\n", "<br>")
        self.messages.append(f'<span style="color:{colour}">{escaped}</span>')

    def _finished(self, ok: bool, results: dict) -> None:
        _algorithm, _context, feedback, layer_name = self._run
        self.task, self._run = None, None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if feedback.isCanceled():
            self.progress_bar.setValue(0)
            self.show_message("Cancelled; nothing was written.", False)
            return
        if not ok or not results:
            self.show_message("The run failed (see the messages above).", True)
            return
        self.progress_bar.setValue(100)
        self._add_outputs(results, layer_name)
        self.show_summary(json.loads(results["CLASS_AREAS"]))
        if self.iface is not None and self.iface.messageBar() is not None:
            self.iface.messageBar().pushMessage("Dubai Segmenter", f"{layer_name} segmented", level=Qgis.Success,
                                                duration=5)

    def _add_outputs(self, results: dict, layer_name: str) -> None:
        raster_path = results["OUTPUT"]
        classes = raster_classes(raster_path)
        raster = QgsRasterLayer(raster_path, f"{layer_name} land cover")
        style_classified_raster(raster, classes)
        QgsProject.instance().addMapLayer(raster)
        self.output_layers = [raster]
        if results.get("OUTPUT_VECTOR"):
            polygons = QgsVectorLayer(polygon_layer_uri(results["OUTPUT_VECTOR"]), f"{layer_name} polygons", "ogr")
            style_polygons(polygons, classes)
            QgsProject.instance().addMapLayer(polygons)
            self.output_layers.append(polygons)
        self.show_message(f"Added {', '.join(layer.name() for layer in self.output_layers)}.", False)

    def show_summary(self, areas: list[dict]) -> None:
        """One row per class: name (in its colour), area, share of the processed area."""
        colours = {c.id: c.color for c in DUBAI_CLASSES}
        if self.model_info is not None:
            colours.update({c.id: c.color for c in self.model_info.classes})
        self.summary_table.setRowCount(len(areas))
        for row, area in enumerate(areas):
            name = QTableWidgetItem(area["name"])
            name.setData(Qt.DecorationRole, QColor(*colours.get(area["class_id"], (0, 0, 0))))
            size = QTableWidgetItem(format_area(area["area_m2"]))
            share = QTableWidgetItem(f"{100 * area['share']:.1f} %")
            for item in (size, share):
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            for column, item in enumerate((name, size, share)):
                self.summary_table.setItem(row, column, item)
        self.summary_table.resizeColumnsToContents()
        header = self.summary_table.horizontalHeader().height()
        rows = sum(self.summary_table.rowHeight(r) for r in range(len(areas)))
        self.summary_table.setFixedHeight(header + rows + 2 * self.summary_table.frameWidth())
        self.summary_table.setVisible(True)

    def shutdown(self) -> None:
        """Called when the plugin unloads: stop a running engine or pip rather than orphan it."""
        for task in (self.task, self._install_task):
            if task is not None:
                task.cancel()


def managed_environment_dir() -> Path:
    """Where the "Install" button puts its environment: in the QGIS profile, per user."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "dubai_segmenter" / "python-env"


def _narrow(combo: QComboBox) -> None:
    """Long layer or band names must not widen the panel beyond a side dock's width."""
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(6)


def _message(exception) -> str:
    if isinstance(exception, (QgsProcessingException, InterpreterError, EngineError)):
        return str(exception)
    return f"{type(exception).__name__}: {exception}"
