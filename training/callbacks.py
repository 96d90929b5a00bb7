# SPDX-License-Identifier: GPL-2.0-or-later
"""Keras callbacks of a training run: step budget and schedule, resumable early
stopping, checkpoints, learning curves, the allocator settings, the loss's Lovasz phase
and the last weights of a run that exports their moving average."""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np

from training.allocator import keep_freed_memory
from training.batchnorm import recalibrate_batchnorm
from training.checkpoint import save_checkpoint
from training.config import Recipe
from training.plots import learning_curves
from training.schedule import Cycle


def reference_learning_rate(recipe: Recipe, epoch: int) -> float:
    """The reference's schedule: lr * 0.1 ** (epoch / 60), epoch counted from 0."""
    return recipe.learning_rate * 0.1 ** (epoch / 60)


class KeepFreedMemory(keras.callbacks.Callback):
    """Sets the allocator thresholds (``training.allocator``) before every step: the generator
    dataset overrides them when its iterator starts, which happens after ``on_train_begin``."""

    def on_train_batch_begin(self, batch, logs=None) -> None:
        keep_freed_memory()


class TrainingClock(keras.callbacks.Callback):
    """Counts steps, training seconds and process CPU seconds across resumes, sets the
    learning rate from the run's step-keyed cycle and stops at its end.

    An hours budget is converted to the cycle's end step once, at the end of the first
    epoch of the process, from the time per step measured after the first step (which
    also traces the graph) with that epoch's validation included. Adds `learning_rate`,
    `steps` and `hours` to each epoch's logs (the CSV).
    """

    def __init__(self, recipe: Recipe, cycle: Cycle, steps: int = 0, seconds: float = 0.0,
                 cpu_seconds: float = 0.0):
        super().__init__()
        self.recipe, self.cycle = recipe, cycle
        self.steps, self.seconds_before, self.cpu_seconds_before = steps, seconds, cpu_seconds
        self._started, self._cpu_started = time.monotonic(), time.process_time()
        self._first_step_done: tuple[float, int] | None = None

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self._started

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_seconds_before + time.process_time() - self._cpu_started

    @property
    def finished(self) -> bool:
        return self.cycle.end is not None and self.steps >= self.cycle.end

    def on_train_begin(self, logs=None):
        self._started, self._cpu_started = time.monotonic(), time.process_time()

    def on_epoch_begin(self, epoch, logs=None):
        if self.recipe.schedule == "reference_exponential":
            self.model.optimizer.learning_rate.assign(reference_learning_rate(self.recipe, epoch))

    def on_train_batch_begin(self, batch, logs=None):
        if self.recipe.schedule == "step_cosine":
            self.model.optimizer.learning_rate.assign(self.cycle.learning_rate(self.steps))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self._first_step_done is None:
            self._first_step_done = (time.monotonic(), self.steps)
        if self.cycle.end is None and self.seconds >= self.cycle.hours * 3600:
            self.cycle = dataclasses.replace(self.cycle, end=self.steps)  # hours spent before converting
        if self.finished:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.cycle.end is None and self._first_step_done is not None:
            since, first = self._first_step_done
            made = self.steps - first
            if made > 0:
                per_step = (time.monotonic() - since) / made
                self.cycle = self.cycle.converted(self.steps, self.seconds, per_step)
                print(f"Budget of {self.cycle.hours:g} h: {per_step:.1f} s per step measured "
                      f"(validation included), so the run ends at step {self.cycle.end}.", flush=True)
        logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
        logs["steps"] = self.steps
        logs["hours"] = round(self.seconds / 3600, 4)
        end = "?" if self.cycle.end is None else self.cycle.end
        print(f"Epoch {epoch + 1}: step {self.steps} of {end}, {self.seconds / 3600:.2f} h, "
              f"learning rate {logs['learning_rate']:.2e}", flush=True)
        if self.finished:
            self.model.stop_training = True
            print(f"Step budget reached: {self.steps} steps.", flush=True)


class PeriodicValidation(keras.callbacks.Callback):
    """Validation every `recipe.validation_every` epochs (and at the first epoch of the
    process), after re-estimating BatchNorm statistics on `recipe.validation_bn_batches`
    training batches, so the score is that of the model as it will be exported rather than
    of moving averages that trail the weights.

    Adds `val_*` to the epoch's logs; epochs without validation get NaN (the CSV keeps its
    columns, ModelCheckpoint saves nothing on NaN). Must come before the callbacks that read them.
    """

    def __init__(self, recipe: Recipe, validation, calibration: Iterator[np.ndarray] | None):
        super().__init__()
        self.recipe, self.validation, self.calibration = recipe, validation, calibration
        self._keys: list[str] | None = None

    def on_epoch_end(self, epoch, logs=None):
        due = self._keys is None or (epoch + 1) % self.recipe.validation_every == 0 or self.model.stop_training
        if not due:
            logs.update({key: float("nan") for key in self._keys})
            return
        if self.recipe.validation_bn_batches and self.calibration is not None:
            recalibrate_batchnorm(self.model, self.calibration, self.recipe.validation_bn_batches)
        stop = self.model.stop_training
        scores = self.model.evaluate(self.validation, verbose=0, return_dict=True)
        self.model.stop_training = stop
        logs.update({f"val_{name}": float(value) for name, value in scores.items()})
        self._keys = [f"val_{name}" for name in scores]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience counter and best value survive a resume.

    Best weights are not kept in memory (they would be lost by a restart): the best-val_loss
    weights file written by ModelCheckpoint is loaded at the end instead.
    """

    def __init__(self, recipe: Recipe, wait: int = 0, best: float | None = None, best_epoch: int = 0):
        super().__init__(monitor="val_loss", min_delta=recipe.early_stopping_min_delta,
                         patience=recipe.early_stopping_patience, verbose=1)
        self._resume = (wait, best, best_epoch)
        self.wait = wait

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.wait, self.best, self.best_epoch = self._resume


class RunCheckpoint(keras.callbacks.Callback):
    """At every epoch end: a resumable checkpoint and the learning-curve PNG from the CSV."""

    def __init__(self, run_dir: Path, clock: TrainingClock, best: keras.callbacks.ModelCheckpoint,
                 stopping: ResumableEarlyStopping | None):
        super().__init__()
        self.run_dir, self.clock, self.best, self.stopping = Path(run_dir), clock, best, stopping

    def on_epoch_end(self, epoch, logs=None):
        state = {"epoch": epoch + 1, "steps": self.clock.steps, "seconds": self.clock.seconds,
                 "cpu_seconds": self.clock.cpu_seconds, "cycle": self.clock.cycle.to_dict(),
                 "best_val_loss": _finite_or_none(self.best.best)}
        if self.stopping is not None:
            state.update(wait=self.stopping.wait, stopping_best=_finite_or_none(self.stopping.best),
                         stopping_best_epoch=self.stopping.best_epoch)
        save_checkpoint(self.run_dir, self.model, state)
        learning_curves(self.run_dir / "model_training.csv", self.run_dir / "learning_curves.png")


def _finite_or_none(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


class LovaszPhase(keras.callbacks.Callback):
    """Switches the loss's Lovasz-softmax term on from `recipe.lovasz_from` of the clock's
    cycle (the cycle's end is known once an hours budget is converted)."""

    def __init__(self, recipe: Recipe, clock: TrainingClock, scale: keras.Variable):
        super().__init__()
        self.recipe, self.clock, self.scale = recipe, clock, scale

    def on_train_batch_begin(self, batch, logs=None):
        cycle = self.clock.cycle
        on = cycle.end is not None and \
            self.clock.steps >= cycle.start + self.recipe.lovasz_from * (cycle.end - cycle.start)
        self.scale.assign(1.0 if on else 0.0)


class LastWeights(keras.callbacks.Callback):
    """Keeps the weights of the last epoch: with Adam's EMA, `fit` replaces them by their
    moving average as it returns, and the run scores both."""

    weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training or epoch + 1 >= self.params.get("epochs", 0):
            self.weights = self.model.get_weights()
