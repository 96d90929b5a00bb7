# SPDX-License-Identifier: GPL-2.0-or-later
"""What every long-running command shares: the progress display, cancel on a signal, output cleanup.

Also the summary line and the backend message, which ``segment`` and the many-scenes runs
(``engine/many_scenes.py``) print the same way.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from dubai_segmenter.engine.classes import ClassInfo

#: --progress lines: at most one line per this many seconds unless the percentage moved by 0.1.
LINE_INTERVAL = 2.0


class Progress:
    """The chosen progress display as a ProgressCallback."""

    def __init__(self, mode: str | None) -> None:
        self.mode = mode or ("bar" if sys.stderr.isatty() else "none")
        self._bar = None
        self._last = (-1.0, 0.0)
        self._last_step = ""
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=100, unit="%", file=sys.stderr,
                             bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]{postfix}")

    def __call__(self, fraction: float, message: str) -> None:
        percent = 100.0 * fraction
        if self._bar is not None:
            self._bar.n = percent
            self._bar.set_postfix_str(message, refresh=False)
            self._bar.refresh()
        elif self.mode == "lines":
            last_percent, last_time = self._last
            now = time.monotonic()
            new_step = message.split(" ", 1)[0] != self._last_step  # e.g. "writing overviews" after the tiles
            if percent - last_percent >= 0.1 or now - last_time >= LINE_INTERVAL or fraction >= 1.0 or new_step:
                print(f"PROGRESS {percent:.1f} {message}", flush=True)
                self._last = (percent, now)
                self._last_step = message.split(" ", 1)[0]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class CancelOnSignal:
    """SIGINT/SIGTERM set a flag the engine polls between tiles (calling this is a CancelCheck).

    Inside ``immediately()`` (loading the model: seconds of TensorFlow with nothing to poll
    and nothing written yet) the signal raises Cancelled at once instead.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, object] = {}
        self._immediate = False

    def __call__(self) -> bool:
        return self._event.is_set()

    def _handle(self, *_: object) -> None:
        self._event.set()
        if self._immediate:
            from dubai_segmenter.engine.errors import Cancelled

            self._immediate = False
            raise Cancelled("cancelled by the user")

    @contextlib.contextmanager
    def immediately(self) -> Iterator[None]:
        from dubai_segmenter.engine.progress import check_cancelled

        check_cancelled(self)
        self._immediate = True
        try:
            yield
        finally:
            self._immediate = False

    def __enter__(self) -> CancelOnSignal:
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def remove_outputs(*paths: Path | None) -> None:
    """Delete outputs this run already published (a run is all or nothing)."""
    for path in paths:
        if path is not None:
            for leftover in (path, Path(f"{path}.aux.xml")):
                leftover.unlink(missing_ok=True)


def summary_line(path: Path, counts: dict[int, int], classes: Sequence[ClassInfo], seconds: float) -> str:
    total = sum(counts.values()) or 1
    shares = ", ".join(f"{c.key} {100 * counts.get(c.id, 0) / total:.1f}%" for c in classes)
    return f"Wrote {path} in {seconds:.1f} s: {shares}"


@contextlib.contextmanager
def backend_choice_on_stderr() -> Iterator[None]:
    """Show which backend runs the model and why ("backend onnx: ..."), as open_predictor logs it."""
    log = logging.getLogger("dubai_segmenter.engine.predictors")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
