# SPDX-License-Identifier: GPL-2.0-or-later
"""Turning "this layer, this area, this resolution" into a GeoTIFF the engine can read.

The engine reads files with rasterio in another process. A local GDAL file covering the
whole area goes to it as it is (the engine resamples by itself). Anything else is
written to a temporary GeoTIFF first:
- layers that are not a local GDAL file (WMS/XYZ/WCS, VRTs that may point at remote
  tiles, /vsi paths) are rendered through QGIS's raster provider (QgsRasterFileWriter),
  which is the only code that knows how to read them;
- an extent crops to the pixel grid; polygons become a GDAL cutline, so pixels outside
  them get alpha 0, which the engine treats as no data (class 255 in the output).
The input layer itself is never modified.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from osgeo import gdal, ogr, osr
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransformContext,
    QgsFeedback,
    QgsGeometry,
    QgsProviderRegistry,
    QgsRasterBlockFeedback,
    QgsRasterDataProvider,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
    QgsRectangle,
)
from qgis.PyQt.QtCore import Qt

from ..qgis_compat import RASTER_CAPABILITY_SIZE, RASTER_WRITER_SUCCESS, WKT_PREFERRED_GDAL

_GTIFF_OPTIONS = ["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"]


class InputPreparationError(ValueError):
    """The area or resolution chosen cannot be prepared (the message says why)."""


def local_gdal_file(layer: QgsRasterLayer) -> str | None:
    """The file a layer reads, when rasterio in the child can read it the same way.

    VRTs are excluded on purpose: their sources may be remote or relative to somewhere
    else, and exporting once at the processing resolution is both safer and faster.
    """
    if layer.providerType() != "gdal":
        return None
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = parts.get("path") or ""
    if parts.get("layerName") or not os.path.isfile(path) or path.lower().endswith(".vrt"):
        return None
    return path


@dataclass
class RasterSnapshot:
    """What a background thread needs of a raster layer, taken in the layer's thread.

    Layers belong to the main thread; a provider clone may be used in another one
    (that is how QGIS's own raster algorithms work).
    """

    name: str
    crs: QgsCoordinateReferenceSystem
    extent: QgsRectangle
    pixel_size: tuple[float, float] | None  # None for providers without a native grid (WMS/XYZ)
    local_path: str | None
    provider: QgsRasterDataProvider | None  # a clone, for layers that must be exported
    transform_context: QgsCoordinateTransformContext

    @classmethod
    def of(cls, layer: QgsRasterLayer, transform_context: QgsCoordinateTransformContext) -> RasterSnapshot:
        provider = layer.dataProvider()
        has_grid = bool(provider.capabilities() & RASTER_CAPABILITY_SIZE) and provider.xSize() > 0
        pixel_size = (layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY()) if has_grid else None
        local_path = local_gdal_file(layer)
        return cls(layer.name(), layer.crs(), layer.extent(), pixel_size, local_path,
                   None if local_path else provider.clone(), transform_context)


def _snap(extent: QgsRectangle, origin: QgsRectangle, pixel: tuple[float, float]) -> QgsRectangle:
    """Grow ``extent`` outwards to whole pixels of the grid that starts at ``origin``'s corner."""
    px, py = pixel
    x0 = origin.xMinimum() + math.floor((extent.xMinimum() - origin.xMinimum()) / px + 1e-9) * px
    x1 = origin.xMinimum() + math.ceil((extent.xMaximum() - origin.xMinimum()) / px - 1e-9) * px
    y1 = origin.yMaximum() - math.floor((origin.yMaximum() - extent.yMaximum()) / py + 1e-9) * py
    y0 = origin.yMaximum() - math.ceil((origin.yMaximum() - extent.yMinimum()) / py - 1e-9) * py
    return QgsRectangle(x0, y0, x1, y1)


def processing_grid(
    snapshot: RasterSnapshot, extent: QgsRectangle | None, resolution: float | None
) -> tuple[QgsRectangle, int, int]:
    """Extent (in the layer's CRS) and size in pixels of the raster to prepare."""
    area = QgsRectangle(snapshot.extent)
    if extent is not None:
        area = area.intersect(extent)
        if area.isEmpty():
            raise InputPreparationError(
                f"the processing area does not overlap the layer {snapshot.name!r}; choose another area"
            )
    if resolution is None:
        if snapshot.pixel_size is None:
            raise InputPreparationError(
                f"the layer {snapshot.name!r} has no native pixel size (a web map layer): "
                "choose a processing resolution"
            )
        pixel = snapshot.pixel_size
        area = _snap(area, snapshot.extent, pixel).intersect(snapshot.extent)
    else:
        if not resolution > 0:
            raise InputPreparationError(f"the processing resolution must be positive, not {resolution}")
        pixel = (resolution, resolution)
    width = max(1, round(area.width() / pixel[0]))
    height = max(1, round(area.height() / pixel[1]))
    if width * height > 2**31:
        raise InputPreparationError(
            f"{width} x {height} pixels is too large to export; choose a coarser resolution or a smaller area"
        )
    return area, width, height


def export_with_qgis(snapshot: RasterSnapshot, area: QgsRectangle, width: int, height: int, destination: str,
                     feedback: QgsFeedback | None = None) -> str:
    """Render the layer's provider over ``area`` at ``width`` x ``height`` into a GeoTIFF.

    Web layers come out as RGBA with band 4 marked alpha, so transparent (unloaded) pixels
    are no data for the engine. Returns "" when cancelled through ``feedback``.
    """
    writer = QgsRasterFileWriter(destination)
    writer.setOutputFormat("GTiff")
    writer.setCreateOptions(_GTIFF_OPTIONS)
    pipe = QgsRasterPipe()
    if not pipe.set(snapshot.provider.clone()):
        raise InputPreparationError(f"cannot read the layer {snapshot.name!r} through QGIS")
    block_feedback = QgsRasterBlockFeedback()  # the writer takes this kind; relay progress and cancel
    if feedback is not None:
        block_feedback.progressChanged.connect(feedback.setProgress)
        feedback.canceled.connect(block_feedback.cancel)
    error = writer.writeRaster(pipe, width, height, area, snapshot.crs, snapshot.transform_context, block_feedback)
    if feedback is not None:
        feedback.canceled.disconnect(block_feedback.cancel)
        if feedback.isCanceled():
            return ""
    if error != RASTER_WRITER_SUCCESS:
        raise InputPreparationError(f"exporting the layer {snapshot.name!r} to {destination} failed (error {error})")
    return destination


def _cutline(polygons: Sequence[QgsGeometry], crs: QgsCoordinateReferenceSystem, path: str) -> str:
    """Write ``polygons`` (already in ``crs``) to a GeoPackage GDAL can use as a cutline."""
    driver = ogr.GetDriverByName("GPKG")
    source = driver.CreateDataSource(path)
    reference = osr.SpatialReference()
    reference.ImportFromWkt(crs.toWkt(WKT_PREFERRED_GDAL))
    layer = source.CreateLayer("area", reference, ogr.wkbMultiPolygon)
    for polygon in polygons:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkb(bytes(polygon.asWkb())))
        layer.CreateFeature(feature)
    source = None
    return path


def _report(feedback: QgsFeedback, fraction: float) -> int:
    """GDAL progress callback: 1 = go on, 0 = stop (cancelled)."""
    feedback.setProgress(100 * fraction)
    return 0 if feedback.isCanceled() else 1


def warp_to_area(source: str, area: QgsRectangle, width: int, height: int, destination: str,
                 polygons: Sequence[QgsGeometry] | None, crs: QgsCoordinateReferenceSystem,
                 work_dir: str, feedback: QgsFeedback | None = None) -> str:
    """GDAL copy of ``source`` on the target grid; outside ``polygons`` becomes alpha 0.

    Returns "" when cancelled through ``feedback``.
    """
    source_dataset = gdal.Open(source)
    if source_dataset is None:
        raise InputPreparationError(f"cannot open {source} ({gdal.GetLastErrorMsg()})")
    source_pixel = abs(source_dataset.GetGeoTransform()[1])
    target_pixel = area.width() / width
    options = dict(
        format="GTiff",
        outputBounds=(area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum()),
        width=width,
        height=height,
        resampleAlg="average" if target_pixel > source_pixel * 1.001 else
        ("near" if abs(target_pixel - source_pixel) <= source_pixel * 1e-3 else "bilinear"),
        creationOptions=_GTIFF_OPTIONS,
        multithread=True,
    )
    has_alpha = any(
        source_dataset.GetRasterBand(i).GetColorInterpretation() == gdal.GCI_AlphaBand
        for i in range(1, source_dataset.RasterCount + 1)
    )
    if polygons is not None:
        options["cutlineDSName"] = _cutline(polygons, crs, os.path.join(work_dir, "area.gpkg"))
        options["cutlineLayer"] = "area"
    if not has_alpha:
        options["dstAlpha"] = True
    if feedback is not None:
        options["callback"] = lambda fraction, *_: _report(feedback, fraction)
    result = gdal.Warp(destination, source_dataset, **options)
    if result is None:
        if feedback is not None and feedback.isCanceled():
            return ""
        raise InputPreparationError(f"preparing the processing area failed: {gdal.GetLastErrorMsg()}")
    result = None
    return destination


@dataclass(frozen=True)
class PreparedInput:
    """The file to give the engine, and the resolution to pass it (None: use the file's)."""

    path: str
    resolution: float | None


def preparation_kind(snapshot: RasterSnapshot, extent: QgsRectangle | None,
                     polygons: Sequence[QgsGeometry] | None) -> str:
    """What ``prepare_input`` will do: "none" (the file as it is), "warp" or "render" (through QGIS)."""
    if snapshot.local_path is None:
        return "render"
    return "none" if extent is None and polygons is None else "warp"


class ShareOfProgress(QgsFeedback):
    """Feedback for one step that fills the first ``share`` percent of ``parent``'s bar.

    Cancelling the parent cancels this step at once (a direct connection: the step runs
    in a task's thread, which has no event loop to deliver a queued signal).
    """

    def __init__(self, parent: QgsFeedback, share: float) -> None:
        super().__init__()
        self._parent, self._share = parent, share
        self.progressChanged.connect(self._forward, Qt.ConnectionType.DirectConnection)
        parent.canceled.connect(self.cancel, Qt.ConnectionType.DirectConnection)
        if parent.isCanceled():
            self.cancel()

    def _forward(self, percent: float) -> None:
        self._parent.setProgress(percent * self._share / 100.0)


def prepare_input(
    snapshot: RasterSnapshot,
    work_dir: str,
    extent: QgsRectangle | None = None,
    polygons: Sequence[QgsGeometry] | None = None,
    resolution: float | None = None,
    feedback: QgsFeedback | None = None,
) -> PreparedInput | None:
    """The engine's input for this layer, area and resolution (None when cancelled).

    ``extent`` and ``polygons`` are in the layer's CRS; files are written to ``work_dir``.
    """
    if snapshot.local_path is not None and extent is None and polygons is None:
        return PreparedInput(snapshot.local_path, resolution)
    if polygons is not None:
        polygons = [p for p in polygons if not p.isEmpty()]
        if not polygons:
            raise InputPreparationError("the processing area has no polygons; choose a layer with polygons")
        bounds = QgsRectangle(polygons[0].boundingBox())
        for polygon in polygons[1:]:
            bounds.combineExtentWith(polygon.boundingBox())
        extent = bounds if extent is None else extent.intersect(bounds)
        if extent.isEmpty():
            raise InputPreparationError("the polygons do not overlap the chosen extent")
    area, width, height = processing_grid(snapshot, extent, resolution)
    source = snapshot.local_path
    if source is None:
        source = export_with_qgis(snapshot, area, width, height, os.path.join(work_dir, "exported.tif"), feedback)
        if not source:
            return None
        if polygons is None:
            return PreparedInput(source, None)
    prepared = warp_to_area(source, area, width, height, os.path.join(work_dir, "input.tif"), polygons,
                            snapshot.crs, work_dir, feedback)
    return PreparedInput(prepared, None) if prepared else None
