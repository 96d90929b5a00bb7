# SPDX-License-Identifier: GPL-2.0-or-later
"""Progressive crop size: the last part of a learning-rate cycle trains on larger crops.

Why: inference runs on 512-pixel tiles, training on 256-pixel crops because a step on
larger crops costs more per pixel on the CPU. Ending the cycle on `final_crop_size` crops
(recipe knobs `final_crop_size`, `final_crop_fraction`, `final_batch_size`) lets the
weights settle on more context per crop for a small share of the budget.

The network is built for a fixed input size, but its weights do not depend on it, so at
the switch step a network is built at the final size, the weights are copied and the
optimizer state (Adam moments, iteration count) is copied into an optimizer of the same
configuration: the learning-rate cycle and Adam's bias correction go on as if nothing
changed. A checkpoint holds weights and optimizer state only, so a resume simply builds the
network at the size of the phase its step count falls in before loading it.
"""
from __future__ import annotations

import math
from typing import Any

import keras

from training.callbacks import TrainingClock
from training.config import Recipe
from training.schedule import Cycle, plan_cycle


def final_batch_size(recipe: Recipe) -> int:
    """Crops per batch in the final phase: the knob, or about the same pixels per batch."""
    if recipe.final_batch_size is not None:
        return recipe.final_batch_size
    return max(1, round(recipe.batch_size * (recipe.image_size / recipe.final_crop_size) ** 2))


def switch_step(recipe: Recipe, cycle: Cycle) -> int | None:
    """The step from which the run trains at the final size, or None (knob off, or the end
    of an hours budget not converted to steps yet).

    The final phase is the last `final_crop_fraction` of the cycle's steps, so the switch is
    at cycle.start + (1 - fraction) * (cycle.end - cycle.start), with the final phase's
    length rounded to the nearest step (halves up).
    """
    if recipe.final_crop_size is None or cycle.end is None:
        return None
    span = cycle.end - cycle.start
    return cycle.end - math.floor(recipe.final_crop_fraction * span + 0.5)


def at_final_size(recipe: Recipe, cycle: Cycle, steps: int) -> bool:
    """Whether step count `steps` of `cycle` falls in the final phase."""
    switch = switch_step(recipe, cycle)
    return switch is not None and steps >= switch


def final_recipe(recipe: Recipe) -> Recipe:
    """The recipe with the final phase's crop and batch size: networks and inputs built from it
    (train.compile_network, training.inputs) are those of the final phase."""
    return recipe.with_overrides(image_size=recipe.final_crop_size, batch_size=final_batch_size(recipe))


def resume_recipe(recipe: Recipe, run: dict[str, Any], state: dict[str, Any]) -> Recipe:
    """The recipe (sizes) to build the network and inputs with when a run starts or resumes
    at checkpoint `state` ({} for none): the final phase's once its switch step is passed.

    Plans the cycle as train.fit will (training.schedule.plan_cycle is deterministic)."""
    if recipe.final_crop_size is None:
        return recipe
    cycle = plan_cycle(recipe, state, run["budget"].get("steps"), run["budget"].get("hours"),
                       init_from=bool(run.get("init_from")))
    return final_recipe(recipe) if at_final_size(recipe, cycle, int(state.get("steps", 0))) else recipe


def transfer_optimizer(old_model: keras.Model, new_model: keras.Model) -> None:
    """Copy `old_model`'s optimizer state into `new_model`'s (compiled, same architecture).

    Keras keeps optimizer variables in a list (iteration count, learning rate, then the
    per-weight Adam moments in trainable-variable order) and saves and loads them by
    position; this copies them the same way, after checking that both optimizers have the
    same configuration and that every variable has the same shape.
    """
    old, new = old_model.optimizer, new_model.optimizer
    ignored = ("name", "learning_rate")  # the learning rate is copied with the variables
    old_config = {k: v for k, v in old.get_config().items() if k not in ignored}
    new_config = {k: v for k, v in new.get_config().items() if k not in ignored}
    if type(old) is not type(new) or old_config != new_config:
        raise ValueError(f"optimizers differ: {type(old).__name__} {old_config} and "
                         f"{type(new).__name__} {new_config}")
    new.build(new_model.trainable_variables)
    values = [variable.numpy() for variable in old.variables]
    if len(values) != len(new.variables):
        raise ValueError(f"the optimizers hold {len(values)} and {len(new.variables)} variables")
    new.set_weights(values)  # checks every shape


def switch_network(old_model: keras.Model, new_model: keras.Model) -> keras.Model:
    """`new_model` (compiled, built at the final size) with `old_model`'s weights and optimizer state."""
    new_model.set_weights(old_model.get_weights())
    transfer_optimizer(old_model, new_model)
    return new_model


def record(recipe: Recipe, cycle: Cycle) -> dict[str, Any] | None:
    """The run's progressive-crop facts for run.json's "training" (None with the knob off)."""
    if recipe.final_crop_size is None:
        return None
    return {"switch_step": switch_step(recipe, cycle), "crop_size": recipe.image_size,
            "batch_size": recipe.batch_size, "final_crop_size": recipe.final_crop_size,
            "final_batch_size": final_batch_size(recipe)}


class StopAtSwitch(keras.callbacks.Callback):
    """Ends the current `model.fit` when `clock` (a TrainingClock, earlier in the callback
    list) reaches the switch step, so train.fit goes on at the final size. A stop within an
    epoch ends it as a budget stop does: validation, CSV row and checkpoint at the switch step.

    Checked after every step and after every epoch (an hours budget's end, hence the switch
    step, becomes known at the end of the first epoch, possibly past the switch)."""

    def __init__(self, recipe: Recipe, clock: TrainingClock):
        super().__init__()
        self.recipe, self.clock = recipe, clock

    @property
    def due(self) -> bool:
        return not self.clock.finished and at_final_size(self.recipe, self.clock.cycle, self.clock.steps)

    def on_train_batch_end(self, batch, logs=None):
        if self.due:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.due:
            self.model.stop_training = True
