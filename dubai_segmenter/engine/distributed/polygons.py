# SPDX-License-Identifier: GPL-2.0-or-later
"""Polygons on a cluster: each strip of rows traced on a worker, seams joined on the client.

``vectorize_classes`` reads the classified raster a strip of rows at a time and hands the
strips to a tracer; ``trace_on_cluster`` is a tracer that sends each strip's pixels (class
values and the selected mask, about 2 bytes a pixel) to a worker, where the unchanged
``trace_strip`` traces it; the pieces come back as WKB. Regions touching a strip's edge
stay open, and the client joins them across seams with the same ``SeamJoiner``, finishes
and writes them exactly as a local run does, so the polygons are identical.

Why send pixels rather than a path: the classified raster is written on the client and
need not be visible to the workers. Memory stays bounded: at most ``in_flight`` strips
are out at a time, and strips come back to the joiner in row order.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator

import numpy as np
import shapely

from dubai_segmenter.engine.polygon_strips import Strip, trace_strip
from dubai_segmenter.engine.progress import CancelCheck, check_cancelled
from dubai_segmenter.engine.vectorize import StripPixels, StripTracer

#: Seconds between checks for a traced strip (and for a cancel request).
POLL_SECONDS = 0.05


def _trace_on_worker(values: np.ndarray, selected: np.ndarray, row0: int) -> tuple[int, int, np.ndarray, np.ndarray]:
    """The task: one strip traced; its pieces as WKB (one bulk conversion, cheaper to send
    than pickling geometries one by one)."""
    strip = trace_strip(values, selected, row0)
    return strip.row0, strip.row1, shapely.to_wkb(strip.geometries), strip.class_ids


def trace_on_cluster(client, in_flight: int | None = None) -> StripTracer:
    """A ``StripTracer`` (see ``vectorize_classes``) that traces strips on the workers behind
    ``client``, at most ``in_flight`` at a time (default: two per worker)."""
    if in_flight is None:
        in_flight = 2 * max(1, len(client.scheduler_info(n_workers=-1)["workers"]))

    def tracer(pixels: Iterator[StripPixels], cancel: CancelCheck | None = None) -> Iterator[Strip]:
        waiting: deque = deque()
        try:
            for item in pixels:
                waiting.append(client.submit(_trace_on_worker, *item, pure=False))
                del item
                if len(waiting) >= in_flight:
                    yield _strip(waiting.popleft(), cancel)
            while waiting:
                yield _strip(waiting.popleft(), cancel)
        finally:  # cancelled, failed or closed early: nothing keeps running for us
            if waiting:
                client.cancel(list(waiting))

    return tracer


def _strip(future, cancel: CancelCheck | None) -> Strip:
    while not future.done():
        check_cancelled(cancel)
        time.sleep(POLL_SECONDS)
    row0, row1, wkb, class_ids = future.result()  # a worker's error is raised here
    future.release()
    return Strip(row0, row1, shapely.from_wkb(wkb).reshape(-1), class_ids)
