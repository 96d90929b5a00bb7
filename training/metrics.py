# SPDX-License-Identifier: GPL-2.0-or-later
"""Segmentation scores, all ignoring unannotated (IGNORE) pixels.

Two families: a confusion matrix and the scores a user feels (pixel accuracy, per-class
IoU and F1, mean IoU over the five real classes), and the reference project's pooled soft
dice, (2 * sum(y * p) + 1) / (sum(y) + sum(p) + 1) over every pixel and class at once, kept
so our numbers sit beside its 0.81. The soft-dice terms are written once with keras.ops and
serve both as a training metric (per batch, as Keras averaged it) and in evaluation
(accumulated over the whole validation set).
"""
from __future__ import annotations

import cv2
import keras
import numpy as np
from keras import ops

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from training.dataset import IGNORE, NUM_CLASSES, REAL_CLASS_IDS

DICE_SMOOTH = 1.0


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(C, C) pixel counts, rows = true class, columns = predicted; IGNORE pixels skipped."""
    valid = labels != IGNORE
    index = labels[valid].astype(np.int64) * num_classes + predicted[valid].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(matrix: np.ndarray) -> dict:
    """Pixel accuracy, per-class IoU/F1/support and mean IoU over the real classes.

    A class absent from both truth and prediction has no IoU (None) and is left out of the
    mean rather than counted as 0 or 1.
    """
    matrix = matrix.astype(np.float64)
    tp = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    union = support + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
    per_class = {c.key: {"iou": _opt(iou[c.id]), "f1": _opt(f1[c.id]), "support": int(support[c.id])}
                 for c in DUBAI_CLASSES}
    real_iou = iou[list(REAL_CLASS_IDS)]
    return {
        "pixel_accuracy": float(tp.sum() / max(matrix.sum(), 1)),
        "mean_iou": _opt(np.nanmean(real_iou)) if np.isfinite(real_iou).any() else None,
        "per_class": per_class,
        "confusion_matrix": matrix.astype(np.int64).tolist(),
    }


def _opt(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def masked_one_hot(labels, probabilities):
    """(one-hot truth, probabilities), both zeroed on IGNORE pixels, so sums skip them."""
    labels = ops.cast(labels, "int32")
    valid = ops.cast(ops.not_equal(labels, IGNORE), probabilities.dtype)[..., None]
    one_hot = ops.one_hot(ops.where(labels == IGNORE, 0, labels), ops.shape(probabilities)[-1])
    return one_hot * valid, probabilities * valid


def soft_dice_terms(labels, probabilities):
    """(sum(y * p), sum(y) + sum(p)) over the annotated pixels of a batch or image.

    labels (..., H, W) class ids with IGNORE; probabilities (..., H, W, C).
    """
    one_hot, masked_p = masked_one_hot(labels, ops.convert_to_tensor(probabilities, "float32"))
    return ops.sum(one_hot * masked_p), ops.sum(one_hot) + ops.sum(masked_p)


def pooled_soft_dice(intersection, total):
    """The reference's dice from summed terms, with its smoothing of 1."""
    return (2.0 * intersection + DICE_SMOOTH) / (total + DICE_SMOOTH)


def soft_dice(y_true, y_pred):
    """Training metric: the reference's pooled soft dice of one batch."""
    return pooled_soft_dice(*soft_dice_terms(y_true, y_pred))


def masked_accuracy(y_true, y_pred):
    """Training metric: argmax pixel accuracy over the annotated pixels of one batch."""
    labels = ops.cast(y_true, "int32")
    valid = ops.cast(ops.not_equal(labels, IGNORE), "float32")
    hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels), "float32")
    return ops.sum(hit * valid) / ops.maximum(ops.sum(valid), 1.0)


def training_metrics() -> list:
    """Metrics logged every epoch (model_training.csv)."""
    return [
        masked_accuracy,
        soft_dice,
        keras.metrics.IoU(num_classes=NUM_CLASSES, target_class_ids=list(REAL_CLASS_IDS),
                          sparse_y_true=True, sparse_y_pred=False, ignore_class=IGNORE, name="mean_iou"),
    ]


class ScoreAccumulator:
    """Pools a confusion matrix and the soft-dice terms over many images (a validation set)."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.intersection = 0.0
        self.total = 0.0

    def add(self, labels: np.ndarray, probabilities: np.ndarray) -> dict:
        """Add one image; returns that image's own scores."""
        matrix = confusion_matrix(labels, probabilities.argmax(axis=-1), self.matrix.shape[0])
        intersection, total = soft_dice_terms(labels, probabilities)
        self.matrix += matrix
        self.intersection += float(intersection)
        self.total += float(total)
        return {**scores(matrix), "soft_dice": float(pooled_soft_dice(float(intersection), float(total)))}

    def result(self) -> dict:
        return {**scores(self.matrix), "soft_dice": float(pooled_soft_dice(self.intersection, self.total))}


def boundary_band(labels: np.ndarray, width: int) -> np.ndarray:
    """True where a (2 * width + 1)-pixel square around the pixel holds more than one label.

    Those are the pixels within `width` pixels of a change of class, on both sides of it,
    where a hand-drawn mask and a model can disagree by a stroke's width without either
    being wrong. An annotated pixel next to an unannotated (IGNORE) one counts as near a
    boundary too: the annotator stopped there.
    """
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)


class AwayFromBoundaries:
    """Scores with the pixels near class boundaries left out, and how many errors lie there.

    If most errors sit in a band a few pixels wide, the limit is where edges fall (label
    precision, resolution); if the scores outside the band are little better, the model
    confuses whole regions.
    """

    def __init__(self, width: int):
        self.width = width
        self.outside = ScoreAccumulator()
        self.pixels = self.band_pixels = self.errors = self.band_errors = 0

    def add(self, labels: np.ndarray, probabilities: np.ndarray) -> None:
        annotated = labels != IGNORE
        band = boundary_band(labels, self.width) & annotated
        wrong = (probabilities.argmax(axis=-1) != labels) & annotated
        self.pixels += int(annotated.sum())
        self.band_pixels += int(band.sum())
        self.errors += int(wrong.sum())
        self.band_errors += int((wrong & band).sum())
        self.outside.add(np.where(band, IGNORE, labels).astype(labels.dtype), probabilities)

    def result(self) -> dict:
        return {"width": self.width, "band_pixel_share": self.band_pixels / max(self.pixels, 1),
                "band_error_share": self.band_errors / max(self.errors, 1), "outside_band": self.outside.result()}


#: Temperatures scanned: each rescales the probabilities as p ** (1 / T), renormalised, which
#: is the softmax of the network's logits divided by T (T < 1 sharpens, T > 1 softens).
TEMPERATURES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0)


class TemperatureScan:
    """Negative log-likelihood and pooled soft dice of the probabilities at each temperature.

    Soft dice over annotated pixels is (2 * sum of the true class's probability + 1) / (2 * pixels + 1),
    so it rewards confidence as much as hits; a temperature changes it without changing any
    predicted class. Fit the temperature (least NLL) on the training images, never on the
    validation images, then read the validation scores at that temperature.
    """

    def __init__(self, temperatures: tuple[float, ...] = TEMPERATURES):
        self.temperatures = temperatures
        self.nll = np.zeros(len(temperatures))
        self.true_probability = np.zeros(len(temperatures))
        self.pixels = 0

    def add(self, labels: np.ndarray, probabilities: np.ndarray) -> None:
        annotated = labels != IGNORE
        truth = labels[annotated].astype(np.int64)
        log_p = np.log(np.clip(probabilities[annotated].astype(np.float32), 1e-7, 1.0))
        rows = np.arange(len(truth))
        for index, temperature in enumerate(self.temperatures):
            scaled = log_p / np.float32(temperature)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_true = scaled[rows, truth] - np.log(np.exp(scaled).sum(axis=1))
            self.nll[index] -= float(log_true.sum(dtype=np.float64))
            self.true_probability[index] += float(np.exp(log_true).sum(dtype=np.float64))
        self.pixels += len(truth)

    def result(self) -> dict:
        pixels = max(self.pixels, 1)
        nll = (self.nll / pixels).tolist()
        return {"temperatures": list(self.temperatures), "nll_per_pixel": nll,
                "soft_dice": [float(pooled_soft_dice(s, 2.0 * self.pixels)) for s in self.true_probability],
                "least_nll_temperature": self.temperatures[int(np.argmin(nll))]}
