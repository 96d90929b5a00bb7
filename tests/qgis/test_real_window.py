# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin in a real QGIS window, installed from the zip into a fresh profile.

QGIS desktop runs under Xvfb (tools/real_window.py) and tools/real_window_driver.py
drives it: the dock opens at the width QGIS gives a new side panel, a run on the sample
scene adds its layers, a run on a large scene is cancelled. The observations come back
as JSON; screenshots stay in the test's temporary folder (`make screenshots` makes the
README's). Skipped only when Xvfb is missing (`make setup` installs it).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from dubai_segmenter.processing_provider.engine_algorithm import CANCELLED_MESSAGE
from tests.qgis.conftest import REPO, scene_ids, write_painted_raster
from tools.package_plugin import build_zip
from tools.real_window import missing_tools, run_real_window

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")

SAMPLE = REPO / "dubai_segmenter" / "sample" / "dubai_tile5_part008.tif"
#: QGIS's default width for a new side dock, measured in this window (1600 x 1000).
DEFAULT_DOCK_WIDTH = 298


@pytest.fixture(scope="module")
def window(colour_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("real_window")
    scene = shutil.copy(SAMPLE, folder / "sample.tif")  # GDAL may leave a sidecar: not in the checkout
    # About 4,400 tiles of the colour model: still running when Cancel is pressed after 6 s,
    # past the 5 s after which QGIS announces how a task ended.
    large = write_painted_raster(folder / "large.tif", np.tile(scene_ids(), (42, 32)))
    result = run_real_window(build_zip(folder / "dubai_segmenter.zip"), folder / "out", colour_model, scene,
                             cancel_scene=large, cancel_after=6.0)
    assert "error" not in result, result["error"]
    return result, folder / "out"


def test_the_dock_fits_the_default_side_panel_with_run_in_view(window):
    result, _ = window
    for state in ("opened", "advanced_open", "model_read", "after_run"):
        layout = result[state]
        assert layout["dock_width"] <= DEFAULT_DOCK_WIDTH + 10, (state, layout)
        assert not layout["horizontal_scrollbar"], (state, layout)
        assert layout["body_min_width"] <= layout["viewport_width"], (state, layout)
        assert layout["run_visible"] and layout["cancel_visible"], (state, layout)


def test_a_run_on_the_sample_completes_and_adds_its_layers(window):
    result, out = window
    run = result["run"]
    assert run["added_layers"] == ["Sample scene land cover", "Sample scene polygons"], run
    assert run["progress"] == 100 and "fail" not in run["messages"].lower(), run["messages"]
    assert {"classes.tif", "polygons.gpkg"} <= set(run["outputs"])
    assert (out / "dock.png").stat().st_size > 10_000 and (out / "window.png").stat().st_size > 10_000


def test_cancel_is_one_neutral_message_with_no_failure_anywhere(window):
    cancel = window[0]["cancel"]
    assert cancel["messages"].count(CANCELLED_MESSAGE) == 1, cancel["messages"]
    assert "fail" not in cancel["messages"].lower(), cancel["messages"]
    assert not [m for m in cancel["message_bar"] if "fail" in m.lower()], cancel["message_bar"]
    assert cancel["critical_log"] == []
    assert cancel["added_layers"] == [] and cancel["outputs"] == []


def test_processing_dialogs_have_no_horizontal_scrollbar(window):
    dialogs = window[0]["processing_dialogs"]
    assert set(dialogs) == {"segment_raster", "segment_and_vectorize", "vectorize_classes"}
    assert not [name for name, seen in dialogs.items() if seen["horizontal_scrollbar"]], dialogs
