# SPDX-License-Identifier: GPL-2.0-or-later
"""The segmentation engine: tiling, model, raster and vector I/O.

Nothing in this package imports QGIS or Qt, so the command line, the training code and
the plugin's child process all run the same code without a QGIS installation.
"""
from dubai_segmenter.engine.system_sqlite import preload_system_sqlite

# Every engine module may end up loading TensorFlow, which must come after the system
# SQLite; doing it here, once, covers the command line, training, benchmarks and scripts.
preload_system_sqlite()
