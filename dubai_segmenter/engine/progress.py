# SPDX-License-Identifier: GPL-2.0-or-later
"""Progress reporting and cancellation shared by every long-running engine step.

The engine is driven from three places (the command line, a QGIS task, a Processing
algorithm) that each show progress and stop work their own way. Plain callables keep the
engine free of any of them: the caller passes what to do with "x % done" and how to ask
"should I stop?", and the engine calls both between tiles.
"""
from __future__ import annotations

from typing import Callable

from dubai_segmenter.engine.errors import Cancelled

#: fraction done in 0..1 and a short message ("tile 3/24").
ProgressCallback = Callable[[float, str], None]
#: returns True when the caller wants the engine to stop as soon as possible.
CancelCheck = Callable[[], bool]


def check_cancelled(cancel: CancelCheck | None) -> None:
    """Raise Cancelled if the caller asked to stop, so every loop stops the same way."""
    if cancel is not None and cancel():
        raise Cancelled("cancelled by the user")


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call the progress callback (if any) with the fraction clamped to 0..1."""
    if progress is not None:
        progress(min(1.0, max(0.0, fraction)), message)


def sub_progress(progress: ProgressCallback | None, start: float, stop: float) -> ProgressCallback | None:
    """A callback that maps a step's own 0..1 onto [start, stop] of the caller's bar.

    Lets one run (segment, then vectorize) show a single bar that only moves forward.
    """
    if progress is None:
        return None

    def scaled(fraction: float, message: str) -> None:
        report(progress, start + (stop - start) * fraction, message)

    return scaled
