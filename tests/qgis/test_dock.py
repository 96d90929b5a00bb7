"""The dock panel driven as an analyst would: choose a layer and a model, Run, wait.

Two engine runs are shared by the tests (module fixtures): a plain GeoTIFF layer over
its whole extent, and a VRT layer processed inside a polygon (the temporary-export path).
The screenshot for the README is taken from the finished first run.
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
    QgsSettings,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QImage

from dubai_segmenter.engine.classes import DUBAI_CLASSES, NODATA_CLASS
from dubai_segmenter.processing_provider.engine_python import configured_python, set_configured_python
from dubai_segmenter.ui.dock import AREA_POLYGONS, SETTINGS_GROUP, SegmenterDock
from tests.qgis.conftest import REPO, child_processes_writing, read_band, scene_ids, wait_until, write_painted_raster

SCREENSHOT = REPO / "docs" / "dock.png"


def _clear_dock_settings() -> None:
    QgsSettings().remove(SETTINGS_GROUP.rstrip("/"))


@pytest.fixture(autouse=True)
def default_settings():
    """Each test starts from the panel's defaults, not from what an earlier run saved."""
    _clear_dock_settings()


def _new_dock(iface, model: Path, out_dir: Path) -> SegmenterDock:
    _clear_dock_settings()
    dock = SegmenterDock(iface)
    dock.resize(440, 1000)
    dock.model_widget.setFilePath(str(model))
    wait_until(lambda: dock.model_info is not None, timeout=60)
    dock.raster_output.setFilePath(str(out_dir / "classes.tif"))
    dock.vector_output.setFilePath(str(out_dir / "polygons.gpkg"))
    return dock


def _run(dock: SegmenterDock) -> None:
    dock.run_button.click()
    assert dock.task is not None, dock.messages.toPlainText()
    wait_until(lambda: dock.task is None)


@pytest.fixture(scope="module")
def whole_layer_run(qgis_iface, provider, colour_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dock_whole")
    QgsProject.instance().clear()
    layer = QgsRasterLayer(str(write_painted_raster(folder / "scene.tif", scene_ids())), "Scene")
    QgsProject.instance().addMapLayer(layer)
    dock = _new_dock(qgis_iface, colour_model, folder)
    dock.layer_combo.setLayer(layer)
    dock.set_checked_classes(["building", "water"])
    _run(dock)
    yield dock, folder
    dock.deleteLater()


def test_model_metadata_fills_the_summary_and_the_defaults(whole_layer_run):
    dock, _ = whole_layer_run
    text = dock.model_summary.toPlainText()
    assert "pixel_linear" in text and "Tile 64 px, overlap 16 px" in text
    assert all(c.name in text for c in DUBAI_CLASSES)
    assert (dock.tile_spin.value(), dock.overlap_spin.value()) == (64, 16)


def test_run_adds_the_classified_raster_styled_in_class_colours(whole_layer_run):
    dock, folder = whole_layer_run
    [raster] = QgsProject.instance().mapLayersByName("Scene land cover")
    assert raster.source() == str(folder / "classes.tif")
    renderer = raster.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [(c.value, c.label, c.color.getRgb()[:3]) for c in renderer.classes()] == [
        (c.id, c.name, c.color) for c in DUBAI_CLASSES]
    np.testing.assert_array_equal(read_band(folder / "classes.tif"), scene_ids())
    assert dock.progress_bar.value() == 100


def test_run_adds_the_chosen_classes_as_styled_polygons(whole_layer_run):
    [polygons] = QgsProject.instance().mapLayersByName("Scene polygons")
    assert {f["class_name"] for f in polygons.getFeatures()} == {"Building", "Water"}
    renderer = polygons.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class_id"
    building = next(c for c in renderer.categories() if c.value() == 0)
    assert building.label() == "Building" and building.symbol().color().getRgb()[:3] == DUBAI_CLASSES[0].color


def test_the_summary_lists_area_and_share_per_class(whole_layer_run):
    dock, _ = whole_layer_run
    table = dock.summary_table
    assert table.isVisible() or not table.isHidden()
    rows = {table.item(r, 0).text(): (table.item(r, 1).text(), table.item(r, 2).text()) for r in range(table.rowCount())}
    ids = scene_ids()
    water = (ids == 4).sum()
    assert rows["Water"] == (f"{water * 0.25:,.0f} m²", f"{100 * water / ids.size:.1f} %")
    assert set(rows) == {c.name for c in DUBAI_CLASSES}


def test_screenshot_of_the_dock_for_the_readme(whole_layer_run):
    dock, _ = whole_layer_run
    dock.show()
    body = dock.widget().widget().minimumSizeHint()
    assert body.width() <= 440  # fits a side dock: no sideways scrolling
    dock.resize(440, body.height() + 10)  # the whole panel, without a scroll bar
    image = dock.grab().toImage().convertToFormat(QImage.Format_Indexed8)  # a palette keeps the PNG small
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert image.save(str(SCREENSHOT), "PNG")
    dock.hide()
    assert SCREENSHOT.stat().st_size < 250_000
    # Not blank: the rendered panel has text and the class swatches.
    colours = {image.pixel(x, y) for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}
    assert len(colours) > 20
    assert image.width() == 440


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
    dock.layer_combo.setLayer(layer)
    dock.area_combo.setCurrentIndex(AREA_POLYGONS)
    dock.polygon_combo.setLayer(area)
    dock.polygon_group.setChecked(False)
    _run(dock)
    yield dock, folder
    dock.deleteLater()


def test_a_vrt_layer_is_exported_to_a_temporary_geotiff_first(polygon_area_run):
    dock, _ = polygon_area_run
    messages = dock.messages.toPlainText()
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
    dock.model_widget.setFilePath(str(broken))
    wait_until(lambda: "Reading" not in dock.model_summary.toPlainText(), timeout=60)
    assert dock.model_info is None
    assert "is not a dubai_segmenter model file" in dock.model_summary.toPlainText()
    dock.deleteLater()


def test_an_engine_error_during_a_run_is_shown_in_the_panel(qgis_iface, provider, colour_model, tmp_path):
    QgsProject.instance().clear()
    grey = tmp_path / "grey.tif"
    write_painted_raster(grey, scene_ids())
    gdal.Translate(str(tmp_path / "one_band.tif"), str(grey), bandList=[1])
    layer = QgsRasterLayer(str(tmp_path / "one_band.tif"), "One band")
    QgsProject.instance().addMapLayer(layer)
    dock = _new_dock(qgis_iface, colour_model, tmp_path)
    dock.layer_combo.setLayer(layer)
    _run(dock)
    text = dock.messages.toPlainText()
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
    dock.layer_combo.setLayer(layer)
    dock.run_button.click()
    assert dock.task is not None, dock.messages.toPlainText()
    wait_until(lambda: dock.progress_bar.value() > 0 or dock.task is None)
    assert dock.task is not None, "the run finished before it could be cancelled"
    dock.cancel_button.click()
    wait_until(lambda: dock.task is None, timeout=60)
    assert "Cancelled; nothing was written." in dock.messages.toPlainText()
    assert list(out.iterdir()) == [] and child_processes_writing(out / "classes.tif") == []
    assert list(QgsProject.instance().mapLayers().values()) == [layer]
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()
    dock.deleteLater()


def test_settings_are_remembered_between_sessions(qgis_iface, provider, tmp_path):
    first = SegmenterDock(qgis_iface)
    first.batch_spin.setValue(3)
    first.min_area_spin.setValue(12.5)
    first.set_checked_classes(["road"])
    first.raster_output.setFilePath(str(tmp_path / "mine.tif"))
    first.save_settings()
    first.deleteLater()
    second = SegmenterDock(qgis_iface)
    assert second.batch_spin.value() == 3 and second.min_area_spin.value() == 12.5
    assert second.checked_classes() == ["road"]
    assert second.raster_output.filePath() == str(tmp_path / "mine.tif")
    second.deleteLater()


def test_a_missing_interpreter_is_explained_in_the_panel(qgis_iface, provider, tmp_path):
    QgsProject.instance().clear()
    layer = QgsRasterLayer(str(write_painted_raster(tmp_path / "scene.tif", scene_ids())), "Scene")
    QgsProject.instance().addMapLayer(layer)
    dock = SegmenterDock(qgis_iface)
    dock.python_widget.setFilePath(str(tmp_path / "nowhere" / "python"))
    dock.layer_combo.setLayer(layer)
    dock.run_button.click()
    assert dock.task is None
    text = dock.messages.toPlainText()
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
    assert not dock.install_button.isEnabled()
    wait_until(lambda: dock.install_button.isEnabled(), timeout=120)
    text = dock.messages.toPlainText()
    assert f"Installing the engine's packages into {tmp_path / 'env'}" in text
    assert f"Setting up {tmp_path / 'env'} failed at '-m pip install'" in text
    assert (tmp_path / "env" / "bin" / "python").exists()  # the venv step itself worked
    assert dock.python_widget.filePath() == "" and configured_python() == ""
    dock.deleteLater()


def test_class_list_items_are_checkable_with_colour_swatches(qgis_iface, provider):
    dock = SegmenterDock(qgis_iface)
    item = dock.class_list.item(0)
    assert item.flags() & Qt.ItemIsUserCheckable
    assert item.data(Qt.DecorationRole).getRgb()[:3] == DUBAI_CLASSES[0].color
    dock.deleteLater()
