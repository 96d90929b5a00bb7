# SPDX-License-Identifier: GPL-2.0-or-later
"""The provider's algorithms through processing.run, as the toolbox, batch and modeler run them.

Each engine run starts TensorFlow in a child process (5-10 s), so the runs are shared
between tests through module fixtures and each test checks one thing a user relies on.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFeature,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from dubai_segmenter.engine.classes import DUBAI_CLASSES, NODATA_CLASS
from dubai_segmenter.processing_provider.engine_python import set_configured_python
from tests.engine.helpers import paint
from tests.qgis.conftest import child_processes_writing, read_band, scene_ids, write_painted_raster

BUILDING, LAND, ROAD, VEGETATION, WATER = 0, 1, 2, 3, 4
EXAMPLE_MODEL = "Example model - segment then vectorize"


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps what the algorithm told the user."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []
        self.infos: list[str] = []

    def reportError(self, error, fatalError=False):
        self.errors.append(error)

    def pushInfo(self, info):
        self.infos.append(info)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Two inputs for a batch: the scene in UTM 40N, and its mirror image in Web Mercator."""
    folder = tmp_path_factory.mktemp("scenes")
    first = scene_ids()
    second = np.ascontiguousarray(first[::-1, ::-1])
    return [
        (write_painted_raster(folder / "scene one.tif", first), first, "EPSG:32640"),
        (write_painted_raster(folder / "scene_two.tif", second, epsg=3857, origin=(6_150_000.0, 2_900_000.0),
                              pixel=0.7), second, "EPSG:3857"),
    ]


@pytest.fixture(scope="module")
def batch(provider, scenes, colour_model, tmp_path_factory):
    """Segment raster over two inputs, one call per row as the batch interface does."""
    out = tmp_path_factory.mktemp("batch")
    results = []
    for index, (path, _, _) in enumerate(scenes):
        feedback = RecordingFeedback()
        result = processing.run("dubai_segmenter:segment_raster", {
            "INPUT": str(path), "MODEL": str(colour_model), "OUTPUT": str(out / f"classes_{index}.tif"),
        }, feedback=feedback)
        results.append((result, feedback))
    return results


def test_batch_outputs_keep_crs_and_extent_and_hold_the_painted_classes(scenes, batch):
    for (path, ids, authid), (result, _) in zip(scenes, batch):
        output = Path(result["OUTPUT"])
        assert output.is_file()
        source, classified = QgsRasterLayer(str(path), "in"), QgsRasterLayer(str(output), "out")
        assert classified.crs().authid() == authid == source.crs().authid()
        assert classified.extent() == source.extent()
        assert (classified.width(), classified.height()) == (source.width(), source.height())
        np.testing.assert_array_equal(read_band(output), ids)


def test_class_areas_are_reported_per_class(scenes, batch):
    (_, ids, _), (result, feedback) = scenes[0], batch[0]
    areas = {a["name"]: a for a in json.loads(result["CLASS_AREAS"])}
    assert [a for a in areas] == [c.name for c in DUBAI_CLASSES]
    building = areas["Building"]
    assert building["pixels"] == int((ids == BUILDING).sum())
    assert building["area_m2"] == pytest.approx(building["pixels"] * 0.25)
    assert building["share"] == pytest.approx((ids == BUILDING).mean())
    assert sum(a["share"] for a in areas.values()) == pytest.approx(1.0)
    assert any("Area per class" in info for info in feedback.infos)


def test_vectorize_classes_chained_on_a_classified_output(provider, batch, tmp_path):
    classified = batch[0][0]["OUTPUT"]
    result = processing.run("dubai_segmenter:vectorize_classes", {
        "INPUT": classified, "CLASSES": [BUILDING, WATER], "OUTPUT": str(tmp_path / "polygons.gpkg"),
    })
    layer = QgsVectorLayer(f"{result['OUTPUT']}|layername=land_cover", "polygons", "ogr")
    assert layer.isValid() and layer.crs().authid() == "EPSG:32640"
    features = list(layer.getFeatures())
    assert sorted(f["class_name"] for f in features) == ["Building", "Building", "Water"]
    assert all(f.geometry().isGeosValid() for f in features)
    water = next(f for f in features if f["class_id"] == WATER)
    assert water.geometry().area() == pytest.approx(30 * 45 * 0.25)


@pytest.fixture(scope="module")
def cropped_and_masked(provider, scenes, colour_model, tmp_path_factory):
    """Segment and vectorize inside one polygon of a cropped extent, on a VRT of the scene."""
    folder = tmp_path_factory.mktemp("masked")
    vrt = folder / "scene.vrt"
    gdal.Translate(str(vrt), str(scenes[0][0]), format="VRT")
    # A triangle over the left half; the extent cuts off the top 10 m (20 rows).
    x0, y0 = 300_000.0, 2_780_000.0
    mask = QgsVectorLayer("Polygon?crs=EPSG:32640", "area", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromWkt(
        f"POLYGON(({x0} {y0}, {x0 + 32} {y0}, {x0} {y0 - 48}, {x0} {y0}))"))
    mask.dataProvider().addFeatures([feature])
    extent = f"{x0},{x0 + 64},{y0 - 48},{y0 - 10} [EPSG:32640]"
    result = processing.run("dubai_segmenter:segment_and_vectorize", {
        "INPUT": str(vrt), "MODEL": str(colour_model), "EXTENT": extent, "MASK": mask,
        "CLASSES": [BUILDING, ROAD], "MIN_AREA": 5.0,
        "OUTPUT": str(folder / "classes.tif"), "OUTPUT_VECTOR": str(folder / "polygons.gpkg"),
    })
    # Yield, not return: the mask layer must outlive the events QGIS queued for it during the
    # run; freed when this function returned, the next event flush crashed (segfault).
    yield result, scenes[0][1]
    del mask


def test_extent_and_polygons_limit_the_processed_area(cropped_and_masked):
    result, ids = cropped_and_masked
    classified = gdal.Open(result["OUTPUT"])
    x0, pixel, _, top, _, _ = classified.GetGeoTransform()
    # Cropped to the polygon's bounds within the extent, on the input's pixel grid.
    assert (x0, top, pixel) == (300_000.0, 2_780_000.0 - 10, 0.5)
    assert (classified.RasterXSize, classified.RasterYSize) == (64, 76)
    values = classified.GetRasterBand(1).ReadAsArray()
    rows, cols = np.mgrid[0:76, 0:64]
    y = 20 + rows + 0.5  # input rows
    inside = (cols + 0.5) / 64 + y / 96 <= 1  # under the triangle's hypotenuse
    expected = np.where(inside, ids[20:96, 0:64], NODATA_CLASS)
    edge = np.abs((cols + 0.5) / 64 + y / 96 - 1) < 0.03  # GDAL's cutline rounds pixel centres
    np.testing.assert_array_equal(values[~edge], expected[~edge])
    assert classified.GetRasterBand(1).GetNoDataValue() == NODATA_CLASS


def test_polygons_of_the_masked_run_stay_inside_the_area(cropped_and_masked):
    result, _ = cropped_and_masked
    layer = QgsVectorLayer(f"{result['OUTPUT_VECTOR']}|layername=land_cover", "p", "ogr")
    features = list(layer.getFeatures())
    assert {f["class_name"] for f in features} == {"Building", "Road"}
    assert all(f["area"] >= 5.0 for f in features)
    for f in features:
        bounds = f.geometry().boundingBox()
        assert bounds.xMinimum() >= 300_000.0 and bounds.yMaximum() <= 2_780_000.0 - 10 + 1e-6


def test_the_example_model_is_loaded_with_valid_children(provider):
    model = provider.algorithm(EXAMPLE_MODEL)
    assert model is not None
    for child in ("segment", "vectorize"):
        assert model.validateChildAlgorithm(child) == (True, [])
    assert [d.name() for d in model.destinationParameterDefinitions()] == [
        "segment:classified_raster", "vectorize:polygons"]


def test_the_example_model_chains_segment_and_vectorize(provider, scenes, colour_model, tmp_path):
    result = processing.run(f"dubai_segmenter:{EXAMPLE_MODEL}", {
        "input_raster": str(scenes[0][0]), "model_file": str(colour_model),
        "segment:classified_raster": str(tmp_path / "classes.tif"),
        "vectorize:polygons": str(tmp_path / "polygons.gpkg"),
    })
    np.testing.assert_array_equal(read_band(result["segment:classified_raster"]), scenes[0][1])
    layer = QgsVectorLayer(f"{result['vectorize:polygons']}|layername=land_cover", "p", "ogr")
    assert {f["class_name"] for f in layer.getFeatures()} == {"Building", "Road", "Water"}


def test_toolbox_outputs_are_loaded_in_the_class_colours(provider, batch, tmp_path):
    """Runs that load their outputs (toolbox, batch, modeler) style them as the dock does."""
    result = processing.runAndLoadResults("dubai_segmenter:vectorize_classes", {
        "INPUT": batch[0][0]["OUTPUT"], "OUTPUT": str(tmp_path / "loaded.gpkg")})
    [layer] = [lyr for lyr in QgsProject.instance().mapLayers().values()
               if lyr.source().startswith(result["OUTPUT"])]
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class_id"
    # Only the classes vectorized (the defaults: building, road, water) are in the legend.
    assert [c.label() for c in renderer.categories()] == ["Building", "Road", "Water"]
    QgsProject.instance().removeMapLayer(layer)


@pytest.fixture(scope="module")
def xyz_tiles(tmp_path_factory) -> str:
    """Source of an XYZ tile layer served from files (offline): west of 0 building, east water.

    A source string, not a layer: pytest-qgis deletes layer-valued fixtures after each test.
    """
    folder = tmp_path_factory.mktemp("tiles")
    ids = np.full((256, 256), WATER, dtype=np.uint8)
    ids[:, :128] = BUILDING
    image = paint(ids)
    tile = gdal.GetDriverByName("MEM").Create("", 256, 256, 3, gdal.GDT_Byte)
    for band in range(3):
        tile.GetRasterBand(band + 1).WriteArray(image[:, :, band])
    (folder / "0" / "0").mkdir(parents=True)
    gdal.GetDriverByName("PNG").CreateCopy(str(folder / "0" / "0" / "0.png"), tile)
    url = f"file://{folder}/%7Bz%7D/%7Bx%7D/%7By%7D.png"
    return f"type=xyz&url={url}&zmin=0&zmax=0"


def _web_layer(source: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(source, "tiles", "wms")
    assert layer.isValid()
    return layer


def test_a_web_layer_needs_a_processing_resolution(provider, xyz_tiles, colour_model, tmp_path):
    message = _error_of("dubai_segmenter:segment_raster", {
        "INPUT": _web_layer(xyz_tiles), "MODEL": str(colour_model), "OUTPUT": str(tmp_path / "o.tif")})
    assert "has no native pixel size (a web map layer): choose a processing resolution" in message


def test_a_web_layer_is_exported_at_the_chosen_resolution_and_segmented(provider, xyz_tiles, colour_model, tmp_path):
    result = processing.run("dubai_segmenter:segment_raster", {
        "INPUT": _web_layer(xyz_tiles), "MODEL": str(colour_model), "RESOLUTION": 20_000,
        "EXTENT": "-1000000,1000000,-600000,600000 [EPSG:3857]", "OUTPUT": str(tmp_path / "web.tif"),
    })
    classified = QgsRasterLayer(result["OUTPUT"], "web")
    assert classified.crs().authid() == "EPSG:3857"
    assert (classified.width(), classified.height()) == (100, 60)
    values = read_band(result["OUTPUT"])
    assert (values[:, :45] == BUILDING).all() and (values[:, 55:] == WATER).all()


# --- cancel and errors ----------------------------------------------------------------

class CancelDuringEngine(RecordingFeedback):
    """Cancels as soon as the engine reports a tile (the second half of the bar)."""

    def __init__(self) -> None:
        super().__init__()
        self.progressChanged.connect(lambda percent: self.cancel() if percent > 50.5 else None)


def test_cancel_stops_the_child_process_and_leaves_no_output(provider, colour_model, tmp_path):
    big = write_painted_raster(tmp_path / "big.tif", np.tile(scene_ids(), (12, 12)))  # 1152 x 1536
    out = tmp_path / "out" / "classes.tif"
    out.parent.mkdir()
    feedback = CancelDuringEngine()
    try:
        result = processing.run("dubai_segmenter:segment_raster", {
            "INPUT": str(big), "MODEL": str(colour_model), "OUTPUT": str(out),
        }, feedback=feedback)
    except QgsProcessingException:
        result = {}
    assert feedback.isCanceled() and "OUTPUT" not in result
    assert list(out.parent.iterdir()) == []
    assert child_processes_writing(out) == []


def _error_of(algorithm: str, parameters: dict) -> str:
    """The message processing.run raises (the toolbox shows the same text in its log)."""
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException) as error:
        processing.run(algorithm, parameters, feedback=feedback)
    text = str(error.value)
    assert "Traceback" not in text + "\n".join(feedback.errors)
    return text


def test_a_broken_model_file_gives_the_engine_message(provider, scenes, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    message = _error_of("dubai_segmenter:segment_raster", {
        "INPUT": str(scenes[0][0]), "MODEL": str(broken), "OUTPUT": str(tmp_path / "o.tif")})
    assert "not a dubai_segmenter model file" in message
    assert not (tmp_path / "o.tif").exists()


def test_a_missing_model_file_is_named(provider, scenes, tmp_path):
    message = _error_of("dubai_segmenter:segment_raster", {
        "INPUT": str(scenes[0][0]), "MODEL": str(tmp_path / "none.safetensors"), "OUTPUT": str(tmp_path / "o.tif")})
    assert f"Model file not found: {tmp_path / 'none.safetensors'}" in message


def test_a_missing_interpreter_is_named_with_the_fix(provider, scenes, colour_model, tmp_path):
    set_configured_python(str(tmp_path / "no-python"))
    message = _error_of("dubai_segmenter:segment_raster", {
        "INPUT": str(scenes[0][0]), "MODEL": str(colour_model), "OUTPUT": str(tmp_path / "o.tif")})
    assert str(tmp_path / "no-python") in message and "DUBAI_SEGMENTER_PYTHON" in message


def test_an_interpreter_without_packages_gets_the_pip_command(provider, scenes, colour_model, tmp_path):
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    set_configured_python(str(tmp_path / "venv" / "bin" / "python"))
    message = _error_of("dubai_segmenter:segment_raster", {
        "INPUT": str(scenes[0][0]), "MODEL": str(colour_model), "OUTPUT": str(tmp_path / "o.tif")})
    assert "lacks packages the engine needs: numpy, rasterio" in message
    assert "-m pip install --upgrade numpy==1.26.4" in message


def test_outputs_other_than_geotiff_and_geopackage_are_refused_up_front(provider):
    algorithm = provider.algorithm("segment_and_vectorize")
    assert provider.supportedOutputRasterLayerExtensions() == ["tif"]
    assert provider.supportedOutputVectorLayerExtensions() == ["gpkg"]
    assert algorithm.parameterDefinition("OUTPUT").defaultFileExtension() == "tif"
    assert algorithm.parameterDefinition("OUTPUT_VECTOR").defaultFileExtension() == "gpkg"



class CommandFeedback(RecordingFeedback):
    """Also keeps the engine's command line and every progress value."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[str] = []
        self.progress: list[float] = []
        self.progressChanged.connect(self.progress.append)

    def pushCommandInfo(self, info):
        self.commands.append(info)


def test_overlap_0_stays_0_and_progress_follows_the_engine(provider, scenes, colour_model, tmp_path):
    feedback = CommandFeedback()
    result = processing.run("dubai_segmenter:segment_raster", {
        "INPUT": str(scenes[0][0]), "MODEL": str(colour_model), "OVERLAP": 0, "OUTPUT": str(tmp_path / "o.tif"),
    }, feedback=feedback)
    [command] = feedback.commands
    assert " --overlap 0 " in f"{command} "  # not the model's 16
    np.testing.assert_array_equal(read_band(result["OUTPUT"]), scenes[0][1])
    # A local GeoTIFF needs no preparation: the bar is the engine's, no jump to 50 % first.
    moving = [p for p in feedback.progress if 0 < p < 100]
    assert moving and moving[0] <= 25 and moving == sorted(moving)  # 4 tiles: the first is 25 %


def test_help_is_paragraphs_and_labels_are_short(provider):
    for algorithm in provider.algorithms():
        if not algorithm.id().startswith("dubai_segmenter:") or algorithm.name().startswith("Example"):
            continue
        text = algorithm.shortHelpString()
        assert "\n" not in text and text.startswith("<p>"), algorithm.id()
        for parameter in algorithm.parameterDefinitions():
            assert len(parameter.description()) <= 22, parameter.description()


def test_a_dask_scheduler_gives_the_same_raster_as_this_computer(provider, scenes, tmp_path):
    """The advanced "Dask scheduler" parameter: the engine runs on that cluster, same pixels."""
    distributed = pytest.importorskip("distributed")
    from tests.engine.test_distributed import save_conv_onnx

    model = save_conv_onnx(tmp_path / "conv.onnx")
    outputs = {}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        for name, scheduler in (("here", ""), ("cluster", cluster.scheduler_address)):
            result = processing.run("dubai_segmenter:segment_raster", {
                "INPUT": str(scenes[0][0]), "MODEL": str(model), "SCHEDULER": scheduler,
                "OUTPUT": str(tmp_path / f"{name}.tif"),
            })
            outputs[name] = read_band(result["OUTPUT"])
        assert any(name.startswith("dubai-segmenter-model-") for name in cluster.scheduler.worker_plugins)
    definition = provider.algorithm("segment_raster").parameterDefinition("SCHEDULER")
    assert definition.flags() & definition.FlagAdvanced and definition.flags() & definition.FlagOptional
    np.testing.assert_array_equal(outputs["cluster"], outputs["here"])
    assert (outputs["here"] != NODATA_CLASS).any()


class ConsoleFeedback(RecordingFeedback):
    """Also keeps the run log (the engine's stderr lines reach it as console info)."""

    def __init__(self) -> None:
        super().__init__()
        self.console: list[str] = []

    def pushConsoleInfo(self, info):
        self.console.append(info)

    def pushDebugInfo(self, info):
        self.console.append(info)


def _write_raster(path, bands: np.ndarray, gdal_type) -> str:
    from osgeo import gdal, osr

    count, height, width = bands.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), width, height, count, gdal_type)
    dataset.SetGeoTransform((300_000.0, 0.3, 0.0, 2_800_000.0, 0.0, -0.3))
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(32640)
    dataset.SetProjection(reference.ExportToWkt())
    for index, band in enumerate(bands, start=1):
        dataset.GetRasterBand(index).WriteArray(band)
    dataset = None
    return str(path)


def test_a_one_band_raster_is_explained_once_naming_the_bands_parameter(provider, colour_model, tmp_path):
    grey = _write_raster(tmp_path / "grey.tif", paint(scene_ids())[None, :, :, 0], gdal.GDT_Byte)
    feedback = ConsoleFeedback()
    with pytest.raises(QgsProcessingException) as error:
        processing.run("dubai_segmenter:segment_raster", {
            "INPUT": grey, "MODEL": str(colour_model), "OUTPUT": str(tmp_path / "o.tif")}, feedback=feedback)
    hint = "to repeat its single band set the Bands parameter to 1,1,1"
    assert hint in str(error.value) and "--bands" not in str(error.value)
    shown = [str(error.value), *feedback.errors, *feedback.infos, *feedback.console]
    assert sum(hint in text for text in shown) == 1, shown  # once: not also in the run log


def test_the_run_log_names_ignored_bands_and_each_bands_stretch(provider, colour_model, tmp_path):
    rgb = paint(scene_ids()).astype(np.uint16) * 16  # 12-bit data and a NIR band the model does not read
    nir = np.full(scene_ids().shape, 4000, np.uint16)
    bgrn = np.stack([rgb[..., 2], rgb[..., 1], rgb[..., 0], nir])
    source = _write_raster(tmp_path / "four.tif", bgrn, gdal.GDT_UInt16)
    feedback = ConsoleFeedback()
    processing.run("dubai_segmenter:segment_raster", {
        "INPUT": source, "BANDS": [3, 2, 1], "MODEL": str(colour_model), "OUTPUT": str(tmp_path / "o.tif")},
        feedback=feedback)
    (line,) = [text for text in feedback.console if text.startswith("Input: ")]
    assert line.startswith("Input: bands 3,2,1 of 4 used; band 4 ignored; values stretched band 3 "), line
    assert ", band 2 " in line and ", band 1 " in line and "-> 0..255" in line


def test_best_quality_averages_flipped_tiles_and_keeps_the_classes(provider, scenes, colour_model, tmp_path):
    """Quality "Best" runs the engine with --tta flips; a per-pixel model gives the same classes."""
    feedback = CommandFeedback()
    result = processing.run("dubai_segmenter:segment_raster", {
        "INPUT": str(scenes[0][0]), "MODEL": str(colour_model), "QUALITY": 1, "OUTPUT": str(tmp_path / "best.tif"),
    }, feedback=feedback)
    [command] = feedback.commands
    assert " --tta flips " in f"{command} "
    np.testing.assert_array_equal(read_band(result["OUTPUT"]), scenes[0][1])
