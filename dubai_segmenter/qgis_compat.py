# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS enums that moved between QGIS 3.22 and QGIS 4, looked up once by their full names.

QGIS 3.30-3.36 moved several enums into the ``Qgis`` namespace (``Qgis.LayerFilter``,
``Qgis.ProcessingSourceType`` ...) and QGIS 4 (Qt 6) drops the old unscoped names. One
code base serves both by trying the new fully qualified name first, then the 3.22 one.
"""
from __future__ import annotations

from typing import Any

from qgis import core


def _lookup(*paths: str) -> Any:
    for path in paths:
        value: Any = core
        try:
            for part in path.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        return value
    raise AttributeError(f"none of {paths} exists in this QGIS")


RASTER_LAYER_FILTER = _lookup("Qgis.LayerFilter.RasterLayer", "QgsMapLayerProxyModel.Filter.RasterLayer")
POLYGON_LAYER_FILTER = _lookup("Qgis.LayerFilter.PolygonLayer", "QgsMapLayerProxyModel.Filter.PolygonLayer")
VECTOR_POLYGON_SOURCE = _lookup("Qgis.ProcessingSourceType.VectorPolygon", "QgsProcessing.SourceType.TypeVectorPolygon")
NUMBER_INTEGER = _lookup("Qgis.ProcessingNumberParameterType.Integer", "QgsProcessingParameterNumber.Type.Integer")
NUMBER_DOUBLE = _lookup("Qgis.ProcessingNumberParameterType.Double", "QgsProcessingParameterNumber.Type.Double")
FILE_BEHAVIOUR_FILE = _lookup("Qgis.ProcessingFileParameterBehavior.File", "QgsProcessingParameterFile.Behavior.File")
DISTANCE_METERS = _lookup("Qgis.DistanceUnit.Meters", "QgsUnitTypes.DistanceUnit.DistanceMeters")
RASTER_WRITER_SUCCESS = _lookup("Qgis.RasterFileWriterResult.Success", "QgsRasterFileWriter.WriterError.NoError")
RASTER_CAPABILITY_SIZE = _lookup("Qgis.RasterInterfaceCapability.Size", "QgsRasterInterface.Capability.Size")
WKT_PREFERRED_GDAL = _lookup("Qgis.CrsWktVariant.PreferredGdal",
                             "QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED_GDAL")
PARAMETER_ADVANCED = _lookup(
    "Qgis.ProcessingParameterFlag.Advanced", "QgsProcessingParameterDefinition.Flag.FlagAdvanced")
