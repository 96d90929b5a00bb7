# SPDX-License-Identifier: GPL-2.0-or-later
"""Recipes hold the reference's published knobs; schedules give the learning rates they claim."""
from __future__ import annotations

import pytest

from training.callbacks import reference_learning_rate
from training.config import NATIVE, REFERENCE, Recipe, get_recipe
from training.train import _knob


def test_reference_recipe_is_the_reference_project():
    r = REFERENCE
    assert (r.input_mode, r.image_size, r.batch_size, r.steps_per_epoch, r.max_epochs) == ("squash", 512, 8, 32, 50)
    assert (r.loss, r.learning_rate, r.early_stopping_patience, r.early_stopping_min_delta) == \
        ("crossentropy", 1e-4, 12, 0.001)
    assert r.offline_copies == 8
    assert r.reference_crop_sizes[7] == (1600, 1600) and r.reference_crop_sizes[8] == (1920, 1280)


def test_recipes_by_name_and_round_trip():
    assert get_recipe("native") is NATIVE
    with pytest.raises(ValueError, match="reference, native"):
        get_recipe("fast")
    assert Recipe.from_dict(REFERENCE.to_dict()) == REFERENCE


def test_reference_schedule():
    assert reference_learning_rate(REFERENCE, 0) == pytest.approx(1e-4)
    assert reference_learning_rate(REFERENCE, 60) == pytest.approx(1e-5)
    assert reference_learning_rate(REFERENCE, 30) == pytest.approx(1e-4 * 10 ** -0.5)


def test_command_line_knobs():
    assert _knob("image_size=384") == ("image_size", 384)
    assert _knob("loss=crossentropy") == ("loss", "crossentropy")
    assert _knob('architecture_params={"decoder_filters": [256, 128, 64, 32]}')[1]["decoder_filters"][0] == 256
    with pytest.raises(ValueError, match="KNOB=VALUE"):
        _knob("image_size")
