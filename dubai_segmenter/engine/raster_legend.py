# SPDX-License-Identifier: GPL-2.0-or-later
"""The legend a classified raster declares: its category names and colour table.

Only GDAL's Python bindings are needed here, which ship with every QGIS: the plugin
reads legends inside QGIS with the same code the engine uses, without rasterio.
"""
from __future__ import annotations

import os

from .classes import DUBAI_CLASSES, NODATA_CLASS, ClassInfo


def raster_classes(path: str | os.PathLike[str]) -> tuple[ClassInfo, ...]:
    """The classes a classified raster declares in its category names (and colour table).

    Falls back to the dataset's classes when the raster has no category names, so rasters
    written by other tools still get meaningful names. Read through ``gdal.Info``: with
    GDAL 3.6, ``band.GetCategoryNames()`` on a freshly opened GeoTIFF returns None until
    something else has loaded the ``.aux.xml`` sidecar that holds the names.
    """
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    if dataset is None:
        raise ValueError(f"{path}: not a raster GDAL can read ({gdal.GetLastErrorMsg()})")
    band = gdal.Info(dataset, format="json")["bands"][0]
    names = band.get("categories") or []
    entries = (band.get("colorTable") or {}).get("entries") or []
    classes = tuple(
        ClassInfo(value, name, tuple(entries[value][:3]) if value < len(entries) else (0, 0, 0))
        for value, name in enumerate(names)
        if name and value != NODATA_CLASS
    )
    return classes or DUBAI_CLASSES
