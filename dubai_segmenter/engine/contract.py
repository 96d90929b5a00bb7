# SPDX-License-Identifier: GPL-2.0-or-later
"""What the engine's command line and its callers agree on, stated once.

The QGIS plugin starts the engine in a child process and reads its exit code; the plugin's
Processing algorithms refuse output names the engine would refuse and open the polygon
layer by name. Those facts are defined here and imported by both sides, so they cannot
drift apart. Standard library only: the plugin imports this in the QGIS process, where
TensorFlow and numpy-heavy modules must not be loaded.
"""
from __future__ import annotations

#: Exit codes of ``python -m dubai_segmenter``: success, failure while running, bad input or
#: usage (the ERROR line says what to fix), cancelled (SIGINT/SIGTERM; nothing was written).
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 3

#: What may compute the model (``--backend``); "auto" picks the best available.
BACKENDS: tuple[str, ...] = ("auto", "onnx", "int8", "tf")
#: Test-time augmentation modes (``--tta``).
TTA_MODES: tuple[str, ...] = ("none", "flips")

#: Names the classified GeoTIFF may have (the first is the one to suggest).
RASTER_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
#: Polygons are written to a GeoPackage, in a layer of this name.
POLYGON_SUFFIX = ".gpkg"
POLYGON_LAYER = "land_cover"
