# SPDX-License-Identifier: GPL-2.0-or-later
"""training.lever_study on tiny models: every experiment starts from the same model file,
changes only its knobs, and a finished study is not trained again."""
from __future__ import annotations

import json

import pytest

from tests.training.helpers import write_synthetic_dataset
from tests.training.test_levers import TINY
from training import lever_study
from training.config import NATIVE
from training.lever_study import EXPERIMENTS, main, run_study
from training.train import train


def test_study_runs_each_experiment_from_the_same_model_and_tables_them(tmp_path, monkeypatch):
    data = write_synthetic_dataset(tmp_path / "data", tiles=(1, 2), size=(72, 80))
    start = train(NATIVE.with_overrides(**TINY), tmp_path / "start", steps=1, data_root=data, evaluate=False)
    table = run_study(start, tmp_path / "study", 2, ["bf16-s42-ema"], base=TINY, data_root=data)
    lines = table.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| bf16-s42-ema", "| bf16-s42-ema (last weights)"]
    assert "ema_momentum=0.99" in lines[2] and 'precision="mixed_bfloat16"' in lines[2]
    run = json.loads((tmp_path / "study" / "bf16-s42-ema" / "run.json").read_text())
    assert run["init_from"]["path"] == str(start) and run["training"]["steps"] == 2
    assert run["recipe"]["seed"] == 42 and run["precision"]["policy"] == "mixed_bfloat16"
    # Run again: nothing is trained, the same table comes back.
    monkeypatch.setattr(lever_study, "train", lambda *a, **k: pytest.fail("a finished experiment was trained again"))
    assert run_study(start, tmp_path / "study", 2, ["bf16-s42-ema"], base=TINY) == table


def test_study_names_unknown_experiments():
    assert {"fp32-s42", "bf16-s7-ema", "progressive"} <= set(EXPERIMENTS)
    with pytest.raises(SystemExit):
        main(["--init-from", __file__, "--out", "x", "--only", "rot45"])
