# SPDX-License-Identifier: GPL-2.0-or-later
"""From the toolbox's parameters and the dock's settings to the engine's parser: the command
each builds is accepted by ``build_parser()`` with the values the user chose (an overlap of 0
included). The engine is not started: ``run_child`` records the command and reports a cancel."""
from __future__ import annotations

import sys

import processing
import pytest
from qgis.core import QgsProject, QgsRasterLayer

from dubai_segmenter.child_process.runner import EngineCancelled
from dubai_segmenter.engine.cli import build_parser
from dubai_segmenter.processing_provider import segment_algorithms, vectorize_algorithm
from dubai_segmenter.processing_provider.engine_algorithm import EngineAlgorithm
from dubai_segmenter.ui.dock_settings import DockSettings
from dubai_segmenter.ui.run_parameters import RunInputs, run_parameters
from tests.qgis.conftest import scene_ids, write_painted_raster


@pytest.fixture
def commands(monkeypatch):
    """The engine command lines the algorithms would start, parsed by the engine's parser."""
    parsed = []

    def run_child(python, arguments, outputs, feedback, start=0.0):
        assert arguments[:2] == ["-m", "dubai_segmenter"]
        parsed.append(build_parser().parse_args(arguments[2:]))  # a refused command exits 2 here
        raise EngineCancelled("only the command is checked")

    monkeypatch.setattr(EngineAlgorithm, "run_child", staticmethod(run_child))
    for module in (segment_algorithms, vectorize_algorithm):  # no dependency check of the interpreter
        monkeypatch.setattr(module, "engine_python", lambda: sys.executable)
    return parsed


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"only its name is passed on")
    return write_painted_raster(tmp_path / "scene one.tif", scene_ids()), model, tmp_path


def test_toolbox_parameters_reach_the_engine_as_chosen(provider, commands, files):
    scene, model, folder = files
    processing.run("dubai_segmenter:segment_and_vectorize", {
        "INPUT": str(scene), "BANDS": [3, 2, 1], "MODEL": str(model), "TILE_SIZE": 64, "OVERLAP": 0,
        "BATCH_SIZE": 2, "RESOLUTION": 0.25, "SCHEDULER": " tcp://10.0.0.5:8786 ", "CLASSES": "building, 4",
        "MIN_AREA": 2.5, "SIMPLIFY": 0.5, "OUTPUT": str(folder / "c.tif"), "OUTPUT_VECTOR": str(folder / "p.gpkg"),
        "QUALITY": 1,
    })
    (args,) = commands
    assert (args.command, args.inputs, args.model, args.out_raster, args.out_vector) == (
        "segment", [str(scene)], str(model), str(folder / "c.tif"), str(folder / "p.gpkg"))
    assert (args.bands, args.tile, args.overlap, args.batch, args.resolution) == ("3,2,1", 64, 0, 2, 0.25)
    assert (args.scheduler, args.classes, args.min_area, args.simplify) == (
        "tcp://10.0.0.5:8786", "building,4", 2.5, 0.5)
    assert (args.tta, args.progress) == ("flips", "lines")


def test_empty_toolbox_fields_leave_the_model_defaults(provider, commands, files):
    scene, model, folder = files
    processing.run("dubai_segmenter:segment_raster", {
        "INPUT": str(scene), "MODEL": str(model), "OUTPUT": str(folder / "c.tif"),
    })
    (args,) = commands
    assert (args.tile, args.overlap, args.bands, args.resolution, args.scheduler) == (None, None, None, None, None)
    assert (args.batch, args.out_vector, args.tta) == (1, None, "none")


def test_vectorize_parameters_reach_the_engine_as_chosen(provider, commands, files):
    scene, _, folder = files
    processing.run("dubai_segmenter:vectorize_classes", {
        "INPUT": str(scene), "CLASSES": [0, 4], "MIN_AREA": 0, "SIMPLIFY": 1.5, "OUTPUT": str(folder / "v.gpkg"),
    })
    (args,) = commands
    assert (args.command, args.classified, args.out_vector) == ("vectorize", str(scene), str(folder / "v.gpkg"))
    assert (args.classes, args.min_area, args.simplify) == ("0,4", 0.0, 1.5)


def test_the_docks_settings_reach_the_engine_as_chosen(provider, commands, files):
    scene, model, folder = files
    layer = QgsRasterLayer(str(scene), "scene")
    QgsProject.instance().addMapLayer(layer)  # the dock passes the layer by its id
    settings = DockSettings(model=str(model), tile=96, overlap=0, batch=3, resolution=0.75, classes=("road",),
                            min_area=4.0, simplify=0.0, raster_output=str(folder / "c.tif"),
                            vector_output=str(folder / "p.gpkg"), quality=1, scheduler="tcp://10.0.0.5:8786")
    algorithm, parameters = run_parameters(settings, RunInputs(layer, bands=(1, 1, 1), model_read=True))
    try:
        processing.run(algorithm, parameters)
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    (args,) = commands
    assert (args.inputs, args.model, args.out_raster, args.out_vector) == (
        [str(scene)], str(model), str(folder / "c.tif"), str(folder / "p.gpkg"))
    assert (args.bands, args.tile, args.overlap, args.batch, args.resolution) == ("1,1,1", 96, 0, 3, 0.75)
    assert (args.classes, args.min_area, args.simplify) == ("road", 4.0, 0.0)
    assert (args.tta, args.scheduler) == ("flips", "tcp://10.0.0.5:8786")
