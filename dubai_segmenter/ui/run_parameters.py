# SPDX-License-Identifier: GPL-2.0-or-later
"""The dock's choices turned into a Processing algorithm id and its parameters.

The dock runs the same algorithms as the toolbox, so everything it knows must become a
parameter of "Segment raster" or "Segment and vectorize". Kept apart from the widgets so
the mapping can be read (and tested) in one place.
"""
from __future__ import annotations

from dataclasses import dataclass

from qgis.core import (
    QgsMapLayer,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsReferencedRectangle,
)

from .dock_settings import DockSettings, ProcessingArea

SEGMENT = "dubai_segmenter:segment_raster"
SEGMENT_AND_VECTORIZE = "dubai_segmenter:segment_and_vectorize"
TEMPORARY_OUTPUT = "TEMPORARY_OUTPUT"


@dataclass(frozen=True)
class RunInputs:
    """What a run needs besides the saved settings: layers and the canvas, as chosen now."""

    layer: QgsMapLayer | None
    bands: tuple[int, ...]  # 1-based; a 0 or -1 means "not set"
    model_read: bool  # False until the model's metadata is known: tiling is then the model's
    extent: QgsReferencedRectangle | None = None
    mask_layer: QgsMapLayer | None = None
    selected_only: bool = False


def run_parameters(settings: DockSettings, inputs: RunInputs) -> tuple[str, dict]:
    """The algorithm id and parameters, or QgsProcessingException saying what to choose."""
    if inputs.layer is None:
        raise QgsProcessingException("Choose a raster layer.")
    if not settings.model:
        raise QgsProcessingException("Choose a model file.")
    params = {
        "INPUT": inputs.layer.id(),
        "MODEL": settings.model,
        "TILE_SIZE": settings.tile if inputs.model_read else None,
        "OVERLAP": settings.overlap if inputs.model_read else None,  # 0 is a valid overlap
        "BATCH_SIZE": settings.batch,
        "RESOLUTION": settings.resolution or None,  # 0 = the layer's own
        "OUTPUT": settings.raster_output or TEMPORARY_OUTPUT,
        "QUALITY": settings.quality,
        "SCHEDULER": settings.scheduler,
    }
    if inputs.bands and all(b > 0 for b in inputs.bands):
        params["BANDS"] = list(inputs.bands)
    if settings.area == ProcessingArea.EXTENT:
        if inputs.extent is None:
            raise QgsProcessingException("There is no map extent to process.")
        params["EXTENT"] = inputs.extent
    elif settings.area == ProcessingArea.POLYGONS:
        if inputs.mask_layer is None:
            raise QgsProcessingException("Choose the polygon layer that delimits the processing area.")
        params["MASK"] = QgsProcessingFeatureSourceDefinition(inputs.mask_layer.id(), inputs.selected_only)
    if not settings.polygons:
        return SEGMENT, params
    if not settings.classes:
        raise QgsProcessingException("Choose at least one class to vectorize, or untick Polygons.")
    params.update({
        "CLASSES": ",".join(settings.classes),
        "MIN_AREA": settings.min_area,
        "SIMPLIFY": settings.simplify,
        "OUTPUT_VECTOR": settings.vector_output or TEMPORARY_OUTPUT,
    })
    return SEGMENT_AND_VECTORIZE, params
