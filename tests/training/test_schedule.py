# SPDX-License-Identifier: GPL-2.0-or-later
"""The step-keyed learning-rate cycle: warm-up, cosine to the end step, and the cycle a
resume, an extension, an --init-from start or an hours budget gets."""
from __future__ import annotations

import pytest

from training.config import NATIVE
from training.schedule import Cycle, plan_cycle

RECIPE = NATIVE.with_overrides(learning_rate=1e-3, min_learning_rate=1e-5, warmup_steps=10,
                               restart_warmup_steps=5, restart_learning_rate=3e-4)


def test_warmup_then_cosine_to_the_end_step():
    cycle = Cycle(start=0, end=110, warmup=10, peak=1e-3, floor=1e-5)
    assert cycle.learning_rate(0) == pytest.approx(1e-4)                    # warm-up 1/10
    assert cycle.learning_rate(10) == pytest.approx(1e-3)
    assert cycle.learning_rate(60) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2)
    assert cycle.learning_rate(110) == pytest.approx(1e-5)
    assert cycle.learning_rate(500) == pytest.approx(1e-5)                  # past the end
    # Before an hours budget is converted the end is unknown: the peak holds.
    assert Cycle(0, None, 10, 1e-3, 1e-5, hours=2).learning_rate(40) == pytest.approx(1e-3)


def test_first_cycle_and_resume_with_the_same_budget():
    first = plan_cycle(RECIPE, {}, steps=100, hours=None)
    assert (first.start, first.end, first.warmup, first.peak) == (0, 100, 10, 1e-3)
    state = {"steps": 40, "seconds": 400.0, "cycle": first.to_dict()}
    assert plan_cycle(RECIPE, state, steps=100, hours=None) == first


def test_extension_starts_a_new_warm_cycle_instead_of_jumping():
    first = Cycle(0, 100, 10, 1e-3, 1e-5)
    end_of_first = first.learning_rate(99)
    state = {"steps": 100, "seconds": 1000.0, "cycle": first.to_dict()}
    second = plan_cycle(RECIPE, state, steps=200, hours=None)
    assert (second.start, second.end, second.warmup, second.peak) == (100, 200, 5, 3e-4)
    # The next step's learning rate is one warm-up step of the new cycle, not mid-cosine.
    assert second.learning_rate(100) == pytest.approx(3e-4 / 5)
    assert end_of_first < second.learning_rate(100) < second.learning_rate(104) == pytest.approx(3e-4)
    # A budget already spent ends at once (export without training).
    assert plan_cycle(RECIPE, state, steps=80, hours=None).end == 100


def test_init_from_starts_with_the_restart_warmup():
    cycle = plan_cycle(RECIPE, {}, steps=50, hours=None, init_from=True)
    assert (cycle.start, cycle.end, cycle.warmup, cycle.peak) == (0, 50, 5, 3e-4)


def test_hours_are_converted_once_from_the_measured_step_time():
    cycle = plan_cycle(RECIPE, {"steps": 0, "seconds": 0.0}, steps=None, hours=1.0)
    assert cycle.end is None and cycle.hours == 1.0
    # 25 steps made in 300 s at 12 s a step: 3300 s left = 275 more steps.
    converted = cycle.converted(steps_done=25, seconds_done=300.0, seconds_per_step=12.0)
    assert converted.end == 300 and converted.warmup == cycle.warmup
    state = {"steps": 100, "seconds": 1200.0, "cycle": converted.to_dict()}
    assert plan_cycle(RECIPE, state, steps=None, hours=1.0) == converted      # resume keeps it
    extended = plan_cycle(RECIPE, state, steps=None, hours=2.0)               # more hours: new cycle
    assert (extended.start, extended.end, extended.hours) == (100, None, 2.0)
    with pytest.raises(ValueError, match="exactly one"):
        plan_cycle(RECIPE, {}, steps=10, hours=1.0)
