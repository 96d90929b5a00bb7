# SPDX-License-Identifier: GPL-2.0-or-later
"""The dock panel driven as an analyst would: choose a layer and a model, Run, wait.

Two engine runs are shared by the tests (module fixtures): a plain GeoTIFF layer over
its whole extent, and a VRT layer processed inside a polygon (the temporary-export path).
Screenshots go to the test's temporary folder; docs/dock.png comes from `make screenshots`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFeature,
    QgsGeometry,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, Qt

from dubai_segmenter.engine.classes import DUBAI_CLASSES, NODATA_CLASS
from dubai_segmenter.processing_provider.engine_algorithm import CANCELLED_MESSAGE
from dubai_segmenter.processing_provider.engine_python import configured_python, set_configured_python
from dubai_segmenter.ui.dock import SegmenterDock
from dubai_segmenter.ui.dock_settings import DockSettings, ProcessingArea
from tests.qgis.conftest import child_processes_writing, read_band, scene_ids, wait_until, write_painted_raster

#: The width QGIS gives a new side dock (measured in a real 1600x1000 window).
DEFAULT_DOCK_WIDTH = 298


def _clear_dock_settings() -> None:
    DockSettings.clear()


@pytest.fixture(autouse=True)
def default_settings():
    """Each test starts from the panel's defaults, not from what an earlier run saved."""
    _clear_dock_settings()


def _new_dock(iface, model: Path, out_dir: Path) -> SegmenterDock:
    _clear_dock_settings()
    dock = SegmenterDock(iface)
    dock.resize(440, 1000)
    dock.view.model_widget.setFilePath(str(model))
    wait_until(lambda: dock.model_info is not None, timeout=60)
    dock.view.raster_output.setFilePath(str(out_dir / "classes.tif"))
    dock.view.vector_output.setFilePath(str(out_dir / "polygons.gpkg"))
    return dock


def _run(dock: SegmenterDock) -> None:
    dock.view.run_button.click()
    assert dock.task is not None, dock.view.messages.toPlainText()
    wait_until(lambda: dock.task is None)


@pytest.fixture(scope="module")
def whole_layer_run(qgis_iface, provider, colour_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dock_whole")
    QgsProject.instance().clear()
    layer = QgsRasterLayer(str(write_painted_raster(folder / "scene.tif", scene_ids())), "Scene")
    QgsProject.instance().addMapLayer(layer)
    dock = _new_dock(qgis_iface, colour_model, folder)
    dock.view.layer_combo.setLayer(layer)
    dock.view.set_checked_classes(["building", "water"])
    _run(dock)
    yield dock, folder
    dock.deleteLater()


def test_model_metadata_fills_the_summary_and_the_defaults(whole_layer_run):
    dock, _ = whole_layer_run
    text = dock.view.model_summary.toPlainText()
    assert "pixel_linear" in text and "Tile 64 px, overlap 16 px" in text
    assert all(c.name in text for c in DUBAI_CLASSES)
    assert (dock.view.tile_spin.value(), dock.view.overlap_spin.value()) == (64, 16)


def test_run_adds_the_classified_raster_styled_in_class_colours(whole_layer_run):
    dock, folder = whole_layer_run
    [raster] = QgsProject.instance().mapLayersByName("Scene land cover")
    assert raster.source() == str(folder / "classes.tif")
    renderer = raster.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [(c.value, c.label, c.color.getRgb()[:3]) for c in renderer.classes()] == [
        (c.id, c.name, c.color) for c in DUBAI_CLASSES]
    np.testing.assert_array_equal(read_band(folder / "classes.tif"), scene_ids())
    assert dock.view.progress_bar.value() == 100


def test_run_adds_the_chosen_classes_as_styled_polygons_with_only_their_legend(whole_layer_run):
    [polygons] = QgsProject.instance().mapLayersByName("Scene polygons")
    assert {f["class_name"] for f in polygons.getFeatures()} == {"Building", "Water"}
    renderer = polygons.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class_id"
    assert [c.label() for c in renderer.categories()] == ["Building", "Water"]  # not all six classes
    building = next(c for c in renderer.categories() if c.value() == 0)
    assert building.symbol().color().getRgb()[:3] == DUBAI_CLASSES[0].color


def test_the_summary_lists_area_and_share_per_class(whole_layer_run):
    dock, _ = whole_layer_run
    table = dock.view.summary_table
    assert not table.isHidden()
    rows = {table.item(r, 0).text(): (table.item(r, 1).text(), table.item(r, 2).text())
            for r in range(table.rowCount())}
    ids = scene_ids()
    water = (ids == 4).sum()
    assert rows["Water"] == (f"{water * 0.25:,.0f} m²", f"{100 * water / ids.size:.1f} %")
    assert set(rows) == {c.name for c in DUBAI_CLASSES}
    assert {area.split(" ")[-1] for area, _ in rows.values()} == {"m²"}  # one unit per table


def test_the_dock_fits_the_default_side_panel_width_with_run_in_view(whole_layer_run, tmp_path):
    dock, _ = whole_layer_run
    dock.resize(DEFAULT_DOCK_WIDTH, 795)
    dock.show()
    view = dock.view
    view.advanced_group.setCollapsed(False)  # the widest state: every group open, results shown
    QCoreApplication.processEvents()
    try:
        assert view.body.minimumSizeHint().width() <= view.scroll.viewport().width()
        assert not view.scroll.horizontalScrollBar().isVisible()
        assert view.scroll.verticalScrollBar().isVisible()  # the form is taller than the panel ...
        bottom = view.cancel_button.mapTo(dock, view.cancel_button.rect().bottomRight())
        assert view.run_button.isVisible() and bottom.y() <= dock.height() and bottom.x() <= dock.width()
        assert not view.scroll.isAncestorOf(view.run_button)  # ... but Run is pinned below it
        assert view.progress_bar.isVisible() and not view.scroll.isAncestorOf(view.progress_bar)
        summary = view.model_summary
        assert summary.height() >= summary.document().size().height()  # the summary box is not clipped
        image = dock.grab().toImage()
        assert image.save(str(tmp_path / "dock.png"), "PNG")
    finally:
        view.advanced_group.setCollapsed(True)
        dock.hide()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}
    assert len(colours) > 20  # rendered: text and the class swatches


@pytest.fixture(scope="module")
def polygon_area_run(qgis_iface, provider, colour_model, tmp_path_factory):
    """A VRT layer (not read directly by the engine) processed inside one polygon."""
    folder = tmp_path_factory.mktemp("dock_polygons")
    QgsProject.instance().clear()
    tif = write_painted_raster(folder / "scene.tif", scene_ids())
    gdal.Translate(str(folder / "scene.vrt"), str(tif), format="VRT")
    layer = QgsRasterLayer(str(folder / "scene.vrt"), "Scene VRT")
    area = QgsVectorLayer("Polygon?crs=EPSG:32640", "Area", "memory")
    feature = QgsFeature()
    # A right triangle whose bounding box is columns 20..59, rows 30..69 of the scene.
    feature.setGeometry(QgsGeometry.fromWkt(
        "POLYGON((300010 2779985, 300030 2779985, 300010 2779965, 300010 2779985))"))
    area.dataProvider().addFeatures([feature])
    QgsProject.instance().addMapLayers([layer, area])
    dock = _new_dock(qgis_iface, colour_model, folder)
    dock.view.layer_combo.setLayer(layer)
    dock.view.area_combo.setCurrentIndex(ProcessingArea.POLYGONS)
    dock.view.polygon_combo.setLayer(area)
    dock.view.polygon_group.setChecked(False)
    _run(dock)
    yield dock, folder
    dock.deleteLater()


def test_a_vrt_layer_is_exported_to_a_temporary_geotiff_first(polygon_area_run):
    dock, _ = polygon_area_run
    messages = dock.view.messages.toPlainText()
    assert "Prepared the processing area as" in messages and "input.tif" in messages
    assert QgsProject.instance().mapLayersByName("Scene VRT polygons") == []  # polygons were unticked


def test_inside_polygons_leaves_pixels_outside_as_nodata(polygon_area_run):
    _, folder = polygon_area_run
    classified = gdal.Open(str(folder / "classes.tif"))
    assert classified.GetGeoTransform() == (300010.0, 0.5, 0.0, 2779985.0, 0.0, -0.5)
    assert classified.GetRasterBand(1).GetNoDataValue() == NODATA_CLASS
    values = classified.GetRasterBand(1).ReadAsArray()
    assert values.shape == (40, 40)
    rows, cols = np.mgrid[0:40, 0:40]
    position = (cols + 0.5) / 40 + (rows + 0.5) / 40  # < 1 inside the triangle
    assert (values[position > 1.03] == NODATA_CLASS).all()
    inside = position < 0.97
    np.testing.assert_array_equal(values[inside], scene_ids()[30:70, 20:60][inside])


def test_a_file_that_is_not_a_model_is_reported_under_the_model_field(qgis_iface, provider, tmp_path):
    broken = tmp_path / "holiday.safetensors"
    broken.write_bytes(b"not a model at all")
    dock = SegmenterDock(qgis_iface)
    dock.view.model_widget.setFilePath(str(broken))
    wait_until(lambda: "Reading" not in dock.view.model_summary.toPlainText(), timeout=60)
    assert dock.model_info is None
    assert "is not a dubai_segmenter model file" in dock.view.model_summary.toPlainText()
    dock.deleteLater()


def test_an_engine_error_during_a_run_is_shown_in_the_panel(qgis_iface, provider, colour_model, tmp_path):
    QgsProject.instance().clear()
    grey = tmp_path / "grey.tif"
    write_painted_raster(grey, scene_ids())
    gdal.Translate(str(tmp_path / "one_band.tif"), str(grey), bandList=[1])
    layer = QgsRasterLayer(str(tmp_path / "one_band.tif"), "One band")
    QgsProject.instance().addMapLayer(layer)
    dock = _new_dock(qgis_iface, colour_model, tmp_path)
    dock.view.layer_combo.setLayer(layer)
    _run(dock)
    text = dock.view.messages.toPlainText()
    assert "the model needs 3 bands but the raster has 1" in text and "Traceback" not in text
    assert "The run failed" in text and not (tmp_path / "classes.tif").exists()
    dock.deleteLater()


def test_cancel_stops_the_engine_and_leaves_nothing_behind(qgis_iface, provider, colour_model, tmp_path):
    QgsProject.instance().clear()
    scene = tmp_path / "scene"
    scene.mkdir()
    # About 1,100 tiles of the colour model's 64 pixels: a run long enough to cancel mid-way.
    layer = QgsRasterLayer(str(write_painted_raster(scene / "large.tif", scene_ids(1600, 1600))), "Large")
    QgsProject.instance().addMapLayer(layer)
    out = tmp_path / "out"
    out.mkdir()
    dock = _new_dock(qgis_iface, colour_model, out)
    dock.view.layer_combo.setLayer(layer)
    dock.view.run_button.click()
    assert dock.task is not None, dock.view.messages.toPlainText()
    wait_until(lambda: dock.view.progress_bar.value() > 0 or dock.task is None)
    assert dock.task is not None, "the run finished before it could be cancelled"
    dock.view.cancel_button.click()
    wait_until(lambda: dock.task is None, timeout=60)
    text = dock.view.messages.toPlainText()
    assert text.count(CANCELLED_MESSAGE) == 1 and "fail" not in text.lower()
    assert list(out.iterdir()) == [] and child_processes_writing(out / "classes.tif") == []
    assert list(QgsProject.instance().mapLayers().values()) == [layer]
    assert dock.view.run_button.isEnabled() and not dock.view.cancel_button.isEnabled()
    dock.deleteLater()


def test_settings_are_remembered_between_sessions(qgis_iface, provider, colour_model, tmp_path):
    first = _new_dock(qgis_iface, colour_model, tmp_path)
    first.view.batch_spin.setValue(3)
    first.view.overlap_spin.setValue(0)
    first.view.min_area_spin.setValue(12.5)
    first.view.set_checked_classes(["road"])
    first.view.raster_output.setFilePath(str(tmp_path / "mine.tif"))
    first.save_settings()
    first.deleteLater()
    assert DockSettings.load().overlap == 0
    second = SegmenterDock(qgis_iface)
    wait_until(lambda: second.model_info is not None, timeout=60)
    assert second.view.batch_spin.value() == 3 and second.view.min_area_spin.value() == 12.5
    assert second.view.checked_classes() == ["road"]
    assert second.view.raster_output.filePath() == str(tmp_path / "mine.tif")
    second.deleteLater()


def test_overlap_0_chosen_in_the_dock_reaches_the_algorithm_as_0(qgis_iface, provider, colour_model, tmp_path):
    QgsProject.instance().clear()
    layer = QgsRasterLayer(str(write_painted_raster(tmp_path / "scene.tif", scene_ids())), "Scene")
    QgsProject.instance().addMapLayer(layer)
    dock = _new_dock(qgis_iface, colour_model, tmp_path)
    dock.view.layer_combo.setLayer(layer)
    dock.view.overlap_spin.setValue(0)
    _, params = dock.parameters()
    assert params["OVERLAP"] == 0 and params["TILE_SIZE"] == 64
    dock.deleteLater()


def test_the_python_placeholder_names_the_interpreter_that_will_run(qgis_iface, provider, monkeypatch, tmp_path):
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    monkeypatch.setenv("DUBAI_SEGMENTER_PYTHON", str(python))
    dock = SegmenterDock(qgis_iface)
    placeholder = dock.view.python_widget.lineEdit().placeholderText()
    assert str(python) in placeholder and "DUBAI_SEGMENTER_PYTHON" in placeholder
    assert ".venv" not in placeholder
    dock.deleteLater()


def test_a_missing_interpreter_is_explained_in_the_panel(qgis_iface, provider, tmp_path):
    QgsProject.instance().clear()
    layer = QgsRasterLayer(str(write_painted_raster(tmp_path / "scene.tif", scene_ids())), "Scene")
    QgsProject.instance().addMapLayer(layer)
    dock = SegmenterDock(qgis_iface)
    dock.view.python_widget.setFilePath(str(tmp_path / "nowhere" / "python"))
    dock.view.layer_combo.setLayer(layer)
    dock.view.run_button.click()
    assert dock.task is None
    text = dock.view.messages.toPlainText()
    assert str(tmp_path / "nowhere" / "python") in text and "does not exist" in text
    dock.deleteLater()
    set_configured_python("")


def test_installing_packages_reports_a_failure_and_keeps_the_interpreter(qgis_iface, provider, tmp_path,
                                                                         monkeypatch):
    """The Install button's path to the end, with pip pointed at an index that refuses."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    dock = SegmenterDock(qgis_iface)
    dock.install_packages(tmp_path / "env")
    assert not dock.view.install_button.isEnabled()
    wait_until(lambda: dock.view.install_button.isEnabled(), timeout=120)
    text = dock.view.messages.toPlainText()
    assert f"Installing the engine's packages into {tmp_path / 'env'}" in text
    assert f"Setting up {tmp_path / 'env'} failed at '-m pip install'" in text
    assert (tmp_path / "env" / "bin" / "python").exists()  # the venv step itself worked
    assert dock.view.python_widget.filePath() == "" and configured_python() == ""
    dock.deleteLater()


def test_class_list_items_are_checkable_with_colour_swatches(qgis_iface, provider, colour_model, tmp_path):
    dock = _new_dock(qgis_iface, colour_model, tmp_path)
    item = dock.view.class_list.item(0)
    assert item.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert item.data(Qt.ItemDataRole.DecorationRole).getRgb()[:3] == DUBAI_CLASSES[0].color
    assert dock.view.checked_classes() == ["building", "road", "water"]  # the model's defaults
    dock.deleteLater()
