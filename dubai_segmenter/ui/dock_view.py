# SPDX-License-Identifier: GPL-2.0-or-later
"""The dock's widgets and layout, and nothing else: no signals to QGIS, no runs.

Layout rules, so the panel fits QGIS's default side-dock width (about 300 px) without a
horizontal scroll bar: form rows wrap their label above the field when narrow, combo
boxes and file fields shrink to a few characters, long explanations live in tooltips,
and table columns stretch instead of growing. Run, Cancel and the progress bar sit below
the scroll area, so they are visible however tall the form is; rarely changed settings
(tiling, batch, Python) fold into a collapsed "Advanced" group.
"""
from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from qgis.gui import (
    QgsCollapsibleGroupBox,
    QgsDoubleSpinBox,
    QgsFileWidget,
    QgsMapLayerComboBox,
    QgsRasterBandComboBox,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..engine.classes import ClassInfo
from ..engine.contract import POLYGON_SUFFIX, RASTER_SUFFIXES
from ..qgis_compat import POLYGON_LAYER_FILTER, RASTER_LAYER_FILTER
from .dock_settings import AREA_LABELS, DockSettings, ProcessingArea

#: Width the panel's content must fit in (QGIS opens a side dock about 300 px wide,
#: of which the scroll area's frame and vertical scroll bar take some).
CONTENT_WIDTH = 256
_ERROR_COLOUR = "#b00"
_TEXT_COLOUR = "#333"


def _form(parent: QWidget) -> QFormLayout:
    form = QFormLayout(parent)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def _narrow(combo: QComboBox, characters: int = 6) -> None:
    """Long layer or band names must not widen the panel beyond a side dock's width."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(characters)


class _GrowingText(QTextBrowser):
    """A read-only rich-text box as tall as its text at the current width (no inner scroll bar)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.viewport().setAutoFillBackground(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)

    def _fit(self, *_) -> None:
        margins = self.contentsMargins()
        self.setFixedHeight(int(self.document().size().height()) + margins.top() + margins.bottom() + 2)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit()


class DockView(QWidget):
    """Every widget of the panel, read into and filled from a ``DockSettings``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.band_combos: list[QgsRasterBandComboBox] = []
        body = QWidget()
        body.setObjectName("dockBody")
        column = QVBoxLayout(body)
        column.addWidget(self._input_group())
        column.addWidget(self._model_group())
        column.addWidget(self._polygon_group())
        column.addWidget(self._output_group())
        column.addWidget(self._advanced_group())
        column.addWidget(self._results())
        column.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("dockScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.scroll.setWidget(body)
        self.body = body
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll, 1)
        outer.addLayout(self._run_bar())

    # --- groups ---------------------------------------------------------------------------

    def _input_group(self) -> QGroupBox:
        group = QGroupBox("Input")
        form = _form(group)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(RASTER_LAYER_FILTER)
        _narrow(self.layer_combo)
        form.addRow("Raster", self.layer_combo)
        self.band_row = QHBoxLayout()
        self.band_row.setSpacing(2)
        bands_label = QLabel("Bands")
        bands_label.setToolTip("The layer's bands the model reads, in the model's order (e.g. red, green, blue)")
        form.addRow(bands_label, self.band_row)
        self.area_combo = QComboBox()
        self.area_combo.addItems([AREA_LABELS[a] for a in ProcessingArea])
        self.area_combo.setToolTip("Process the whole layer, the current map extent, or only inside the "
                                   "polygons of a layer (pixels outside become no data)")
        form.addRow("Area", self.area_combo)
        self.polygon_combo = QgsMapLayerComboBox()
        self.polygon_combo.setFilters(POLYGON_LAYER_FILTER)
        _narrow(self.polygon_combo)
        form.addRow("Polygons", self.polygon_combo)
        self.selected_only = QCheckBox("Selected only")
        self.selected_only.setToolTip("Only the selected polygons delimit the processing area")
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
        form = _form(group)
        self.model_widget = QgsFileWidget()
        self.model_widget.setDialogTitle("Model file")
        form.addRow("File", self.model_widget)
        #: Buttons that get or manage model files (e.g. "Get model…") go in this row.
        self.model_buttons = QHBoxLayout()
        self.model_buttons.setObjectName("modelButtons")
        self.model_buttons.addStretch(1)
        form.addRow(self.model_buttons)
        # A read-only text view, not a QLabel: a wrapped label gets squeezed or widens the panel.
        self.model_summary = _GrowingText()
        self.model_summary.setObjectName("modelSummary")
        form.addRow(self.model_summary)
        self.quality_combo = QComboBox()
        self.quality_combo.addItems(["Fast", "Best"])
        self.quality_combo.setToolTip("Best averages the model over each tile and its three flips "
                                      "(test-time augmentation): about four times the model's time")
        form.addRow("Quality", self.quality_combo)
        return group

    def add_model_button(self, button: QPushButton) -> None:
        """Put a button in the row under the model file (before the stretch that right-aligns nothing)."""
        self.model_buttons.insertWidget(self.model_buttons.count() - 1, button)

    def _polygon_group(self) -> QGroupBox:
        self.polygon_group = QGroupBox("Polygons")
        self.polygon_group.setCheckable(True)
        self.polygon_group.setToolTip("Also write the chosen classes as polygons (GeoPackage)")
        form = _form(self.polygon_group)
        self.class_list = QListWidget()
        self.class_list.setObjectName("classList")
        self.class_list.setMinimumHeight(60)
        self.class_list.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.class_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.class_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        form.addRow(QLabel("Classes"))
        form.addRow(self.class_list)
        self.min_area_spin = QgsDoubleSpinBox()
        self.min_area_spin.setRange(0.0, 1e9)
        self.min_area_spin.setDecimals(2)
        self.min_area_spin.setClearValue(0.0)
        self.min_area_spin.setToolTip("Drop polygons smaller than this, in square map units")
        form.addRow("Min. area", self.min_area_spin)
        self.simplify_spin = QgsDoubleSpinBox()
        self.simplify_spin.setRange(0.0, 1e6)
        self.simplify_spin.setDecimals(3)
        self.simplify_spin.setClearValue(0.0)
        self.simplify_spin.setToolTip("Simplification tolerance in map units (0 keeps every pixel corner)")
        form.addRow("Simplify", self.simplify_spin)
        return self.polygon_group

    def _output_group(self) -> QGroupBox:
        group = QGroupBox("Outputs")
        group.setToolTip("Leave a field empty to write a temporary file")
        form = _form(group)
        self.raster_output = QgsFileWidget()
        self.raster_output.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.raster_output.setFilter(f"GeoTIFF (*{RASTER_SUFFIXES[0]})")
        self.raster_output.lineEdit().setPlaceholderText("temporary file")
        form.addRow("Raster", self.raster_output)
        self.vector_output = QgsFileWidget()
        self.vector_output.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.vector_output.setFilter(f"GeoPackage (*{POLYGON_SUFFIX})")
        self.vector_output.lineEdit().setPlaceholderText("temporary file")
        form.addRow("Polygons", self.vector_output)
        return group

    def _advanced_group(self) -> QgsCollapsibleGroupBox:
        self.advanced_group = QgsCollapsibleGroupBox("Advanced")
        self.advanced_group.setObjectName("advancedGroup")
        form = _form(self.advanced_group)
        self.tile_spin, self.overlap_spin, self.batch_spin = QSpinBox(), QSpinBox(), QSpinBox()
        self.tile_spin.setRange(32, 4096)
        self.tile_spin.setSingleStep(32)
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setToolTip("Pixels per side of each window the model sees (a multiple of 32)")
        self.overlap_spin.setRange(0, 2048)
        self.overlap_spin.setSuffix(" px")
        self.overlap_spin.setToolTip("Pixels shared by neighbouring windows; 0 is allowed")
        self.batch_spin.setRange(1, 64)
        self.batch_spin.setToolTip("Windows per model call: more is a little faster and needs more memory")
        form.addRow("Tile size", self.tile_spin)
        form.addRow("Overlap", self.overlap_spin)
        form.addRow("Batch", self.batch_spin)
        self.python_widget = QgsFileWidget()
        self.python_widget.setDialogTitle("Python interpreter with the engine's packages")
        form.addRow("Python", self.python_widget)
        self.install_button = QPushButton("Install packages…")
        self.install_button.setToolTip("Create a Python environment in the QGIS profile folder with the engine's "
                                       "packages (numpy, rasterio, shapely, safetensors, ONNX Runtime; "
                                       "TensorFlow on request) and use it")
        form.addRow(self.install_button)
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("this computer")
        self.scheduler_edit.setToolTip("Address of a Dask cluster's scheduler (e.g. tcp://10.0.0.5:8786) to run "
                                       "the tiles on its workers, with the same result; empty: this computer")
        form.addRow("Dask", self.scheduler_edit)
        self.advanced_group.setCollapsed(True)
        return self.advanced_group

    def _results(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.summary_table = QTableWidget(0, 3)
        self.summary_table.setObjectName("summaryTable")
        self.summary_table.setHorizontalHeaderLabels(["Class", "Area", "Share"])
        header = self.summary_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.summary_table.verticalHeader().setVisible(False)
        self.summary_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary_table.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.summary_table.setVisible(False)
        column.addWidget(self.summary_table)
        self.messages = QTextBrowser()
        self.messages.setObjectName("messages")
        self.messages.setMinimumHeight(60)
        self.messages.setMaximumHeight(160)
        self.messages.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        column.addWidget(self.messages)
        return box

    def _run_bar(self) -> QVBoxLayout:
        bar = QVBoxLayout()
        bar.setContentsMargins(6, 4, 6, 6)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        bar.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        bar.addWidget(self.progress_bar)
        return bar

    # --- state ----------------------------------------------------------------------------

    def settings(self) -> DockSettings:
        """The panel's current choices."""
        return DockSettings(
            model=self.model_widget.filePath().strip(),
            tile=self.tile_spin.value(),
            overlap=self.overlap_spin.value(),
            batch=self.batch_spin.value(),
            resolution=self.resolution_spin.value(),
            area=ProcessingArea(self.area_combo.currentIndex()),
            polygons=self.polygon_group.isChecked(),
            classes=tuple(self.checked_classes()),
            min_area=self.min_area_spin.value(),
            simplify=self.simplify_spin.value(),
            raster_output=self.raster_output.filePath().strip(),
            vector_output=self.vector_output.filePath().strip(),
            quality=self.quality_combo.currentIndex(),
            scheduler=self.scheduler_edit.text().strip(),
        )

    def apply(self, settings: DockSettings) -> None:
        """Show ``settings`` in the widgets (classes only tick those the class list has)."""
        self.model_widget.setFilePath(settings.model)
        self.tile_spin.setValue(settings.tile)
        self.overlap_spin.setValue(settings.overlap)
        self.batch_spin.setValue(settings.batch)
        self.resolution_spin.setValue(settings.resolution)
        self.area_combo.setCurrentIndex(int(settings.area))
        self.polygon_group.setChecked(settings.polygons)
        if settings.classes:
            self.set_checked_classes(settings.classes)
        self.min_area_spin.setValue(settings.min_area)
        self.simplify_spin.setValue(settings.simplify)
        self.raster_output.setFilePath(settings.raster_output)
        self.vector_output.setFilePath(settings.vector_output)
        quality = settings.quality if 0 <= settings.quality < self.quality_combo.count() else 0
        self.quality_combo.setCurrentIndex(quality)
        self.scheduler_edit.setText(settings.scheduler)

    def set_classes(self, classes: Sequence[ClassInfo], checked_keys: Iterable[str]) -> None:
        """One checkable row per class of the model, in its colour."""
        checked = set(checked_keys)
        self.class_list.clear()
        for c in classes:
            item = QListWidgetItem(c.name)
            item.setToolTip(f"{c.name} (id {c.id}, {c.key!r} on the command line)")
            item.setData(Qt.ItemDataRole.UserRole, c.key)
            item.setData(Qt.ItemDataRole.DecorationRole, QColor(*c.color))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if c.key in checked else Qt.CheckState.Unchecked)
            self.class_list.addItem(item)
        if classes:  # every class visible up to 8, then the list scrolls
            rows = min(len(classes), 8) * max(self.class_list.sizeHintForRow(0), self.fontMetrics().height() + 4)
            self.class_list.setFixedHeight(rows + 2 * self.class_list.frameWidth() + 4)

    def checked_classes(self) -> list[str]:
        items = [self.class_list.item(i) for i in range(self.class_list.count())]
        return [item.data(Qt.ItemDataRole.UserRole) for item in items if item.checkState() == Qt.CheckState.Checked]

    def set_checked_classes(self, keys: Iterable[str]) -> None:
        keys = set(keys)
        for i in range(self.class_list.count()):
            item = self.class_list.item(i)
            checked = item.data(Qt.ItemDataRole.UserRole) in keys
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def set_band_count(self, wanted: int) -> None:
        while len(self.band_combos) < wanted:
            combo = QgsRasterBandComboBox()
            combo.setShowNotSetOption(True)
            _narrow(combo, 2)
            self.band_combos.append(combo)
            self.band_row.addWidget(combo)
        while len(self.band_combos) > wanted:
            self.band_row.removeWidget(self.band_combos[-1])
            self.band_combos.pop().deleteLater()

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def show_message(self, text: str, error: bool = False) -> None:
        colour = _ERROR_COLOUR if error else _TEXT_COLOUR
        escaped = html.escape(text).replace("\n", "<br>")
        self.messages.append(f'<span style="color:{colour}">{escaped}</span>')

    def show_summary(self, rows: Sequence[tuple[str, tuple[int, int, int], str, str]]) -> None:
        """Rows of (class name, colour, area text, share text), all shown without scrolling."""
        table = self.summary_table
        table.setRowCount(len(rows))
        for row, (name, colour, area, share) in enumerate(rows):
            name_item = QTableWidgetItem(name)
            name_item.setData(Qt.ItemDataRole.DecorationRole, QColor(*colour))
            name_item.setToolTip(name)
            numbers = [QTableWidgetItem(area), QTableWidgetItem(share)]
            for item in numbers:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for column, item in enumerate([name_item, *numbers]):
                table.setItem(row, column, item)
        header = table.horizontalHeader().sizeHint().height()
        heights = sum(table.rowHeight(r) for r in range(len(rows)))
        table.setFixedHeight(header + heights + 2 * table.frameWidth())
        table.setVisible(True)
        self.scroll.ensureWidgetVisible(table)
