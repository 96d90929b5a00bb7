# SPDX-License-Identifier: GPL-2.0-or-later
"""Progressive crop size (training.progressive): the switch step, a run that switches with
its weights and Adam state intact, the model it exports, and resumes on both sides of the switch."""
from __future__ import annotations

import csv
import gc
import json
import weakref
from types import SimpleNamespace

import numpy as np
import pytest

from dubai_segmenter.engine.model_file import read_metadata
from dubai_segmenter.engine.predictors import open_predictor
from tests.training.helpers import write_synthetic_dataset
from tests.training.test_train_end_to_end import TINY
from training import progressive
from training import train as train_module
from training.config import NATIVE
from training.progressive import final_batch_size, resume_recipe, switch_step
from training.schedule import Cycle
from training.train import compile_network, main, train

#: 32 -> 48 pixels at step 6 of 8: batch 4 * (32 / 48) ** 2 = 1.8 -> 2 crops.
RECIPE = NATIVE.with_overrides(**TINY, image_size=32, steps_per_epoch=4, max_epochs=100, warmup_steps=2,
                               validation_crops_per_image=2, final_crop_size=48, final_crop_fraction=0.25)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data"), tiles=(1, 2), size=(72, 80))


def _cycle(start, end):
    return Cycle(start, end, warmup=2, peak=1e-3, floor=1e-5)


def test_switch_step_is_the_start_of_the_cycles_last_fraction():
    recipe = NATIVE.with_overrides(final_crop_size=384)
    assert switch_step(recipe, _cycle(0, 1000)) == 850
    assert switch_step(recipe, _cycle(600, 800)) == 770  # an extension's cycle: its own last 15 %
    assert switch_step(recipe, _cycle(0, 10)) == 8  # 1.5 final steps round to 2
    assert switch_step(recipe, _cycle(0, None)) is None  # hours not converted yet: not decided
    assert switch_step(NATIVE, _cycle(0, 1000)) is None  # knob off
    assert switch_step(recipe.with_overrides(final_crop_fraction=1.0), _cycle(5, 20)) == 5
    assert switch_step(recipe.with_overrides(final_crop_fraction=0.0), _cycle(5, 20)) == 20
    with pytest.raises(ValueError, match="final_crop_fraction"):
        switch_step(recipe.with_overrides(final_crop_fraction=1.5), _cycle(0, 10))
    assert not progressive.at_final_size(recipe, _cycle(0, 1000), 849)
    assert progressive.at_final_size(recipe, _cycle(0, 1000), 850)


def test_final_batch_keeps_about_the_pixels_per_batch():
    assert final_batch_size(NATIVE.with_overrides(final_crop_size=384)) == 4  # 8 * (256 / 384) ** 2 = 3.6
    assert final_batch_size(NATIVE.with_overrides(final_crop_size=512)) == 2
    assert final_batch_size(NATIVE.with_overrides(final_crop_size=4096)) == 1
    assert final_batch_size(NATIVE.with_overrides(final_crop_size=384, final_batch_size=3)) == 3
    final = progressive.final_recipe(NATIVE.with_overrides(final_crop_size=384))
    assert (final.image_size, final.batch_size) == (384, 4)


def test_resume_builds_at_the_size_of_its_phase():
    run = {"budget": {"steps": 100}}
    state = {"steps": 84, "seconds": 1.0, "cycle": _cycle(0, 100).to_dict()}
    recipe = NATIVE.with_overrides(final_crop_size=384)
    assert resume_recipe(recipe, run, state) is recipe
    assert resume_recipe(recipe, run, {**state, "steps": 85}).image_size == 384
    assert resume_recipe(recipe, run, {}) is recipe
    # A larger budget starts a new cycle at the current step: back to the first phase.
    assert resume_recipe(recipe, {"budget": {"steps": 200}}, {**state, "steps": 100}) is recipe


def test_an_hours_budget_switches_once_its_end_is_known():
    """Before the hours budget is converted to an end step there is no switch step; the
    conversion at an epoch end can put the switch behind the run, which then switches at once."""
    recipe = NATIVE.with_overrides(final_crop_size=384)
    hours = Cycle(0, None, 2, 1e-3, 1e-5, hours=1.0)
    clock = SimpleNamespace(finished=False, steps=90, cycle=hours)
    stop = progressive.StopAtSwitch(recipe, clock)
    stop.set_model(SimpleNamespace(stop_training=False))
    stop.on_train_batch_end(0)
    stop.on_epoch_end(0)
    assert not stop.model.stop_training
    clock.cycle = hours.converted(90, 600.0, 6.0)  # 3000 s left at 6 s a step: ends at 590
    assert switch_step(recipe, clock.cycle) == 501
    stop.on_epoch_end(0)
    assert not stop.model.stop_training
    clock.cycle = hours.converted(90, 3000.0, 60.0)  # 600 s left at 60 s a step: ends at 100
    assert switch_step(recipe, clock.cycle) == 85
    stop.on_epoch_end(0)
    assert stop.model.stop_training  # already past it: at once
    clock.finished, stop.model.stop_training = True, False  # the end of the run is no switch
    stop.on_train_batch_end(0)
    stop.on_epoch_end(0)
    assert not stop.model.stop_training


def test_transfer_refuses_optimizers_of_another_configuration():
    frequencies = np.full(6, 1 / 6)
    small = compile_network(RECIPE, frequencies, None)
    small.optimizer.build(small.trainable_variables)
    other = compile_network(RECIPE.with_overrides(image_size=48), frequencies, None)
    other.optimizer.amsgrad = True  # as get_config would report an AMSGrad Adam
    with pytest.raises(ValueError, match="optimizers differ"):
        progressive.transfer_optimizer(small, other)


def _rows(run_dir):
    with open(run_dir / "model_training.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_switches_size_with_its_weights_and_adam_state_and_resumes(data, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    switches, fed = [], []
    real_switch, real_fit = progressive.switch_network, train_module._fit_phase

    def switch(old, new):
        result = real_switch(old, new)
        switches.append((weakref.ref(old), result, int(old.optimizer.iterations.numpy()),
                         [[v.numpy().copy() for v in [*m.weights, *m.optimizer.variables]] for m in (old, result)]))
        return result

    def fit_phase(model, recipe, run_dir, cycle, state, train, *args, **kwargs):
        gc.collect()
        fed.append((model.input_shape, next(iter(train))[0].shape, state["steps"],
                    bool(switches) and switches[-1][0]() is not None))  # the first phase's network is kept
        return real_fit(model, recipe, run_dir, cycle, state, train, *args, **kwargs)

    monkeypatch.setattr(train_module, "switch_network", switch)
    monkeypatch.setattr(train_module, "_fit_phase", fit_phase)
    model_path = train(RECIPE, run_dir, steps=8, data_root=data)

    # 8 steps, the last 25 % at 48 pixels: 4 + 2 steps at 32, then 2 at 48, batch 2.
    assert fed == [((None, 32, 32, 3), (4, 32, 32, 3), 0, False), ((None, 48, 48, 3), (2, 48, 48, 3), 6, False)]
    assert [int(r["steps"]) for r in _rows(run_dir)] == [4, 6, 8]
    assert [int(r["epoch"]) for r in _rows(run_dir)] == [0, 1, 2]
    _, new, iterations, (before, after) = switches[0]
    # Right after the switch the new network holds the weights and the Adam state (iteration
    # count, learning rate, moments), equal to the old network's.
    assert len(before) == len(after) == len(new.weights) + 2 + 2 * len(new.trainable_variables)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert iterations == 6 and int(after[len(new.weights)]) == 6
    run = json.loads((run_dir / "run.json").read_text())
    assert run["training"]["steps"] == 8
    assert run["training"]["progressive"] == {"switch_step": 6, "crop_size": 32, "batch_size": 4,
                                              "final_crop_size": 48, "final_batch_size": 2}
    assert int(new.optimizer.iterations.numpy()) == 8  # Adam's step count went on from 6
    # The learning rate followed the one cycle across the switch (set before each step from the step count).
    cycle = Cycle.from_dict(run["training"]["cycle"])
    assert (cycle.start, cycle.end) == (0, 8)
    assert [float(r["learning_rate"]) for r in _rows(run_dir)] == pytest.approx(
        [cycle.learning_rate(int(r["steps"]) - 1) for r in _rows(run_dir)], rel=1e-5)

    # The engine loads the exported model and runs it.
    assert read_metadata(model_path).provenance["training"]["progressive"]["switch_step"] == 6
    predictor = open_predictor(model_path)
    assert predictor.predict(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 64, 64, 6)

    # Extending the run to 12 steps: a new cycle 8..12 switches again at step 11, and the
    # checkpoint written at 48 pixels loads into the first phase's 32-pixel network.
    fed.clear()
    switches.clear()
    train(RECIPE, run_dir, steps=12, data_root=data, evaluate=False)
    assert fed == [((None, 32, 32, 3), (4, 32, 32, 3), 8, False), ((None, 48, 48, 3), (2, 48, 48, 3), 11, False)]
    assert [int(r["steps"]) for r in _rows(run_dir)][3:] == [11, 12]


def test_switch_copies_weights_and_optimizer_values_exactly():
    frequencies = np.full(6, 1 / 6)
    small = compile_network(RECIPE, frequencies, None)
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 5, (4, 32, 32)).astype(np.uint8)
    small.fit(x, y, epochs=1, batch_size=4, verbose=0)  # so the moments are not zero
    large = progressive.switch_network(small, compile_network(progressive.final_recipe(RECIPE), frequencies, None))
    assert large.input_shape == (None, 48, 48, 3)
    assert int(large.optimizer.iterations.numpy()) == 1
    moments = [v.numpy() for v in small.optimizer.variables[2:]]
    assert any(np.abs(m).max() > 0 for m in moments)
    for a, b in zip([*small.weights, *small.optimizer.variables], [*large.weights, *large.optimizer.variables]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # And the copy trains on at the new size.
    large.fit(np.resize(x, (2, 48, 48, 3)), np.resize(y, (2, 48, 48)), epochs=1, batch_size=2, verbose=0)
    assert int(large.optimizer.iterations.numpy()) == 2


def test_resume_from_a_checkpoint_written_after_the_switch(data, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    # Started from the command line: the knobs are --set like any other (TINY's too).
    recipe = RECIPE.with_overrides(steps_per_epoch=1)
    knobs = {**TINY, "final_crop_size": 48, "final_crop_fraction": 0.25, "final_batch_size": None,
             **{k: getattr(recipe, k) for k in ("image_size", "steps_per_epoch", "max_epochs", "warmup_steps",
                                                  "validation_crops_per_image")}}
    monkeypatch.setenv("DATA_DIR", str(data))
    main(["--recipe", "native", "--steps", "8", "--out", str(run_dir), "--no-evaluate",
          *[f"--set={name}={json.dumps(value)}" for name, value in knobs.items()]])
    assert json.loads((run_dir / "run.json").read_text())["recipe"] == recipe.to_dict()
    # Drop back to the checkpoint of step 7 (written in the final phase), as if killed there.
    checkpoints = run_dir / "checkpoints"
    (checkpoints / "latest").write_text("epoch-0007")
    state = json.loads((checkpoints / "epoch-0007" / "state.json").read_text())
    assert state["steps"] == 7
    built, loaded = [], []
    real_compile, real_load = train_module.compile_network, train_module.load_checkpoint
    monkeypatch.setattr(train_module, "compile_network",
                        lambda recipe, *a: built.append(recipe.image_size) or real_compile(recipe, *a))
    monkeypatch.setattr(train_module, "load_checkpoint",
                        lambda folder, model: (real_load(folder, model), loaded.append(
                            (model.input_shape, int(model.optimizer.iterations.numpy()))))[0])
    # The same command again resumes at step 7 in a 48-pixel network (no switch: already there).
    train(recipe, run_dir, steps=8, data_root=data, evaluate=False)
    assert built == [48] and loaded == [((None, 48, 48, 3), 7)]  # with Adam's state of step 7
    rows = _rows(run_dir)
    assert [int(r["steps"]) for r in rows][-1] == 8
    run = json.loads((run_dir / "run.json").read_text())
    assert run["training"]["steps"] == 8 and run["training"]["progressive"]["switch_step"] == 6
