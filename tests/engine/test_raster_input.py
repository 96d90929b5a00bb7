# SPDX-License-Identifier: GPL-2.0-or-later
"""Input rasters: clear refusals, band choice, the documented scaling rule, validity, resampling."""
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from dubai_segmenter.engine.errors import RasterInputError
from dubai_segmenter.engine.raster_input import (
    choose_bands,
    compute_scaling,
    open_raster,
    parse_band_list,
    read_window,
    resampled,
)
from tests.engine.rasters import write_raster


def test_open_refuses_missing_non_raster_and_unplaced_files(tmp_path):
    with pytest.raises(RasterInputError, match="not found"):
        open_raster(tmp_path / "missing.tif")
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(RasterInputError, match="not a raster"):
        open_raster(text)
    with pytest.raises(RasterInputError, match="directory"):
        open_raster(tmp_path)
    unplaced = write_raster(tmp_path / "nocrs.tif", np.zeros((3, 8, 8), np.uint8), crs=None)
    with pytest.raises(RasterInputError, match="coordinate reference system"):
        open_raster(unplaced)


@pytest.fixture
def rgba(tmp_path):
    path = write_raster(tmp_path / "rgba.tif", np.zeros((4, 8, 8), np.uint8), photometric="RGB", alpha="YES")
    with rasterio.open(path) as dataset:
        yield dataset


def test_default_bands_are_the_first_ones_even_with_alpha(rgba):
    assert choose_bands(rgba, None, 3) == (1, 2, 3)
    assert choose_bands(rgba, (3, 2, 1), 3) == (3, 2, 1)


@pytest.mark.parametrize(
    "bands, message",
    [((1, 2), "needs 3 bands, but 2 were chosen"), ((1, 2, 9), "band 9 does not exist"), ((0, 1, 2), "band 0"),
     ((1, 2, 4), "alpha")],
)
def test_bad_band_lists_are_refused_with_the_reason(rgba, bands, message):
    with pytest.raises(RasterInputError, match=message):
        choose_bands(rgba, bands, 3)


def test_too_few_bands_suggests_repeating_a_single_band(tmp_path):
    path = write_raster(tmp_path / "grey.tif", np.zeros((1, 8, 8), np.uint8))
    with rasterio.open(path) as dataset, pytest.raises(RasterInputError, match="--bands 1,1,1"):
        choose_bands(dataset, None, 3)


def test_band_list_parsing():
    assert parse_band_list("4,3,2") == (4, 3, 2)
    with pytest.raises(RasterInputError, match="bad band list"):
        parse_band_list("red,green")


def test_uint8_is_used_as_is(tmp_path):
    path = write_raster(tmp_path / "u8.tif", np.full((3, 8, 8), 51, np.uint8))
    with rasterio.open(path) as dataset:
        scaling = compute_scaling(dataset, (1, 2, 3), 1 / 255)
    assert scaling.low is None
    np.testing.assert_allclose(scaling.apply(np.full((2, 2, 3), 51, np.uint8)), 0.2)


def test_other_types_stretch_2nd_to_98th_percentile_of_valid_pixels(tmp_path):
    values = np.arange(100 * 100, dtype=np.float64).reshape(100, 100) % 1000  # uniform 0..999
    bands = np.stack([np.where(values < 100, -9999, values * f) for f in (1, 2)]).astype(np.int16)
    path = write_raster(tmp_path / "i16.tif", bands, nodata=-9999)  # 10 % no data, never counted
    with rasterio.open(path) as dataset:
        scaling = compute_scaling(dataset, (1, 2), 1.0)
    # valid values are uniform 100..999: 2nd / 98th percentiles near 118 / 981
    assert scaling.low[0] == pytest.approx(118, abs=2) and scaling.high[0] == pytest.approx(981, abs=2)
    assert scaling.low[1] == pytest.approx(2 * scaling.low[0], abs=4)
    pixels = np.array([[[scaling.low[0], scaling.low[1]], [scaling.high[0], 1e6]]], dtype=np.float32)
    np.testing.assert_allclose(scaling.apply(pixels), [[[0, 0], [255, 255]]], atol=1e-3)  # clipped beyond


def test_constant_band_does_not_divide_by_zero(tmp_path):
    path = write_raster(tmp_path / "flat.tif", np.full((1, 8, 8), 7, np.uint16))
    with rasterio.open(path) as dataset:
        scaling = compute_scaling(dataset, (1,), 1.0)
    assert np.isfinite(scaling.apply(np.full((1, 1, 1), 7, np.uint16))).all()


def test_validity_honours_nodata_per_band_and_nan(tmp_path):
    data = np.ones((2, 4, 4), np.float32)
    data[:, 0, 0] = -1  # both bands no data -> invalid
    data[0, 1, 1] = -1  # one band no data, the other has data -> still a pixel with data
    data[1, 2, 2] = np.nan
    path = write_raster(tmp_path / "f.tif", data, nodata=-1)
    with rasterio.open(path) as dataset:
        pixels, valid = read_window(dataset, (1, 2), Window(0, 0, 4, 4))
    assert pixels.shape == (4, 4, 2)
    expected = np.ones((4, 4), bool)
    expected[0, 0] = expected[2, 2] = False
    np.testing.assert_array_equal(valid, expected)


def test_resampled_copy_keeps_extent_and_mask(tmp_path):
    data = np.full((3, 100, 60), 100, np.uint8)
    path = write_raster(tmp_path / "in.tif", data)
    with rasterio.open(path, "r+") as dataset:
        mask = np.full((100, 60), 255, np.uint8)
        mask[:50] = 0
        dataset.write_mask(mask)
    with rasterio.open(path) as dataset, resampled(dataset, 0.9) as coarse:
        assert (coarse.width, coarse.height) == (20, 33)
        assert coarse.bounds == pytest.approx(dataset.bounds)
        _, valid = read_window(coarse, (1, 2, 3), Window(0, 0, coarse.width, coarse.height))
        assert not valid[:15].any() and valid[18:].all()
    with rasterio.open(path) as dataset, pytest.raises(RasterInputError, match="positive"):
        resampled(dataset, 0)
