# SPDX-License-Identifier: GPL-2.0-or-later
"""Train the land-cover network on the HITL Dubai dataset within a step or time budget.

    python -m training.train --recipe native --hours 2 --out runs/NAME
    python -m training.train --recipe native --steps 600 --init-from MODEL.safetensors --out runs/NAME

A run folder holds run.json (recipe, split, budget, starting model), checkpoints/
(resumable), best and final weights, model_training.csv, learning_curves.png, the exported
model.safetensors and evaluation/. Running the same command again resumes from the last
checkpoint until the run's step budget is spent; a larger budget extends a finished run
with a new warm-up + cosine cycle (training.schedule). --init-from starts from a model
file's weights (training.lineage).

At the end BatchNorm statistics are re-estimated with the final weights (training.batchnorm),
the model file is written, evaluated with the engine's sliding window, and written again
with its validation metrics. A recipe with `ema_momentum` exports the weights' moving
average and, for comparison, its last weights as model-without-ema.safetensors, scored in
evaluation-without-ema/.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.onnx_file import file_sha256
from training.batchnorm import mode_agreement, recalibrate_batchnorm
from training.callbacks import (
    KeepFreedMemory,
    LastWeights,
    LovaszPhase,
    PeriodicValidation,
    ResumableEarlyStopping,
    RunCheckpoint,
    TrainingClock,
)
from training.checkpoint import latest_checkpoint, load_checkpoint
from training.config import RECIPES, Recipe, get_recipe
from training.dataset import class_frequencies, data_dir, describe_split, load_sample
from training.export import FINAL_WEIGHTS, MODEL_FILE, build_network, export_model, summary_metrics
from training.geotiff_pairs import PairError
from training.inputs import calibration_batches, training_data, validation_data
from training.lineage import init_record, load_initial_weights, total
from training.losses import build_loss
from training.metrics import training_metrics
from training.precision import resolve_precision, use_policy
from training.progressive import StopAtSwitch, at_final_size, final_recipe, resume_recipe, switch_network
from training.progressive import record as progressive_record
from training.schedule import plan_cycle
from training.splits import training_split

BEST_WEIGHTS = "best.weights.h5"
WITHOUT_EMA = "model-without-ema.safetensors"


def start_or_resume(run_dir: Path, recipe: Recipe, budget: dict[str, Any], data_root: Path,
                    encoder_weights: str | None, init_from: Path | None = None) -> dict[str, Any]:
    """run.json of the run: written for a new run, checked (same recipe, same starting model)
    and updated on resume."""
    path = run_dir / "run.json"
    train, validation, split_name = training_split(data_root)
    if path.is_file():
        run = json.loads(path.read_text())
        stored, ours = _stored_recipe(run["recipe"]), recipe.to_dict()
        if stored != ours:
            raise SystemExit(f"{run_dir} holds a run of another recipe ({run['recipe']['name']}"
                             f"{_differences(stored, ours)}); choose another --out or the same recipe")
        if init_from is not None and file_sha256(init_from) != (run.get("init_from") or {}).get("sha256"):
            raise SystemExit(f"{run_dir} was not started from {init_from}; resume it without --init-from "
                             "or choose another --out")
    else:
        frequencies = class_frequencies([load_sample(s)[1] for s in train])
        run = {"name": run_dir.name, "recipe": recipe.to_dict(), "split": describe_split(train, validation, split_name),
               "data_dir": str(data_root), "encoder_weights": encoder_weights or "random initialisation",
               "class_frequencies": [round(float(f), 6) for f in frequencies],
               "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if init_from is not None:
            try:
                run["init_from"] = init_record(init_from, recipe)
            except (ValueError, ModelFileError) as exc:
                raise SystemExit(f"--init-from: {exc}") from None
    run["budget"] = budget
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1))
    return run


def _stored_recipe(stored: dict[str, Any]) -> dict[str, Any] | None:
    """A run folder's recipe with the knobs added since it was written at their defaults (which
    reproduce the behaviour it ran with), so code updates do not strand a run; None if unreadable."""
    try:
        return Recipe.from_dict(stored).to_dict()
    except (TypeError, ValueError):
        return None


def _differences(stored: dict[str, Any] | None, ours: dict[str, Any]) -> str:
    """', where KNOB=run's value (now VALUE)...' for the knobs a run folder's recipe differs in."""
    if stored is None or stored["name"] != ours["name"]:
        return ""
    changed = [f"{k}={json.dumps(stored.get(k))} (now {json.dumps(ours[k])})" for k in ours if stored.get(k) != ours[k]]
    return ", where " + ", ".join(changed) + "; --set KNOB=VALUE resumes it as it was"


def compile_network(recipe: Recipe, frequencies: np.ndarray, encoder_weights: str | None) -> keras.Model:
    model = build_network(recipe, recipe.image_size, encoder_weights)
    optimizer = keras.optimizers.Adam(recipe.learning_rate, use_ema=recipe.ema_momentum > 0,
                                      ema_momentum=recipe.ema_momentum or 0.99)
    model.compile(optimizer=optimizer,
                  loss=build_loss(recipe, frequencies), metrics=training_metrics())
    return model


def fit(phase: Callable[[Recipe, int, keras.Model | None], tuple], recipe: Recipe, run: dict[str, Any],
        run_dir: Path, last: LastWeights | None = None) -> tuple[dict, keras.Model]:
    """Resume from the last checkpoint (or start from the run's model file, if any) and fit
    until the step budget, early stop or max epochs; returns the run's training summary and
    the network trained last.

    `phase(at, steps, previous)` gives the compiled network and the training, validation and
    calibration inputs at recipe `at`'s crop and batch size, from step `steps`; with a
    `previous` network its weights and optimizer state. With recipe.final_crop_size the fit
    stops at the switch step and goes on at that size (training.progressive); the first
    phase's network and inputs are dropped then, so they need no memory in the second.
    `last` keeps the last epoch's weights (an EMA run exports them beside the average).
    """
    state = {"epoch": 0, "steps": 0, "seconds": 0.0, "cpu_seconds": 0.0, "best_val_loss": None}
    checkpoint = latest_checkpoint(run_dir)
    saved = json.loads((checkpoint / "state.json").read_text()) if checkpoint is not None else {}
    at = resume_recipe(recipe, run, saved)  # the final crop size once its switch step is passed
    model, train, validation, calibration = phase(at, saved.get("steps", 0), None)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model)
        print(f"Resuming {run_dir} at epoch {state['epoch']} ({state['steps']} steps, "
              f"{state['seconds'] / 3600:.2f} h trained), {at.image_size}-pixel inputs.", flush=True)
    elif run.get("init_from"):
        load_initial_weights(model, Path(run["init_from"]["path"]), recipe)
        lineage = run["init_from"]["lineage"]
        print(f"Starting from {run['init_from']['path']} ({len(lineage)} earlier run(s), "
              f"{total(lineage, 'hours')} h), fresh optimizer.", flush=True)
    cycle = plan_cycle(recipe, state, run["budget"].get("steps"), run["budget"].get("hours"),
                       init_from=bool(run.get("init_from")))
    switching = recipe.final_crop_size is not None and at is recipe
    clock = _fit_phase(model, recipe, run_dir, cycle, state, train, validation, calibration, last, switching)
    latest = latest_checkpoint(run_dir)
    state = json.loads((latest / "state.json").read_text()) if latest is not None else state
    if switching and _going_on(recipe, clock, state) and at_final_size(recipe, clock.cycle, clock.steps):
        final = final_recipe(recipe)
        print(f"Step {clock.steps}: the last steps of the cycle train on {final.image_size}-pixel crops, "
              f"batch {final.batch_size}.", flush=True)
        steps, cycle = clock.steps, clock.cycle
        del clock, train, validation, calibration  # the clock holds the first phase's network
        model, train, validation, calibration = phase(final, steps, model)
        gc.collect()
        clock = _fit_phase(model, recipe, run_dir, cycle, state, train, validation, calibration, last)
    summary = {"steps": clock.steps, "hours": round(clock.seconds / 3600, 3),
               "cpu_hours": round(clock.cpu_seconds / 3600, 3), "cycle": clock.cycle.to_dict(),
               "epochs": len(_csv_rows(run_dir / "model_training.csv"))}
    if recipe.final_crop_size is not None:
        summary["progressive"] = progressive_record(recipe, clock.cycle)
    return summary, model


def _fit_phase(model: keras.Model, recipe: Recipe, run_dir: Path, cycle, state: dict[str, Any], train, validation,
               calibration, last: LastWeights | None = None, switching: bool = False) -> TrainingClock:
    """One model.fit from the counters in `state`; with `switching` it ends at the switch step."""
    clock = TrainingClock(recipe, cycle, state["steps"], state["seconds"], state.get("cpu_seconds", 0.0))
    best = keras.callbacks.ModelCheckpoint(str(run_dir / BEST_WEIGHTS), monitor="val_loss", save_best_only=True,
                                           save_weights_only=True, initial_value_threshold=state["best_val_loss"])
    stopping = None
    if recipe.early_stopping_patience:
        stopping = ResumableEarlyStopping(recipe, state.get("wait", 0), state.get("stopping_best"),
                                          state.get("stopping_best_epoch", 0))
    callbacks = [KeepFreedMemory(), PeriodicValidation(recipe, validation, calibration), clock,
                 *([StopAtSwitch(recipe, clock)] if switching else []), best,
                 *([stopping] if stopping else []),
                 keras.callbacks.CSVLogger(str(run_dir / "model_training.csv"), append=True),
                 RunCheckpoint(run_dir, clock, best, stopping)]
    if getattr(model.loss, "lovasz_scale", None) is not None:
        callbacks.append(LovaszPhase(recipe, clock, model.loss.lovasz_scale))
    if last is not None:
        callbacks.append(last)
    if _going_on(recipe, clock, state):
        model.fit(train, epochs=recipe.max_epochs, initial_epoch=state["epoch"],
                  steps_per_epoch=recipe.steps_per_epoch, callbacks=callbacks, shuffle=False,
                  verbose=1 if sys.stdout.isatty() else 2)
    return clock


def _going_on(recipe: Recipe, clock: TrainingClock, state: dict[str, Any]) -> bool:
    """Whether a run at checkpoint `state` trains on: budget left, epochs left, no early stop."""
    stopped_early = bool(recipe.early_stopping_patience) and state.get("wait", 0) >= recipe.early_stopping_patience
    return not clock.finished and state["epoch"] < recipe.max_epochs and not stopped_early


def finish(model: keras.Model, recipe: Recipe, run: dict, run_dir: Path, data_root: Path,
           evaluate: bool, last: list[np.ndarray] | None = None) -> Path:
    """Best weights (reference) -> BatchNorm re-estimation -> model file -> evaluation; the
    same for the `last` weights of an EMA run, beside it."""
    if recipe.early_stopping_patience and (run_dir / BEST_WEIGHTS).is_file():
        model.load_weights(run_dir / BEST_WEIGHTS)  # the reference restored its best val_loss weights
    path = _export(model.get_weights(), recipe, run, run_dir / MODEL_FILE, data_root, evaluate, "evaluation")
    if last is not None:
        _export(last, recipe, run, run_dir / WITHOUT_EMA, data_root, evaluate, "evaluation-without-ema")
    return path


def _export(weights: list[np.ndarray], recipe: Recipe, run: dict, path: Path, data_root: Path,
            evaluate: bool, evaluation: str) -> Path:
    """`weights` in a float32 network at the re-estimation tile size, BatchNorm statistics
    re-estimated, written to `path` and scored into run_dir/`evaluation`."""
    run_dir = path.parent
    train, _, _ = training_split(data_root)
    size = recipe.bn_recalibration_size or recipe.image_size
    use_policy("float32")  # exported and evaluated as the engine runs it, whatever the training arithmetic
    model = build_network(recipe, size)
    model.set_weights(weights)
    at_size = recipe.with_overrides(image_size=size,
                                    batch_size=recipe.bn_recalibration_batch_size or recipe.batch_size)
    probe = next(calibration_batches(at_size, train, seed=recipe.seed + 1))
    before = mode_agreement(model, probe)
    used = recalibrate_batchnorm(model, calibration_batches(at_size, train, seed=recipe.seed),
                                 recipe.bn_recalibration_batches)
    after = mode_agreement(model, probe)
    print(f"BatchNorm statistics re-estimated on {used} batches of {size}-pixel tiles: train/inference-mode "
          f"agreement {before:.3f} -> {after:.3f}", flush=True)
    key = "batchnorm" if path.name == MODEL_FILE else "batchnorm_without_ema"
    run["training"][key] = {"recalibration_batches": used, "tile_size": size,
                                    "mode_agreement_before": round(before, 4),
                                    "mode_agreement_after": round(after, 4)}
    (run_dir / "run.json").write_text(json.dumps(run, indent=1))
    if path.name == MODEL_FILE:
        model.save_weights(run_dir / FINAL_WEIGHTS)
    path = export_model(model, recipe, run, path)
    if evaluate:
        from training.evaluate import evaluate_model

        metrics = evaluate_model(path, run_dir / evaluation, data_root)
        export_model(model, recipe, run, path, summary_metrics(metrics))
    return path


def train(recipe: Recipe, run_dir: Path, hours: float | None = None, data_root: Path | None = None,
          encoder_weights: str | None = None, evaluate: bool = True, steps: int | None = None,
          init_from: Path | None = None) -> Path:
    """Train (or resume) a run for a budget of `hours` or `steps` in total and export its
    model file; returns the model file's path."""
    if (hours is None) == (steps is None):
        raise ValueError("give exactly one budget: hours or steps")
    run_dir, data_root = Path(run_dir), Path(data_root) if data_root else data_dir()
    budget = {"hours": hours} if hours is not None else {"steps": steps}
    run = start_or_resume(run_dir, recipe, budget, data_root, encoder_weights, init_from)
    policy, why = resolve_precision(recipe)
    run["precision"] = {"policy": policy, "why": why}
    print(f"Training arithmetic: {policy} ({why}).", flush=True)
    use_policy(policy)
    keras.utils.set_random_seed(recipe.seed)
    frequencies = np.array(run["class_frequencies"])
    train_samples, validation_samples, _ = training_split(data_root)
    print(f"Recipe {recipe.name}: {len(train_samples)} training / {len(validation_samples)} validation images "
          f"from {data_root}, {recipe.image_size}-pixel inputs ({recipe.input_mode}), batch {recipe.batch_size}, "
          f"budget {_describe(budget)}; run folder {run_dir}", flush=True)

    def phase(at: Recipe, steps: int, previous: keras.Model | None) -> tuple:
        model = compile_network(at, frequencies, encoder_weights if previous is None else None)
        if previous is not None:
            switch_network(previous, model)
        return (model, training_data(at, train_samples, run_dir, recipe.seed + steps),
                validation_data(at, validation_samples),
                calibration_batches(at, train_samples, seed=recipe.seed + 2) if recipe.validation_bn_batches else None)

    last = LastWeights() if recipe.ema_momentum else None
    run["training"], model = fit(phase, recipe, run, run_dir, last)
    return finish(model, recipe, run, run_dir, data_root, evaluate, last.weights if last else None)


def _describe(budget: dict[str, Any]) -> str:
    return f"{budget['hours']:g} h" if "hours" in budget else f"{budget['steps']} steps"


def _csv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:] if path.is_file() else []


def _knob(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not KNOB=VALUE")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value  # a bare string, e.g. --set loss=crossentropy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="native")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="total optimizer steps of the run, resumes included")
    budget.add_argument("--hours", type=float,
                        help="total training time of the run, resumes included; converted once to a "
                             "step budget from the step time measured over the first epoch")
    parser.add_argument("--init-from", type=Path, metavar="MODEL.safetensors",
                        help="start from this model file's weights (same architecture and classes as "
                             "the recipe), with a fresh optimizer and a short warm-up")
    parser.add_argument("--out", type=Path, required=True, help="run folder (runs/NAME); resumed if it exists")
    parser.add_argument("--data", type=Path, help="dataset folder: the HITL layout (default: $DATA_DIR or "
                                                  "../shared/data/hitl-dubai) or your own GeoTIFF pairs in "
                                                  "DIR/images and DIR/masks (README: fine-tuning)")
    parser.add_argument("--weights", help="local ImageNet weights file for the InceptionResNetV2 encoder "
                                          "(no-top .h5); default: random initialisation")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=JSON",
                        help="override one recipe knob for an experiment, e.g. --set image_size=384 "
                             "--set 'architecture_params={\"decoder_filters\": [256, 128, 64, 32]}'")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the final sliding-window evaluation")
    args = parser.parse_args(argv)
    if (args.hours if args.hours is not None else args.steps) <= 0:
        parser.error("the budget (--hours or --steps) must be positive")
    recipe = get_recipe(args.recipe)
    try:
        recipe = recipe.with_overrides(**dict(_knob(text) for text in args.set))
    except (TypeError, ValueError) as exc:
        parser.error(f"--set: {exc}")
    if args.init_from is not None and not args.init_from.is_file():
        parser.error(f"--init-from: {args.init_from} does not exist")
    try:
        path = train(recipe, args.out, args.hours, args.data, args.weights, not args.no_evaluate, args.steps,
                     args.init_from)
    except PairError as exc:
        raise SystemExit(f"--data: {exc}") from None
    print(f"Model file: {path}")


if __name__ == "__main__":
    main()
