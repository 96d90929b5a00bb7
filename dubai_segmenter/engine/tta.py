# SPDX-License-Identifier: GPL-2.0-or-later
"""Test-time augmentation: a predictor wrapper that averages class probabilities over
flipped copies of each tile.

Why a wrapper: tiling, blending and I/O only see "tiles in, probabilities out"
(``predictors.Predictor``), so TTA works with every backend and every caller (command
line, QGIS, evaluation) without touching them; the averaged probabilities are blended
between tiles as usual. ``flips`` runs the model on the tile, its left-right mirror, its
upside-down mirror and both (a half turn), flips each answer back and averages them: four
model calls per tile, so about four times the time.
"""
from __future__ import annotations

import numpy as np

from dubai_segmenter.engine.contract import TTA_MODES
from dubai_segmenter.engine.predictors import Predictor, check_batch

#: Axes of a (N, H, W, C) batch flipped by each variant of "flips" (identity first).
_FLIPS: tuple[tuple[int, ...], ...] = ((), (2,), (1,), (1, 2))


class FlipAveragingPredictor:
    """A predictor giving the mean probabilities of `inner` over the four flips of each tile."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.metadata = inner.metadata
        self.tile_size = inner.tile_size
        self.backend = inner.backend
        self.tta = "flips"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self.tile_size, self.metadata.input_bands)
        total = None
        for axes in _FLIPS:
            variant = np.flip(batch, axes) if axes else batch
            out = self.inner.predict(np.ascontiguousarray(variant))
            out = np.flip(out, axes) if axes else out
            total = out.astype(np.float32) if total is None else total + out
        return np.ascontiguousarray(total / np.float32(len(_FLIPS)))


def with_tta(predictor: Predictor, mode: str) -> Predictor:
    """`predictor` itself for "none", wrapped for "flips"; ValueError naming the modes otherwise."""
    if mode == "none":
        return predictor
    if mode == "flips":
        return FlipAveragingPredictor(predictor)
    raise ValueError(f"unknown test-time augmentation {mode!r}; choose one of: {', '.join(TTA_MODES)}")
