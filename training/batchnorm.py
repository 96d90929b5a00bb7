# SPDX-License-Identifier: GPL-2.0-or-later
"""BatchNorm statistics for inference: re-estimate them, and check that they fit.

A CPU run makes a few hundred steps; the moving mean/variance that BatchNorm uses in
inference mode are an exponential average that trails the weights, so the exported model
can behave far worse than the model in training mode (after 50 steps of batch 8 one run here
predicted "everything is land"). Before export the statistics are therefore recomputed with the
final weights, as the plain average of per-batch statistics over many training batches, and the agreement of
training-mode and inference-mode predictions is measured and written into the run.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice

import keras
import numpy as np


def _layers_of(model: keras.Model, kind: type) -> list:
    found = []
    for layer in model.layers:
        if isinstance(layer, kind):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(_layers_of(layer, kind))
    return found


@contextmanager
def _temporarily(layers: list, attribute: str, value: float) -> Iterator[None]:
    """Set `attribute` on `layers` for the duration (eager calls read it at every call)."""
    saved = [getattr(layer, attribute) for layer in layers]
    try:
        for layer in layers:
            setattr(layer, attribute, value)
        yield
    finally:
        for layer, old in zip(layers, saved):
            setattr(layer, attribute, old)


def recalibrate_batchnorm(model: keras.Model, batches: Iterable[np.ndarray], count: int) -> int:
    """Set every moving mean/variance to the average of its batch statistics over `count` batches.

    With momentum k / (k + 1) at the k-th batch (from 0), BatchNorm's own update
    `moving = moving * m + batch * (1 - m)` becomes a running mean of the batch statistics.
    Runs eagerly so the momentum is read at every call. Returns the batches used.
    """
    layers = _layers_of(model, keras.layers.BatchNormalization)
    used = 0
    for k, batch in enumerate(islice(batches, count)):
        with _temporarily(layers, "momentum", k / (k + 1)):
            model(batch, training=True)
        used += 1
    return used


def mode_agreement(model: keras.Model, batch: np.ndarray) -> float:
    """Share of pixels whose class is the same in training mode and in inference mode.

    Momentum 1 during the training-mode call keeps it from touching the moving statistics,
    and dropout is switched off so that only BatchNorm differs between the two calls.
    """
    with _temporarily(_layers_of(model, keras.layers.BatchNormalization), "momentum", 1.0), \
            _temporarily(_layers_of(model, keras.layers.Dropout), "rate", 0.0):
        train_mode = np.argmax(np.asarray(model(batch, training=True)), axis=-1)
    inference_mode = np.argmax(np.asarray(model(batch, training=False)), axis=-1)
    return float((train_mode == inference_mode).mean())
