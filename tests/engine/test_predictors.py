# SPDX-License-Identifier: GPL-2.0-or-later
"""Predictors turn scaled tiles into class probabilities."""
from __future__ import annotations

import numpy as np
import pytest

from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.predictors import Predictor, open_predictor
from tests.engine.helpers import paint


def test_colour_model_classifies_painted_pixels_exactly(colour_model_file):
    predictor = open_predictor(colour_model_file)
    assert isinstance(predictor, Predictor)
    assert (predictor.backend, predictor.tile_size) == ("tf", 64)
    ids = np.random.default_rng(0).integers(0, 6, (3, 64, 64))
    probabilities = predictor.predict(paint(ids).astype(np.float32) * predictor.metadata.input_scale)
    assert probabilities.shape == (3, 64, 64, 6) and probabilities.dtype == np.float32
    np.testing.assert_array_equal(probabilities.argmax(axis=-1), ids)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert probabilities.max(axis=-1).min() > 0.99


def test_tile_size_can_be_chosen_at_open(colour_model_file, small_unet_model_file):
    predictor = open_predictor(colour_model_file, tile_size=40)
    ids = np.arange(40 * 40).reshape(1, 40, 40) % 6
    assert predictor.predict(paint(ids) / 255.0).argmax(axis=-1).tolist() == ids.tolist()
    assert open_predictor(small_unet_model_file, tile_size=128).predict(np.zeros((1, 128, 128, 3))).shape == (
        1, 128, 128, 6,
    )
    with pytest.raises(ValueError, match="multiple of 4"):
        open_predictor(small_unet_model_file, tile_size=66)


def test_reference_model_refuses_a_bad_tile_size_before_building(irv2_model_256):
    _, path = irv2_model_256
    for tile in (250, 1056):
        with pytest.raises(ValueError, match="multiple of 32 from 256 to 1024"):
            open_predictor(path, tile_size=tile)


def test_predictions_use_inference_mode(small_unet_model_file):
    """BatchNorm must use its stored statistics: a tile's result cannot depend on its batch
    neighbours (in training mode it would, through the batch statistics)."""
    predictor = open_predictor(small_unet_model_file)
    batch = np.random.default_rng(1).random((3, 64, 64, 3), dtype=np.float32)
    together = predictor.predict(batch)
    one_by_one = np.concatenate([predictor.predict(batch[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)
    assert len(np.unique(together.argmax(axis=-1))) > 1  # random weights, but not a constant model


def test_bad_requests_are_refused_clearly(colour_model_file, tmp_path):
    with pytest.raises(ValueError, match="unknown backend 'torch'; use one of: auto, onnx, int8, tf"):
        open_predictor(colour_model_file, backend="torch")
    predictor = open_predictor(colour_model_file)
    with pytest.raises(ValueError, match=r"expected \('N', 64, 64, 3\)"):
        predictor.predict(np.zeros((1, 64, 64, 4), np.float32))
    with pytest.raises(ValueError, match="expected"):
        predictor.predict(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ModelFileError, match="not found"):
        open_predictor(tmp_path / "nope.safetensors")
