# SPDX-License-Identifier: GPL-2.0-or-later
"""Losses that skip unannotated pixels, with class weights for the land-heavy imbalance.

Land covers about half of the annotated pixels and the other real classes 9-14 % each.
Plain cross-entropy rewards "everything is land" early on (a from-scratch CPU run does not
get far past that stage), so the native recipe weights each class by frequency ** -0.5 and
adds a soft-dice term averaged over the five real classes, which is what mean IoU measures.
"""
from __future__ import annotations

import numpy as np
from keras import ops

from training.config import Recipe
from training.dataset import IGNORE, REAL_CLASS_IDS
from training.metrics import masked_one_hot


def class_weights(frequencies: np.ndarray, power: float, capped: tuple[int, ...] = ()) -> np.ndarray:
    """frequency ** -power, scaled so an average annotated pixel weighs 1 (loss stays CE-sized).

    Classes that never occur get weight 0 (nothing to learn from them). Classes in `capped`
    weigh at most the lightest other class: 'Unlabeled' (0.6 % of the pixels) would
    otherwise weigh nine times land, although the metrics leave it out, so every real pixel
    the weight pushes towards 'Unlabeled' is a miss.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    weights = np.where(frequencies > 0, np.maximum(frequencies, 1e-12) ** -power, 0.0)
    others = [w for i, w in enumerate(weights) if i not in capped and w > 0]
    for index in capped:
        weights[index] = min(weights[index], min(others, default=weights[index]))
    return (weights / max(float((weights * frequencies).sum()), 1e-12)).astype(np.float32)


def masked_crossentropy(weights: np.ndarray | None = None):
    """Per-pixel cross-entropy, mean over annotated pixels, each weighted by its true class."""

    def loss(y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(labels, IGNORE), y_pred.dtype)
        safe = ops.where(labels == IGNORE, 0, labels)
        p_true = ops.take_along_axis(y_pred, safe[..., None], axis=-1)[..., 0]
        per_pixel = -ops.log(ops.clip(p_true, 1e-7, 1.0)) * valid
        if weights is not None:
            per_pixel = per_pixel * ops.take(ops.convert_to_tensor(weights), safe)
        return ops.sum(per_pixel) / ops.maximum(ops.sum(valid), 1.0)

    return loss


def mean_class_dice_loss(y_true, y_pred):
    """1 - mean over the real classes of each class's soft dice in the batch (smooth 1)."""
    one_hot, probabilities = masked_one_hot(y_true, y_pred)
    axes = tuple(range(len(y_pred.shape) - 1))
    intersection = ops.sum(one_hot * probabilities, axis=axes)
    total = ops.sum(one_hot, axis=axes) + ops.sum(probabilities, axis=axes)
    dice = (2.0 * intersection + 1.0) / (total + 1.0)
    return 1.0 - ops.mean(ops.take(dice, list(REAL_CLASS_IDS)))


def build_loss(recipe: Recipe, frequencies: np.ndarray):
    """The loss a recipe names; `frequencies` are the training set's class shares."""
    if recipe.loss == "crossentropy":
        return masked_crossentropy()
    if recipe.loss == "weighted_crossentropy_dice":
        unlabeled = tuple(i for i in range(len(frequencies)) if i not in REAL_CLASS_IDS)
        crossentropy = masked_crossentropy(class_weights(frequencies, recipe.class_weight_power, unlabeled))

        def weighted_crossentropy_dice(y_true, y_pred):
            return crossentropy(y_true, y_pred) + recipe.dice_weight * mean_class_dice_loss(y_true, y_pred)

        return weighted_crossentropy_dice
    raise ValueError(f"unknown loss {recipe.loss!r} in recipe {recipe.name!r}")
