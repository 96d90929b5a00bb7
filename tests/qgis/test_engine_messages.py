# SPDX-License-Identifier: GPL-2.0-or-later
"""The engine's hints, shown in QGIS, name the parameter a user can set there, not a command-line option."""
from __future__ import annotations

import pytest

from dubai_segmenter.processing_provider.engine_messages import for_qgis


@pytest.mark.parametrize("engine, shown", [
    ("the model needs 3 bands but the raster has 1; to repeat its single band pass --bands 1,1,1",
     "the model needs 3 bands but the raster has 1; to repeat its single band set the Bands parameter to 1,1,1"),
    ("the model needs 3 bands but the raster has 2; choose them with --bands",
     "the model needs 3 bands but the raster has 2; choose them with the Bands parameter"),
    ("band 4 is the alpha (transparency) band; choose colour bands, e.g. --bands 1,2,3",
     "band 4 is the alpha (transparency) band; choose colour bands, e.g. set the Bands parameter to 1,2,3"),
    ("m.onnx was exported for 512-pixel tiles, not 256: use --tile 512 or export again",
     "m.onnx was exported for 512-pixel tiles, not 256: set the Tile size parameter to 512 or export again"),
    ("no option here: input raster not found: /data/a--b.tif",
     "no option here: input raster not found: /data/a--b.tif"),
])
def test_options_become_qgis_parameters(engine, shown):
    assert for_qgis(engine) == shown
