# SPDX-License-Identifier: GPL-2.0-or-later
"""`qgis_process run dubai_segmenter:...` works with the packaged plugin on QGIS_PLUGINPATH.

This is the command line analysts script with, and the proof that the provider loads in
a QGIS without a GUI. The plugin comes from the zip `make package` builds, unpacked into
a plugin folder; HOME points at a fresh folder so QGIS creates a clean profile, in which
the plugin must be enabled once (`qgis_process plugins enable`), as on a fresh machine.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.qgis.class_models import classes_of, paint_classes, stripes
from tests.qgis.conftest import read_band, scene_ids, write_painted_raster


def test_the_provider_lists_its_algorithms_and_the_example_model(qgis_process):
    listed = qgis_process("list")
    assert listed.returncode == 0, listed.stderr
    for algorithm in ("dubai_segmenter:segment_raster", "dubai_segmenter:segment_and_vectorize",
                      "dubai_segmenter:vectorize_classes", "dubai_segmenter:Example model - segment then vectorize"):
        assert algorithm in listed.stdout


def test_segment_and_vectorize_runs_from_the_command_line(qgis_process, colour_model, tmp_path):
    scene = write_painted_raster(tmp_path / "scene.tif", scene_ids())
    result = qgis_process(
        "--json", "run", "dubai_segmenter:segment_and_vectorize", "--",
        f"INPUT={scene}", f"MODEL={colour_model}", "CLASSES=0,4",
        f"OUTPUT={tmp_path / 'classes.tif'}", f"OUTPUT_VECTOR={tmp_path / 'polygons.gpkg'}",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    outputs = json.loads(result.stdout)["results"]
    assert outputs["OUTPUT"] == str(tmp_path / "classes.tif")
    np.testing.assert_array_equal(read_band(outputs["OUTPUT"]), scene_ids())
    areas = {a["name"]: a["share"] for a in json.loads(outputs["CLASS_AREAS"])}
    assert areas["Water"] == pytest.approx((scene_ids() == 4).mean())
    assert Path(outputs["OUTPUT_VECTOR"]).is_file()


def _grey(path: Path) -> Path:
    """A one-band copy of the scene: QGIS accepts it, the 3-band model does not (the plugin must say why)."""
    from osgeo import gdal

    rgb = write_painted_raster(path.with_name("rgb.tif"), scene_ids())
    gdal.Translate(str(path), str(rgb), bandList=[1])
    return path


def test_a_bad_input_reaches_the_plugin_and_its_hint_names_the_parameter(qgis_process, colour_model, tmp_path):
    grey = _grey(tmp_path / "grey.tif")
    result = qgis_process("run", "dubai_segmenter:segment_raster", "--", f"INPUT={grey}",
                          f"MODEL={colour_model}", f"OUTPUT={tmp_path / 'o.tif'}")
    assert result.returncode != 0
    text = result.stdout + result.stderr
    hint = "the model needs 3 bands but the raster has 1; to repeat its single band set the Bands parameter to 1,1,1"
    assert hint in text, text[-3000:]  # from the engine, through the plugin, in QGIS's words
    # qgis_process 3.22 itself repeats an algorithm's error; the plugin adds no copy of its own
    # (the engine's raw "ERROR: ..." line is not logged) and no traceback for a bad input.
    assert "ERROR: the model" not in text and "--bands" not in text and "Traceback" not in text, text[-3000:]
    assert not (tmp_path / "o.tif").exists()


def test_bands_given_as_a_comma_list_reach_the_engine(qgis_process, colour_model, tmp_path):
    grey = _grey(tmp_path / "grey.tif")
    result = qgis_process("run", "dubai_segmenter:segment_raster", "--", f"INPUT={grey}", "BANDS=1,1,1",
                          f"MODEL={colour_model}", f"OUTPUT={tmp_path / 'o.tif'}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "--bands 1,1,1" in result.stdout + result.stderr  # the command line it ran
    assert "Input: bands 1,1,1 of 1 used; values 8-bit values" in result.stdout + result.stderr
    assert read_band(tmp_path / "o.tif").shape == scene_ids().shape
    bad = qgis_process("run", "dubai_segmenter:segment_raster", "--", f"INPUT={grey}", "BANDS=1,x,1",
                       f"MODEL={colour_model}", f"OUTPUT={tmp_path / 'p.tif'}")
    assert bad.returncode != 0 and "not a list of band numbers" in bad.stdout + bad.stderr


@pytest.mark.parametrize("count, chosen", [(3, ""), (8, "grass,pool")], ids=["3 classes", "8 classes"])
def test_a_model_with_other_classes_runs_from_the_command_line(qgis_process, class_models, count, chosen, tmp_path):
    classes = classes_of(count)
    ids = stripes(count)
    scene = write_painted_raster(tmp_path / "scene.tif", ids, image=paint_classes(ids, classes))
    result = qgis_process(
        "--json", "run", "dubai_segmenter:segment_and_vectorize", "--",
        f"INPUT={scene}", f"MODEL={class_models(count)}", f"OUTPUT={tmp_path / 'classes.tif'}",
        f"OUTPUT_VECTOR={tmp_path / 'polygons.gpkg'}", *([f"CLASSES={chosen}"] if chosen else []),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    outputs = json.loads(result.stdout)["results"]
    np.testing.assert_array_equal(read_band(outputs["OUTPUT"]), ids)
    assert [a["name"] for a in json.loads(outputs["CLASS_AREAS"])] == [c.name for c in classes]
    polygons = gdal.OpenEx(outputs["OUTPUT_VECTOR"])
    names = {feature["class_name"] for feature in polygons.GetLayerByName("land_cover")}
    wanted = {"Grass", "Pool"} if chosen else {c.name for c in classes if c.name != "Unlabeled"}
    assert names == wanted
