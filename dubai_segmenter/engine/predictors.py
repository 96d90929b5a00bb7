"""Predictors: run a model file on batches of tiles, whatever computes it.

The tiling code (``segment.py``) only needs "tiles in, probabilities out"; the
``Predictor`` protocol is that contract, so the computing backend (TensorFlow now,
ONNX Runtime later) can change without touching tiling, blending or I/O.
TensorFlow is imported only when a TensorFlow predictor is opened: importing this module
costs nothing and needs no TensorFlow.
"""
from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np

from dubai_segmenter.engine.architectures import check_tile_size
from dubai_segmenter.engine.model_file import ModelMetadata, load_keras_model, read_metadata

BACKENDS: tuple[str, ...] = ("auto", "tf")


@runtime_checkable
class Predictor(Protocol):
    """A model ready to run on tiles of one size."""

    metadata: ModelMetadata
    tile_size: int
    backend: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, tile, tile, input_bands) float32 already scaled -> (N, tile, tile, C) float32 probabilities"""
        ...


def check_batch(batch: np.ndarray, tile_size: int, input_bands: int) -> np.ndarray:
    """The batch as contiguous float32, or ValueError saying which dimension is wrong."""
    batch = np.asarray(batch)
    expected = ("N", tile_size, tile_size, input_bands)
    if batch.ndim != 4 or batch.shape[1:] != expected[1:] or batch.shape[0] < 1:
        raise ValueError(f"batch shape {batch.shape} does not fit this model: expected {expected}")
    return np.ascontiguousarray(batch, dtype=np.float32)


class TensorFlowPredictor:
    """A Keras model rebuilt from a model file, called through one traced ``tf.function``.

    The fixed input signature (any batch size, fixed tile) means one trace for the whole
    run instead of a retrace per batch shape, and ``training=False`` makes BatchNorm use
    its moving statistics and Dropout do nothing.
    """

    backend = "tf"

    def __init__(self, path: str | os.PathLike, metadata: ModelMetadata, tile_size: int) -> None:
        import tensorflow as tf

        self.metadata = metadata
        self.tile_size = tile_size
        self._model = load_keras_model(path, tile_size)
        spec = tf.TensorSpec((None, tile_size, tile_size, metadata.input_bands), tf.float32)
        self._call = tf.function(lambda x: self._model(x, training=False), input_signature=[spec])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self.tile_size, self.metadata.input_bands)
        return self._call(batch).numpy().astype(np.float32, copy=False)


def open_predictor(path: str | os.PathLike, tile_size: int | None = None, backend: str = "auto") -> Predictor:
    """Open a model file for prediction at ``tile_size`` (default: the model's own).

    backend: "auto" picks the best available backend (for now TensorFlow), "tf" forces
    TensorFlow. Raises ModelFileError for a file that is not a usable model and ValueError
    for an unknown backend or a tile size the architecture cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    metadata = read_metadata(path)
    tile = metadata.tile_size if tile_size is None else tile_size
    check_tile_size(metadata.architecture, tile, metadata.architecture_params)
    return TensorFlowPredictor(path, metadata, tile)
