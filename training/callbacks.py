"""Keras callbacks of a training run: wall-clock budget and schedule, resumable early
stopping, checkpoints, learning curves and the allocator settings."""
from __future__ import annotations

import math
import time
from pathlib import Path

import keras

from training.allocator import keep_freed_memory
from training.checkpoint import save_checkpoint
from training.config import Recipe
from training.plots import learning_curves


def reference_learning_rate(recipe: Recipe, epoch: int) -> float:
    """The reference's schedule: lr * 0.1 ** (epoch / 60), epoch counted from 0."""
    return recipe.learning_rate * 0.1 ** (epoch / 60)


def time_cosine_learning_rate(recipe: Recipe, step: int, fraction: float) -> float:
    """Linear warm-up over the first steps, then a cosine from lr to min_lr over the budget.

    Keyed on the elapsed share of the wall-clock budget rather than on a step count, so the
    decay ends when the budget does whatever the machine's speed.
    """
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))
    return recipe.min_learning_rate + (recipe.learning_rate - recipe.min_learning_rate) * cosine


class KeepFreedMemory(keras.callbacks.Callback):
    """Sets the allocator thresholds (``training.allocator``) before every step: the generator
    dataset overrides them when its iterator starts, which happens after ``on_train_begin``."""

    def on_train_batch_begin(self, batch, logs=None) -> None:
        keep_freed_memory()


class TrainingClock(keras.callbacks.Callback):
    """Counts steps and training seconds across resumes, stops at the budget, sets the lr.

    Adds `learning_rate`, `steps` and `hours` to each epoch's logs (the CSV).
    """

    def __init__(self, recipe: Recipe, budget_seconds: float, steps: int = 0, seconds: float = 0.0):
        super().__init__()
        self.recipe, self.budget = recipe, budget_seconds
        self.steps, self.seconds_before = steps, seconds
        self._started = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self._started

    def on_train_begin(self, logs=None):
        self._started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        if self.recipe.schedule == "reference_exponential":
            self.model.optimizer.learning_rate.assign(reference_learning_rate(self.recipe, epoch))

    def on_train_batch_begin(self, batch, logs=None):
        if self.recipe.schedule == "time_cosine":
            lr = time_cosine_learning_rate(self.recipe, self.steps, self.seconds / self.budget)
            self.model.optimizer.learning_rate.assign(lr)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.seconds >= self.budget:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
        logs["steps"] = self.steps
        logs["hours"] = round(self.seconds / 3600, 4)
        print(f"Epoch {epoch + 1}: {self.steps} steps, {self.seconds / 3600:.2f} of {self.budget / 3600:.2f} h "
              f"used, learning rate {logs['learning_rate']:.2e}", flush=True)
        if self.seconds >= self.budget:
            self.model.stop_training = True
            print(f"Time budget of {self.budget / 3600:.2f} h reached after {self.steps} steps.", flush=True)


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
                 "best_val_loss": _finite_or_none(self.best.best)}
        if self.stopping is not None:
            state.update(wait=self.stopping.wait, stopping_best=_finite_or_none(self.stopping.best),
                         stopping_best_epoch=self.stopping.best_epoch)
        save_checkpoint(self.run_dir, self.model, state)
        learning_curves(self.run_dir / "model_training.csv", self.run_dir / "learning_curves.png")


def _finite_or_none(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None
