# SPDX-License-Identifier: GPL-2.0-or-later
"""A cancel takes effect within 2 seconds in every phase of a run, and leaves nothing behind.

Phases of ``segment``: loading the model (TensorFlow's import and the network build, with
no tile loop to poll), the tile loop (reading, model, blending and writing rows), resampling
back to the input grid (--resolution), and the overviews (GDAL's builder, seconds on a large
raster). Polygons are the vectorizer's own test.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from dubai_segmenter.engine.cli import EXIT_CANCELLED
from dubai_segmenter.engine.errors import Cancelled
from dubai_segmenter.engine.geotiff_output import ClassifiedRasterWriter
from tests.engine.rasters import block_classes, write_painted

ROOT = Path(__file__).resolve().parents[2]
CANCEL_SECONDS = 2.0


@pytest.fixture(scope="module")
def tall_scene(tmp_path_factory) -> Path:
    return write_painted(tmp_path_factory.mktemp("scene") / "tall.tif", block_classes(2048, 300, block=16))


PHASES = {  # phase: (progress message that starts it, extra arguments)
    "loading the model": ("loading the model", []),
    "tiles": ("tile ", []),
    "resampling": ("resampling classes", ["--resolution", "0.45"]),
}


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_sigterm_stops_each_phase_within_two_seconds(tmp_path, tall_scene, colour_model_file, phase):
    message, extra = PHASES[phase]
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "dubai_segmenter", "segment", str(tall_scene), "--model", str(colour_model_file),
         "--out-raster", str(out / "classes.tif"), "--out-vector", str(out / "polygons.gpkg"),
         "--progress", "lines", "--tile", "32", "--overlap", "8", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in process.stdout:
        if line.split(" ", 2)[-1].startswith(message):
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            break
    else:
        pytest.fail(f"the run never reached {phase!r}: {process.communicate()}")
    _, err = process.communicate(timeout=60)
    latency = time.monotonic() - signalled
    assert process.returncode == EXIT_CANCELLED, err
    assert err.strip().splitlines()[-1] == "ERROR: cancelled: no output was written"
    assert latency < CANCEL_SECONDS, f"{phase}: stopped {latency:.1f} s after SIGTERM"
    assert os.listdir(out) == []


def test_a_cancel_stops_gdal_building_overviews(tmp_path):
    """8192 x 8192 classes: their overviews take seconds (6 s measured on a loaded machine)."""
    size = 8192
    rows = np.random.default_rng(0).integers(0, 6, (129, size // 4 + 1), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    writer = ClassifiedRasterWriter(tmp_path / "classes.tif", width=size, height=size, crs="EPSG:32640",
                                    transform=from_origin(300_000, 2_800_000, 0.3, 0.3), classes=DUBAI_CLASSES)
    asked_at: list[float] = []

    def ask() -> None:
        asked_at.append(time.monotonic())

    with pytest.raises(Cancelled), writer:
        for top in range(0, size, 512):
            writer.write_rows(top, rows[:512, :size])
        timer = threading.Timer(0.5, ask)
        timer.start()
        try:
            writer.finish(lambda: bool(asked_at))
        finally:
            stopped = time.monotonic()
            timer.cancel()
    assert asked_at, "the overviews were built before the cancel came: make the raster bigger"
    assert stopped - asked_at[0] < CANCEL_SECONDS, f"stopped {stopped - asked_at[0]:.1f} s after the cancel"
    assert os.listdir(tmp_path) == []  # the temporary file is gone, nothing was published
