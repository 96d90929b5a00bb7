# SPDX-License-Identifier: GPL-2.0-or-later
"""training.compare: the lever-study table names what each run changed and every score."""
from __future__ import annotations

import json

import pytest

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from training.compare import main, rows
from training.config import NATIVE


def _run(folder, recipe, evaluations):
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"recipe": recipe.to_dict(), "precision": {"policy": "mixed_bfloat16"},
                                                 "training": {"steps": 300, "cpu_hours": 0.5}}))
    for name, accuracy in evaluations.items():
        (folder / name).mkdir()
        per_class = {c.key: {"iou": 0.1 * c.id} for c in DUBAI_CLASSES}
        (folder / name / "metrics.json").write_text(json.dumps({"sliding_window": {
            "pixel_accuracy": accuracy, "mean_iou": 0.6, "soft_dice": 0.7, "per_class": per_class}}))
    return folder


def test_rows_name_the_changed_knobs_and_both_evaluations_of_an_ema_run(tmp_path, capsys):
    params = {**NATIVE.architecture_params, "dropout": 0.0}
    run = _run(tmp_path / "ema", NATIVE.with_overrides(ema_momentum=0.99, architecture_params=params, seed=7),
               {"evaluation": 0.86, "evaluation-without-ema": 0.85})
    table = rows(run)
    assert [r["run"] for r in table] == ["ema", "ema (last weights)"]
    assert table[0]["changes"] == 'architecture_params={"dropout": 0.0}, ema_momentum=0.99, seed=7'
    assert table[1]["accuracy"] == 0.85 and table[0]["road"] == pytest.approx(0.2)
    assert "unlabeled" not in table[0]
    plain = _run(tmp_path / "plain", NATIVE, {"evaluation": 0.84})
    main([str(plain), str(run)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| run | changes | precision |") and len(out) == 5
    assert out[2].startswith("| plain | none | mixed_bfloat16 | 300 | 0.500 | 0.840 |")
