# SPDX-License-Identifier: GPL-2.0-or-later
"""Models with 3 and 8 classes (none of Dubai's) work in the dock and Processing.

Class check boxes, the default vectorized classes, colours, the polygon legend and the
area summary must all come from the model, not from the six Dubai classes. The
qgis_process half of this is in test_qgis_process.py.
"""
from __future__ import annotations

import numpy as np
import processing
import pytest
from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import Qt

from dubai_segmenter.engine.raster_legend import raster_classes
from dubai_segmenter.ui.dock import SegmenterDock
from dubai_segmenter.ui.dock_settings import DockSettings
from tests.qgis.class_models import classes_of, paint_classes, stripes
from tests.qgis.conftest import read_band, wait_until, write_painted_raster


@pytest.fixture(params=[3, 8], ids=["3 classes", "8 classes"])
def count(request) -> int:
    return request.param


def test_the_dock_takes_classes_defaults_colours_and_areas_from_the_model(qgis_iface, provider, class_models,
                                                                          count, tmp_path):
    classes = classes_of(count)
    ids = stripes(count)
    QgsProject.instance().clear()
    scene = write_painted_raster(tmp_path / "scene.tif", ids, image=paint_classes(ids, classes))
    layer = QgsRasterLayer(str(scene), "Stripes")
    QgsProject.instance().addMapLayer(layer)
    DockSettings.clear()
    dock = SegmenterDock(qgis_iface)
    dock.view.model_widget.setFilePath(str(class_models(count)))
    wait_until(lambda: dock.model_info is not None, timeout=60)
    view = dock.view
    items = [view.class_list.item(i) for i in range(view.class_list.count())]
    assert [item.text() for item in items] == [c.name for c in classes]
    assert [item.data(Qt.ItemDataRole.DecorationRole).getRgb()[:3] for item in items] == [c.color for c in classes]
    defaults = [c.key for c in classes if c.name != "Unlabeled"]  # all but the catch-all
    assert view.checked_classes() == defaults
    chosen = [classes[1].key, classes[-1].key]
    view.set_checked_classes(chosen)
    view.layer_combo.setLayer(layer)
    view.raster_output.setFilePath(str(tmp_path / "classes.tif"))
    view.vector_output.setFilePath(str(tmp_path / "polygons.gpkg"))
    view.run_button.click()
    assert dock.task is not None, view.messages.toPlainText()
    wait_until(lambda: dock.task is None)
    assert "fail" not in view.messages.toPlainText().lower(), view.messages.toPlainText()

    np.testing.assert_array_equal(read_band(tmp_path / "classes.tif"), ids)
    assert [(c.id, c.name, c.color) for c in raster_classes(tmp_path / "classes.tif")] == [
        (c.id, c.name, c.color) for c in classes]
    [raster] = QgsProject.instance().mapLayersByName("Stripes land cover")
    assert [(e.value, e.label, e.color.getRgb()[:3]) for e in raster.renderer().classes()] == [
        (c.id, c.name, c.color) for c in classes]
    [polygons] = QgsProject.instance().mapLayersByName("Stripes polygons")
    assert {f["class_name"] for f in polygons.getFeatures()} == {classes[1].name, classes[-1].name}
    legend = [(c.label(), c.symbol().color().getRgb()[:3]) for c in polygons.renderer().categories()]
    assert legend == [(classes[1].name, classes[1].color), (classes[-1].name, classes[-1].color)]
    table = view.summary_table
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == [c.name for c in classes]
    shares = [float(table.item(r, 2).text().split()[0]) for r in range(table.rowCount())]
    assert shares == pytest.approx([100 * (ids == c.id).mean() for c in classes], abs=0.05)
    dock.deleteLater()


def test_processing_vectorizes_the_model_default_classes(provider, class_models, count, tmp_path):
    classes = classes_of(count)
    ids = stripes(count)
    scene = write_painted_raster(tmp_path / "scene.tif", ids, image=paint_classes(ids, classes))
    result = processing.run("dubai_segmenter:segment_and_vectorize", {
        "INPUT": str(scene), "MODEL": str(class_models(count)), "OUTPUT": str(tmp_path / "classes.tif"),
        "OUTPUT_VECTOR": str(tmp_path / "polygons.gpkg"),
    })
    np.testing.assert_array_equal(read_band(result["OUTPUT"]), ids)
    layer = QgsVectorLayer(f"{result['OUTPUT_VECTOR']}|layername=land_cover", "p", "ogr")
    assert {f["class_name"] for f in layer.getFeatures()} == {c.name for c in classes if c.name != "Unlabeled"}
