# SPDX-License-Identifier: GPL-2.0-or-later
"""dubai_segmenter: land-cover segmentation of aerial and satellite imagery for QGIS.

QGIS calls ``classFactory`` to load the plugin. The plugin module is imported lazily so
that ``python -m dubai_segmenter`` (the engine's command line) runs without QGIS.
"""


def classFactory(iface):
    """Create the plugin for QGIS's plugin manager."""
    from .plugin import DubaiSegmenterPlugin

    return DubaiSegmenterPlugin(iface)
