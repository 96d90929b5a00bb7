# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-class areas of a classified GeoTIFF, read on the QGIS side.

Read with GDAL's Python bindings, which ship with every QGIS (the Python inside QGIS may
have no rasterio); the legend comes from the engine's GDAL-only ``raster_legend``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from osgeo import gdal
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsDistanceArea,
    QgsGeometry,
    QgsProject,
    QgsRectangle,
    QgsUnitTypes,
)

from ..engine.raster_legend import raster_classes
from ..qgis_compat import DISTANCE_METERS

_ROWS_PER_READ = 1024


def _open(path: str) -> gdal.Dataset:
    dataset = gdal.Open(str(path))
    if dataset is None:
        raise ValueError(f"{path}: not a raster GDAL can read ({gdal.GetLastErrorMsg()})")
    return dataset


def class_pixel_counts(path: str) -> dict[int, int]:
    """Pixels per class value (no-data pixels excluded), read a block of rows at a time."""
    dataset = _open(path)
    band = dataset.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    counts = np.zeros(256, dtype=np.int64)
    for row in range(0, dataset.RasterYSize, _ROWS_PER_READ):
        rows = min(_ROWS_PER_READ, dataset.RasterYSize - row)
        values = band.ReadAsArray(0, row, dataset.RasterXSize, rows)
        counts += np.bincount(values.ravel().astype(np.int64), minlength=256)[:256]
    if nodata is not None and 0 <= nodata < 256:
        counts[int(nodata)] = 0
    return {value: int(count) for value, count in enumerate(counts) if count}


def pixel_area_m2(path: str) -> float:
    """Ground area of one pixel in square metres (ellipsoidal for geographic CRSs)."""
    dataset = _open(path)
    x0, dx, rx, y0, ry, dy = dataset.GetGeoTransform()
    crs = QgsCoordinateReferenceSystem.fromWkt(dataset.GetProjection())
    if crs.isValid() and not crs.isGeographic():
        factor = QgsUnitTypes.fromUnitToUnitFactor(crs.mapUnits(), DISTANCE_METERS)
        return abs(dx * dy - rx * ry) * factor * factor
    measure = QgsDistanceArea()
    measure.setSourceCrs(crs, QgsProject.instance().transformContext())
    measure.setEllipsoid(crs.ellipsoidAcronym() or "EPSG:7030")
    width, height = dataset.RasterXSize, dataset.RasterYSize
    extent = QgsRectangle(x0, y0 + dy * height, x0 + dx * width, y0)
    return measure.measureArea(QgsGeometry.fromRect(extent)) / (width * height)


@dataclass(frozen=True)
class ClassArea:
    """One row of the per-class area summary."""

    class_id: int
    name: str
    pixels: int
    area_m2: float
    share: float  # of the processed (valid) area, 0..1

    def as_dict(self) -> dict:
        return {"class_id": self.class_id, "name": self.name, "pixels": self.pixels,
                "area_m2": self.area_m2, "share": self.share}


def class_areas(path: str) -> list[ClassArea]:
    """Area and share of every class of the model in the processed (non-no-data) area."""
    counts = class_pixel_counts(path)
    pixel_area = pixel_area_m2(path)
    total = sum(counts.values()) or 1
    return [
        ClassArea(c.id, c.name, counts.get(c.id, 0), counts.get(c.id, 0) * pixel_area, counts.get(c.id, 0) / total)
        for c in raster_classes(path)
    ]


@dataclass(frozen=True)
class AreaUnit:
    """The unit a whole table of areas is written in, so its rows compare at a glance."""

    symbol: str
    square_metres: float
    decimals: int

    def format(self, area_m2: float) -> str:
        return f"{area_m2 / self.square_metres:,.{self.decimals}f} {self.symbol}"


_SQUARE_METRES = AreaUnit("m²", 1.0, 0)
_HECTARES = AreaUnit("ha", 1e4, 2)
_SQUARE_KILOMETRES = AreaUnit("km²", 1e6, 3)


def area_unit(areas_m2: Sequence[float]) -> AreaUnit:
    """One unit for a table, chosen by its largest area: m² below a hectare, ha below a km², else km²."""
    largest = max(areas_m2, default=0.0)
    if largest < 1e4:
        return _SQUARE_METRES
    if largest < 1e6:
        return _HECTARES
    return _SQUARE_KILOMETRES


def summary_text(areas: list[ClassArea]) -> str:
    """A plain-text table for the Processing log, in one area unit."""
    width = max(len(a.name) for a in areas)
    unit = area_unit([a.area_m2 for a in areas])
    return "\n".join(f"{a.name:<{width}}  {unit.format(a.area_m2):>14}  {100 * a.share:5.1f} %" for a in areas)
