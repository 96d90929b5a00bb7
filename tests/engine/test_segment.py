# SPDX-License-Identifier: GPL-2.0-or-later
"""Sliding-window segmentation end to end: exact classes, georeference, no data, styling, cleanup."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from dubai_segmenter.engine import geotiff_output
from dubai_segmenter.engine.classes import DUBAI_CLASSES, NODATA_CLASS
from dubai_segmenter.engine.errors import Cancelled, RasterInputError
from dubai_segmenter.engine.predictors import open_predictor
from dubai_segmenter.engine.segment import SegmentOptions, segment_array, segment_raster
from tests.engine.helpers import PALETTE, colour_metadata, paint
from tests.engine.rasters import CRS, TRANSFORM, block_classes, write_painted, write_raster


def nearest_class(rgb: np.ndarray) -> np.ndarray:
    """The class whose colour is nearest: the truth for any colour, painted or not."""
    distance = ((rgb[..., None, :].astype(np.float64) - PALETTE.astype(np.float64)) ** 2).sum(-1)
    return distance.argmin(-1)


class NumpyColourPredictor:
    """Per-pixel nearest-colour softmax in numpy: exact truth, no TensorFlow, any tile size."""

    backend = "numpy"

    def __init__(self, tile_size: int) -> None:
        self.metadata = colour_metadata()
        self.tile_size = tile_size
        self.tiles_seen = 0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        assert batch.shape[1:] == (self.tile_size, self.tile_size, 3) and batch.dtype == np.float32
        self.tiles_seen += len(batch)
        distance = ((batch[..., None, :] * 255 - PALETTE.astype(np.float32)) ** 2).sum(-1)
        scores = np.exp(-(distance - distance.min(-1, keepdims=True)) / 500.0)
        return (scores / scores.sum(-1, keepdims=True)).astype(np.float32)


class BadBorderPredictor(NumpyColourPredictor):
    """Confidently wrong (class 1) within ``border`` pixels of every tile edge, right (class 0) inside,
    like a network that lacks context at tile borders."""

    def __init__(self, tile_size: int, border: int) -> None:
        super().__init__(tile_size)
        inside = np.zeros((tile_size, tile_size), bool)
        inside[border:-border, border:-border] = True
        self.probabilities = np.full((tile_size, tile_size, 6), 0.02, np.float32)
        self.probabilities[inside, 0] = 0.9
        self.probabilities[~inside, 1] = 0.9

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.repeat(self.probabilities[None], len(batch), axis=0)


SIZES = [(20, 17), (100, 130), (257, 300)]  # smaller than a tile; not multiples of any stride
TILINGS = [(32, 0), (32, 8), (64, 16), (64, 32)]


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("tile, overlap", TILINGS)
@pytest.mark.parametrize("batch", [1, 3])
def test_segment_array_finds_every_pixel_class(height, width, tile, overlap, batch):
    truth = block_classes(height, width, seed=height)
    image = paint(truth).astype(np.float32) / 255
    probabilities = segment_array(image, NumpyColourPredictor(tile), tile, overlap, batch_size=batch)
    assert probabilities.shape == (height, width, 6)
    np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(-1), truth)


def test_blending_hides_what_a_model_gets_wrong_at_tile_borders():
    predictor = BadBorderPredictor(64, border=6)
    probabilities = segment_array(np.zeros((300, 200, 3), np.float32), predictor, 64, 16)
    # The window gives border pixels so little weight that the neighbouring tile's centre wins,
    # everywhere, the raster's own edges included (they sit inside the reflected margin).
    assert (probabilities.argmax(-1) == 0).all()


def test_segment_array_invalid_pixels_get_zero_probabilities():
    truth = block_classes(90, 70)
    valid = np.ones(truth.shape, bool)
    valid[10:30, 5:50] = False
    probabilities = segment_array(paint(truth) / 255.0, NumpyColourPredictor(32), 32, 8, valid=valid)
    assert not probabilities[~valid].any()
    np.testing.assert_array_equal(probabilities.argmax(-1)[valid], truth[valid])


def test_segment_array_refuses_wrong_band_count_and_tile_size():
    with pytest.raises(ValueError, match="bands|3"):
        segment_array(np.zeros((40, 40, 4), np.float32), NumpyColourPredictor(32), 32, 8)
    with pytest.raises(ValueError, match="tile"):
        segment_array(np.zeros((40, 40, 3), np.float32), NumpyColourPredictor(32), 64, 8)


# --- segment_raster with the real (TensorFlow) colour model file --------------------------------

@pytest.fixture(scope="module")
def predictors(colour_model_file):
    opened = {}

    def get(tile: int):
        if tile not in opened:
            opened[tile] = open_predictor(colour_model_file, tile_size=tile)
        return opened[tile]

    return get


def read_output(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as dataset:
        return dataset.read(1), dataset.profile


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("tile, overlap", [(32, 0), (32, 8), (64, 16)])
def test_raster_output_equals_truth_with_georeference(tmp_path, predictors, height, width, tile, overlap):
    truth = block_classes(height, width, seed=width)
    source = write_painted(tmp_path / "in.tif", truth)
    result = segment_raster(
        source, predictors(tile), tmp_path / "classes.tif", SegmentOptions(overlap=overlap, batch_size=2)
    )
    classes, profile = read_output(result.output_path)
    np.testing.assert_array_equal(classes, truth)
    assert profile["crs"] == rasterio.crs.CRS.from_string(CRS)
    assert profile["transform"] == TRANSFORM
    assert (profile["width"], profile["height"], profile["count"]) == (width, height, 1)
    assert profile["dtype"] == "uint8" and profile["nodata"] == NODATA_CLASS
    assert result.class_pixel_counts == {c: int((truth == c).sum()) for c in range(6)}


def test_class_counts_are_exact_when_counted_a_few_rows_at_a_time(tmp_path, predictors, monkeypatch):
    # Wide rasters are counted in chunks of rows to keep memory flat; 150 pixels a chunk
    # here is one row of this raster, so chunk edges fall inside every written band.
    monkeypatch.setattr(geotiff_output, "COUNT_CHUNK_PIXELS", 150)
    truth = block_classes(90, 110, seed=3)
    result = segment_raster(write_painted(tmp_path / "in.tif", truth), predictors(32), tmp_path / "classes.tif")
    assert result.class_pixel_counts == {c: int((truth == c).sum()) for c in range(6)}


def test_output_is_styled_tiled_compressed_with_overviews(tmp_path, predictors):
    truth = block_classes(600, 300)
    source = write_painted(tmp_path / "in.tif", truth)
    output = segment_raster(source, predictors(64), tmp_path / "out.tif", SegmentOptions(confidence=True)).output_path
    with rasterio.open(output) as dataset:
        assert dataset.count == 2
        assert dataset.profile["tiled"] and dataset.block_shapes[0] == (512, 512)
        assert dataset.compression == rasterio.enums.Compression.deflate
        assert dataset.overviews(1) == [2, 4]
        colours = dataset.colormap(1)
        confidence = dataset.read(2)
    for c in DUBAI_CLASSES:
        assert colours[c.id][:3] == c.color
    assert colours[NODATA_CLASS][3] == 0  # no data is transparent
    assert confidence.min() >= 99 and confidence.max() == 100  # the colour model is sure of painted pixels
    # What gdalinfo shows (and QGIS reads): class names as categories, the colour table.
    band = gdal.Info(str(output), format="json")["bands"][0]
    assert band["categories"][:6] == [c.name for c in DUBAI_CLASSES]
    assert band["colorTable"]["entries"][2][:3] == list(DUBAI_CLASSES[2].color)
    assert [o["size"] for o in band["overviews"]] == [[150, 300], [75, 150]]


def nodata_region(shape) -> np.ndarray:
    invalid = np.zeros(shape, bool)
    invalid[:70, :90] = True  # a corner big enough to hold whole tiles
    invalid[100:103, 40:200] = True  # a thin stripe through tiles that are otherwise valid
    return invalid


@pytest.mark.parametrize("kind", ["nodata value", "internal mask", "alpha band"])
def test_pixels_without_data_are_255_and_empty_tiles_are_skipped(tmp_path, kind, colour_model_file):
    truth = block_classes(160, 210)
    invalid = nodata_region(truth.shape)
    rgb = np.moveaxis(paint(truth), -1, 0).copy()
    path = tmp_path / "in.tif"
    if kind == "nodata value":
        rgb[:, invalid] = 0
        write_raster(path, rgb, nodata=0)
    elif kind == "internal mask":
        write_raster(path, rgb)
        with rasterio.open(path, "r+") as dataset:
            dataset.write_mask(np.where(invalid, 0, 255).astype(np.uint8))
    else:
        alpha = np.where(invalid, 0, 255).astype(np.uint8)[None]
        write_raster(path, np.concatenate([rgb, alpha]), photometric="RGB", alpha="YES")
    predictor = CountingPredictor(open_predictor(colour_model_file, tile_size=32))
    result = segment_raster(path, predictor, tmp_path / "out.tif", SegmentOptions(overlap=8))
    classes, _ = read_output(result.output_path)
    np.testing.assert_array_equal(classes[invalid], NODATA_CLASS)
    np.testing.assert_array_equal(classes[~invalid], truth[~invalid])
    assert result.skipped_tiles > 0
    assert predictor.tiles_seen == result.tiles - result.skipped_tiles


class CountingPredictor:
    """Wraps a predictor and counts the tiles sent to the model."""

    def __init__(self, inner) -> None:
        self.inner, self.metadata, self.tile_size, self.backend = inner, inner.metadata, inner.tile_size, inner.backend
        self.tiles_seen = 0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.tiles_seen += len(batch)
        return self.inner.predict(batch)


def test_chosen_bands_of_a_multiband_raster(tmp_path, predictors):
    truth = block_classes(80, 90)
    rgb = np.moveaxis(paint(truth), -1, 0)
    noise = np.random.default_rng(1).integers(0, 256, (2, 80, 90), dtype=np.uint8)
    source = write_raster(tmp_path / "five.tif", np.concatenate([noise[:1], rgb[::-1], noise[1:]]))
    result = segment_raster(source, predictors(32), tmp_path / "out.tif", SegmentOptions(bands=(4, 3, 2)))
    np.testing.assert_array_equal(read_output(result.output_path)[0], truth)


def test_uint16_input_is_stretched_by_the_percentile_rule(tmp_path, predictors):
    truth = block_classes(100, 120)
    rgb = paint(truth).astype(np.uint16)
    # 5 % black rows and 5 % white rows pin each band's 2nd/98th percentiles to raw 1000 / 2020,
    # so the documented stretch maps raw = 1000 + 4 v exactly back to the 8-bit value v.
    rgb[:5], rgb[-5:] = 0, 255
    raw = 1000 + 4 * rgb
    source = write_raster(tmp_path / "u16.tif", np.moveaxis(raw, -1, 0).astype(np.uint16))
    result = segment_raster(source, predictors(32), tmp_path / "out.tif")
    np.testing.assert_array_equal(read_output(result.output_path)[0], nearest_class(rgb))
    assert "1000..2020" in result.details["scaling"]


def test_processing_resolution_comes_back_on_the_input_grid(tmp_path, predictors):
    truth = block_classes(120, 100, block=8)  # 0.3 m pixels, blocks of 8 -> 4 pixels at 0.6 m
    rgb = np.moveaxis(paint(truth), -1, 0).copy()
    rgb[:, 50:53, 10:60] = 0  # a no-data stripe thinner than a processing pixel
    source = write_raster(tmp_path / "in.tif", rgb, nodata=0)
    result = segment_raster(source, predictors(32), tmp_path / "out.tif", SegmentOptions(resolution=0.6))
    classes, profile = read_output(result.output_path)
    assert profile["transform"] == TRANSFORM and (profile["width"], profile["height"]) == (100, 120)
    expected = truth.copy()
    expected[50:53, 10:60] = NODATA_CLASS
    # The stripe's neighbours share processing pixels with it: compare away from it.
    keep = np.ones(truth.shape, bool)
    keep[48:56, 8:62] = False
    np.testing.assert_array_equal(classes[keep], expected[keep])
    np.testing.assert_array_equal(classes[50:53, 10:60], NODATA_CLASS)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # scratch files removed


def folder_state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_cancel_leaves_no_output_and_keeps_an_older_result(tmp_path, predictors):
    source = write_painted(tmp_path / "in.tif", block_classes(200, 200))
    (tmp_path / "out.tif").write_bytes(b"an older result")
    before = folder_state(tmp_path)
    calls = []
    with pytest.raises(Cancelled):
        segment_raster(
            source, predictors(32), tmp_path / "out.tif",
            progress=lambda fraction, message: calls.append(fraction), cancel=lambda: len(calls) >= 3,
        )
    assert folder_state(tmp_path) == before  # nothing new, nothing half-written, input untouched


class FailingPredictor(NumpyColourPredictor):
    def predict(self, batch):
        if self.tiles_seen >= 4:
            raise RuntimeError("model crashed")
        return super().predict(batch)


@pytest.mark.parametrize("resolution", [None, 0.6])
def test_failure_leaves_no_output(tmp_path, resolution):
    source = write_painted(tmp_path / "in.tif", block_classes(200, 200))
    before = folder_state(tmp_path)
    with pytest.raises(RuntimeError, match="model crashed"):
        segment_raster(source, FailingPredictor(32), tmp_path / "out.tif", SegmentOptions(resolution=resolution))
    assert folder_state(tmp_path) == before


def test_progress_moves_forward_to_the_end_and_input_is_untouched(tmp_path, predictors):
    source = write_painted(tmp_path / "in.tif", block_classes(150, 150))
    digest, mtime = hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_mtime_ns
    fractions = []
    segment_raster(source, predictors(32), tmp_path / "out.tif", progress=lambda f, m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 5
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest and source.stat().st_mtime_ns == mtime


def test_bad_input_is_refused_before_any_model_work(tmp_path):
    predictor = NumpyColourPredictor(32)
    grey = write_raster(tmp_path / "grey.tif", np.zeros((1, 40, 40), np.uint8))
    with pytest.raises(RasterInputError, match="--bands 1,1,1"):
        segment_raster(grey, predictor, tmp_path / "out.tif")
    unplaced = write_painted(tmp_path / "nocrs.tif", block_classes(40, 40), crs=None)
    with pytest.raises(RasterInputError, match="coordinate reference system"):
        segment_raster(unplaced, predictor, tmp_path / "out.tif")
    with pytest.raises(ValueError, match="overwritten"):
        segment_raster(grey, predictor, grey)
    assert predictor.tiles_seen == 0
    assert sorted(os.listdir(tmp_path)) == ["grey.tif", "nocrs.tif"]
