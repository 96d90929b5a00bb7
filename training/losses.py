# SPDX-License-Identifier: GPL-2.0-or-later
"""Losses that skip unannotated pixels, with class weights for the land-heavy imbalance.

Land covers about half of the annotated pixels and the other real classes 9-14 % each.
Plain cross-entropy rewards "everything is land" early on (a from-scratch CPU run does not
get far past that stage), so the native recipe weights each class by frequency ** -0.5 and
adds a soft-dice term averaged over the five real classes, which is what mean IoU measures.
A recipe can add the Lovasz-softmax loss (Berman et al., 2018, "The Lovasz-Softmax loss: a
tractable surrogate for the optimization of the intersection-over-union measure") late in a
run, switched on by a variable the training clock sets (training.callbacks.LovaszPhase).
"""
from __future__ import annotations

import keras
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


def lovasz_softmax_loss(y_true, y_pred):
    """Mean over the real classes present in the batch of the Lovasz extension of 1 - IoU.

    Per class, the pixels' errors |truth - p| sorted in decreasing order are weighted by the
    steps of the Jaccard loss along that order, whose sum is a convex surrogate of 1 - IoU
    that is exact on hard predictions. Unannotated pixels get error 0: sorted last, they
    add nothing.
    """
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    probabilities = ops.reshape(y_pred, (-1, ops.shape(y_pred)[-1]))
    valid = ops.cast(ops.not_equal(labels, IGNORE), probabilities.dtype)
    total, present = 0.0, 0.0
    for class_id in REAL_CLASS_IDS:
        truth = ops.cast(ops.equal(labels, class_id), probabilities.dtype)
        errors = ops.abs(truth - probabilities[:, class_id]) * valid
        order = ops.flip(ops.argsort(errors), axis=0)
        errors, truth = ops.take(errors, order), ops.take(truth, order)
        positives = ops.sum(truth)
        jaccard = 1.0 - (positives - ops.cumsum(truth)) / (positives + ops.cumsum(1.0 - truth))
        steps = ops.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        is_present = ops.cast(positives > 0, probabilities.dtype)
        total = total + is_present * ops.sum(errors * ops.stop_gradient(steps))
        present = present + is_present
    return total / ops.maximum(present, 1.0)


def build_loss(recipe: Recipe, frequencies: np.ndarray):
    """The loss a recipe names; `frequencies` are the training set's class shares.

    With `recipe.lovasz_weight` the returned function carries `lovasz_scale`, a variable
    (0 or 1) the training clock switches on at `recipe.lovasz_from` of the cycle.
    """
    if recipe.loss == "crossentropy":
        base = masked_crossentropy()
    elif recipe.loss == "weighted_crossentropy_dice":
        unlabeled = tuple(i for i in range(len(frequencies)) if i not in REAL_CLASS_IDS)
        crossentropy = masked_crossentropy(class_weights(frequencies, recipe.class_weight_power, unlabeled))

        def base(y_true, y_pred):
            return crossentropy(y_true, y_pred) + recipe.dice_weight * mean_class_dice_loss(y_true, y_pred)
    else:
        raise ValueError(f"unknown loss {recipe.loss!r} in recipe {recipe.name!r}")
    if not recipe.lovasz_weight:
        return base
    scale = keras.Variable(0.0, trainable=False, name="lovasz_scale")

    def with_lovasz(y_true, y_pred):
        return base(y_true, y_pred) + scale * recipe.lovasz_weight * lovasz_softmax_loss(y_true, y_pred)

    with_lovasz.lovasz_scale = scale
    return with_lovasz
