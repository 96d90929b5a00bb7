# SPDX-License-Identifier: GPL-2.0-or-later
"""Test-time augmentation: flips are undone before averaging, so a flip-equivariant model
gives the same classes with and without TTA, and `segment --tta flips` runs end to end."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio

from dubai_segmenter.engine.cli import EXIT_OK, main
from dubai_segmenter.engine.predictors import open_predictor
from dubai_segmenter.engine.tta import FlipAveragingPredictor, with_tta
from tests.engine.rasters import block_classes, write_painted


def test_a_flip_equivariant_model_gives_the_same_probabilities(colour_model_file):
    """The colour model classifies each pixel by itself: flipping commutes with it."""
    predictor = open_predictor(colour_model_file, backend="tf")
    batch = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    plain = predictor.predict(batch)
    averaged = with_tta(predictor, "flips").predict(batch)
    np.testing.assert_allclose(averaged, plain, atol=1e-5)
    np.testing.assert_array_equal(averaged.argmax(-1), plain.argmax(-1))


def test_each_flip_is_undone_before_averaging(small_unet_model_file):
    """On a model that is not equivariant the result is the mean of the four answers, each
    flipped back onto the tile's own pixels (a missing flip-back would shift classes)."""
    predictor = open_predictor(small_unet_model_file, backend="tf")
    batch = np.random.default_rng(1).random((1, 64, 64, 3), dtype=np.float32)
    expected = np.mean([np.flip(predictor.predict(np.ascontiguousarray(np.flip(batch, axes))), axes)
                        for axes in ((), (2,), (1,), (1, 2))], axis=0)
    averaged = FlipAveragingPredictor(predictor).predict(batch)
    np.testing.assert_allclose(averaged, expected, atol=1e-6)
    assert not np.allclose(averaged, predictor.predict(batch), atol=1e-3)
    np.testing.assert_allclose(averaged.sum(-1), 1.0, atol=1e-5)


def test_unknown_mode_is_refused(colour_model_file):
    with pytest.raises(ValueError, match="none, flips"):
        with_tta(open_predictor(colour_model_file, backend="tf"), "rotations")


def test_segment_with_tta_flips_gives_the_painted_classes(tmp_path, colour_model_file, capsys):
    truth = block_classes(150, 120)
    source = write_painted(tmp_path / "scene.tif", truth)
    code = main(["segment", str(source), "--model", str(colour_model_file), "--out-raster",
                 str(tmp_path / "classes.tif"), "--tile", "32", "--overlap", "8", "--tta", "flips"])
    assert code == EXIT_OK, capsys.readouterr().err
    with rasterio.open(tmp_path / "classes.tif") as dataset:
        np.testing.assert_array_equal(dataset.read(1), truth)
