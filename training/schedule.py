# SPDX-License-Identifier: GPL-2.0-or-later
"""The learning-rate cycle of a run, keyed on optimizer steps, and how a budget becomes one.

Why steps and not wall-clock time: on a shared CPU a step takes 7 s one hour and 40 s the
next; a schedule on elapsed time then spends its whole curve on half the steps, and two
runs of the same budget cannot be compared. A cycle is a linear warm-up followed by a
cosine from the peak to the floor, ending at a fixed step. `--steps N` gives that end
directly; `--hours H` is converted once, from the step time measured over the first epoch
of the process (validation included), and the converted end is stored in the checkpoint so
a resume keeps it.

Extending a run (a larger budget than the one stored) or starting from a model file
(`--init-from`) starts a new cycle at the current step with a short warm-up, instead of
jumping from the end of the previous cosine (1e-5) to the middle of a new one.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from training.config import Recipe


@dataclass(frozen=True)
class Cycle:
    """One warm-up + cosine cycle: steps `start` .. `end` (absolute step counts of the run)."""

    start: int
    #: Step at which the cycle (and the run) ends; None until an hours budget is converted.
    end: int | None
    warmup: int
    peak: float
    floor: float
    #: The run's total hours budget this cycle was converted from (None for a steps budget).
    hours: float | None = None

    def learning_rate(self, step: int) -> float:
        """Warm-up to `peak` over `warmup` steps, then cosine to `floor` at `end`.

        Holds the peak while `end` is unknown (before an hours budget is converted)."""
        k = step - self.start
        if k < self.warmup:
            return self.peak * (k + 1) / self.warmup
        if self.end is None:
            return self.peak
        span = max(self.end - self.start - self.warmup, 1)
        fraction = min(max((k - self.warmup) / span, 0.0), 1.0)
        return self.floor + (self.peak - self.floor) * 0.5 * (1 + math.cos(math.pi * fraction))

    def converted(self, steps_done: int, seconds_done: float, seconds_per_step: float) -> Cycle:
        """This cycle with `end` set: the steps that fit in the hours left at the measured step time."""
        left = max(self.hours * 3600 - seconds_done, 0.0)
        return Cycle(self.start, steps_done + int(left // max(seconds_per_step, 1e-9)), self.warmup,
                     self.peak, self.floor, self.hours)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cycle:
        return cls(**data)


def plan_cycle(recipe: Recipe, state: dict[str, Any], steps: int | None, hours: float | None,
               init_from: bool = False) -> Cycle:
    """The cycle to run now, given the checkpoint `state` and the requested budget.

    - same budget as the stored cycle: resume that cycle;
    - no cycle yet and no step made: the recipe's first cycle (warm-up from its learning
      rate), or with `init_from` a restart cycle (the recipe's restart warm-up and peak);
    - any other budget: a new restart cycle from the current step (extension), which ends at
      once when the budget is already spent.
    """
    if (steps is None) == (hours is None):
        raise ValueError("give exactly one budget: steps or hours")
    done, seconds = int(state.get("steps", 0)), float(state.get("seconds", 0.0))
    stored = Cycle.from_dict(state["cycle"]) if state.get("cycle") else None
    if stored is not None and (stored.hours == hours if hours is not None
                               else stored.hours is None and stored.end == steps):
        return stored
    if stored is None and done == 0 and not init_from:
        warmup, peak = recipe.warmup_steps, recipe.learning_rate
    else:
        warmup, peak = recipe.restart_warmup_steps, recipe.restart_learning_rate or recipe.learning_rate
    end = max(steps, done) if hours is None else (done if hours * 3600 <= seconds else None)
    return Cycle(done, end, warmup, peak, recipe.min_learning_rate, hours)
