# SPDX-License-Identifier: GPL-2.0-or-later
"""Scores and losses against values worked out by hand, with ignored (black) pixels."""
from __future__ import annotations

import numpy as np
import pytest

from training.dataset import IGNORE
from training.losses import class_weights, masked_crossentropy, mean_class_dice_loss
from training.metrics import (
    AwayFromBoundaries,
    TemperatureScan,
    boundary_band,
    confusion_matrix,
    masked_accuracy,
    pooled_soft_dice,
    scores,
    soft_dice,
    soft_dice_terms,
    training_metrics,
)

LABELS = np.array([[0, 0, 1], [1, IGNORE, 2]], dtype=np.uint8)
PREDICTED = np.array([[0, 1, 1], [1, 0, 2]], dtype=np.uint8)   # the ignored pixel says 0: not counted


def test_confusion_matrix_and_scores_by_hand():
    matrix = confusion_matrix(LABELS, PREDICTED)
    assert matrix.sum() == 5
    assert matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[1, 1] == 2 and matrix[2, 2] == 1
    result = scores(matrix)
    assert result["pixel_accuracy"] == pytest.approx(4 / 5)
    per_class = result["per_class"]
    assert per_class["building"]["iou"] == pytest.approx(1 / 2)       # 1 / (2 + 1 - 1)
    assert per_class["land"]["iou"] == pytest.approx(2 / 3)           # 2 / (2 + 3 - 2)
    assert per_class["road"]["iou"] == pytest.approx(1.0)
    assert per_class["building"]["f1"] == pytest.approx(2 / 3)        # 2 * 1 / (2 + 1)
    assert per_class["land"]["f1"] == pytest.approx(4 / 5)            # 2 * 2 / (2 + 3)
    assert per_class["vegetation"]["iou"] is None and per_class["water"]["iou"] is None
    # Mean over the real classes that occur: (1/2 + 2/3 + 1) / 3.
    assert result["mean_iou"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)


def test_mean_iou_leaves_out_unlabeled():
    labels = np.array([[0, 5]], dtype=np.uint8)
    result = scores(confusion_matrix(labels, np.array([[0, 0]], dtype=np.uint8)))
    assert result["per_class"]["unlabeled"]["iou"] == 0.0
    assert result["mean_iou"] == pytest.approx(0.5)   # building only: 1 / (1 + 2 - 1)


def _probabilities(rows):
    return np.array(rows, dtype=np.float32)


def test_pooled_soft_dice_by_hand_skips_ignored_pixels():
    labels = np.array([[0, IGNORE]], dtype=np.uint8)
    probs = _probabilities([[[0.8, 0.2, 0, 0, 0, 0], [0.0, 0.0, 0, 0, 0, 1.0]]])
    intersection, total = soft_dice_terms(labels, probs)
    assert float(intersection) == pytest.approx(0.8) and float(total) == pytest.approx(2.0)
    assert float(pooled_soft_dice(intersection, total)) == pytest.approx((2 * 0.8 + 1) / (2 + 1))
    assert float(soft_dice(labels[None], probs[None])) == pytest.approx(2.6 / 3)


def test_training_metrics_agree_with_the_confusion_matrix():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, (2, 16, 16)).astype(np.uint8)
    labels[rng.random(labels.shape) < 0.2] = IGNORE
    probs = rng.random((2, 16, 16, 6)).astype(np.float32)
    probs /= probs.sum(-1, keepdims=True)
    expected = scores(confusion_matrix(labels, probs.argmax(-1)))
    assert float(masked_accuracy(labels, probs)) == pytest.approx(expected["pixel_accuracy"], abs=1e-6)
    iou = [m for m in training_metrics() if getattr(m, "name", "") == "mean_iou"][0]
    iou.update_state(labels, probs)
    assert float(iou.result()) == pytest.approx(expected["mean_iou"], abs=1e-5)


def test_masked_crossentropy_by_hand():
    labels = np.array([[[0, 1, IGNORE]]], dtype=np.uint8)
    probs = _probabilities([[[[0.5, 0.5, 0, 0, 0, 0], [0.1, 0.9, 0, 0, 0, 0], [1e-9, 1, 0, 0, 0, 0]]]])
    expected = -(np.log(0.5) + np.log(0.9)) / 2
    assert float(masked_crossentropy()(labels, probs)) == pytest.approx(expected, rel=1e-5)
    weights = np.array([2.0, 1.0, 1, 1, 1, 1], dtype=np.float32)
    expected = -(2 * np.log(0.5) + np.log(0.9)) / 2
    assert float(masked_crossentropy(weights)(labels, probs)) == pytest.approx(expected, rel=1e-5)


def test_class_weights_keep_an_average_pixel_at_one():
    frequencies = np.array([0.13, 0.52, 0.09, 0.10, 0.14, 0.02])
    weights = class_weights(frequencies, 0.5)
    assert float((weights * frequencies).sum()) == pytest.approx(1.0, rel=1e-5)
    assert weights[1] == weights.min() and weights[5] == weights.max()
    assert weights[1] / weights[0] == pytest.approx(np.sqrt(0.13 / 0.52), rel=1e-5)
    assert class_weights(np.array([0.5, 0.5, 0.0]), 0.5)[2] == 0.0


def test_the_unlabeled_class_weighs_no_more_than_land():
    """Real shares (v1's run.json): uncapped, 'Unlabeled' (id 5) would weigh 9x land."""
    frequencies = np.array([0.137, 0.497, 0.096, 0.121, 0.143, 0.006])
    assert class_weights(frequencies, 0.5)[5] / class_weights(frequencies, 0.5)[1] > 9
    weights = class_weights(frequencies, 0.5, capped=(5,))
    assert weights[5] == pytest.approx(weights[1]) and weights[1] == weights.min()
    assert float((weights * frequencies).sum()) == pytest.approx(1.0, rel=1e-5)
    assert weights[2] / weights[1] == pytest.approx(np.sqrt(0.497 / 0.096), rel=1e-5)  # others unchanged


def test_dice_loss_is_zero_for_a_perfect_answer_and_ignores_black():
    labels = np.array([[[0, 1, 2, 3, 4, IGNORE]]], dtype=np.uint8)
    perfect = np.eye(6, dtype=np.float32)[[0, 1, 2, 3, 4, 0]][None, None]
    perfect[0, 0, 5] = [0, 0, 0, 0, 0, 1]          # anything on the ignored pixel
    assert float(mean_class_dice_loss(labels, perfect)) == pytest.approx(0.0, abs=1e-6)
    wrong = np.roll(perfect, 1, axis=-1)
    assert float(mean_class_dice_loss(labels, wrong)) > 0.6


def test_boundary_band_is_the_pixels_within_its_width_of_a_change_of_class():
    labels = np.zeros((5, 9), dtype=np.uint8)
    labels[:, 5:] = 1                      # a vertical edge between columns 4 and 5
    assert boundary_band(labels, 1)[0].tolist() == [False] * 4 + [True, True] + [False] * 3
    assert boundary_band(labels, 2)[0].tolist() == [False] * 3 + [True] * 4 + [False] * 2
    assert not boundary_band(np.full((4, 4), 3, np.uint8), 2).any()       # one class: no boundary
    unannotated = np.zeros((3, 6), dtype=np.uint8)
    unannotated[:, 4:] = IGNORE                                           # annotation stops at column 3
    assert boundary_band(unannotated, 1)[0].tolist() == [False, False, False, True, True, False]


def test_away_from_boundaries_scores_outside_the_band_and_counts_errors_in_it():
    labels = np.zeros((4, 10), dtype=np.uint8)
    labels[:, 5:] = 1
    predicted = labels.copy()
    predicted[:, 5] = 0                    # the edge drawn one pixel late: 4 errors, all at the edge
    predicted[0, 9] = 0                    # and one error far from it
    probabilities = np.eye(6, dtype=np.float32)[predicted]
    band = AwayFromBoundaries(1)
    band.add(labels, probabilities)
    result = band.result()
    assert result["band_pixel_share"] == pytest.approx(8 / 40)
    assert result["band_error_share"] == pytest.approx(4 / 5)
    outside = result["outside_band"]
    assert outside["pixel_accuracy"] == pytest.approx(31 / 32)            # only the far error is left
    assert outside["per_class"]["land"]["iou"] == pytest.approx(15 / 16)
    assert scores(confusion_matrix(labels, predicted))["pixel_accuracy"] == pytest.approx(35 / 40)


def test_temperature_scan_matches_soft_dice_at_one_and_finds_the_calibrating_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 50, 6)).astype(np.float32) * 2
    true_probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = np.array([[rng.choice(6, p=p) for p in row] for row in true_probabilities], dtype=np.uint8)
    labels[:3] = IGNORE
    # A model whose logits are those of the truth divided by 2: too soft, calibrated at T = 0.5.
    soft = np.exp(logits / 2) / np.exp(logits / 2).sum(-1, keepdims=True)
    scan = TemperatureScan()
    scan.add(labels, soft)
    result = scan.result()
    at_one = result["temperatures"].index(1.0)
    assert result["soft_dice"][at_one] == pytest.approx(float(soft_dice(labels[None], soft[None])), abs=1e-5)
    assert result["least_nll_temperature"] == 0.5
    assert result["soft_dice"][0] > result["soft_dice"][at_one]    # sharper, more confident where right
    ll = np.log(soft[labels != IGNORE, labels[labels != IGNORE]])
    assert result["nll_per_pixel"][at_one] == pytest.approx(-ll.mean(), rel=1e-5)
