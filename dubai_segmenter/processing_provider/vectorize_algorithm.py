# SPDX-License-Identifier: GPL-2.0-or-later
"""The "Vectorize classes" algorithm: polygons of chosen classes of a classified raster.

Runs the engine's ``vectorize`` command, which needs no TensorFlow, so it is quick to
start; chained after "Segment raster" in the modeler it gives the same polygons as
"Segment and vectorize".
"""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ..child_process.engine_command import VectorizeOptions, VectorizeRequest
from ..child_process.runner import EngineCancelled
from ..engine.contract import POLYGON_LAYER, POLYGON_SUFFIX
from ..engine.raster_legend import raster_classes
from ..qgis_compat import VECTOR_POLYGON_SOURCE
from .engine_algorithm import DEFAULT_CLASSES_TEXT, EngineAlgorithm, check_extension, help_html
from .engine_python import engine_python
from .input_preparation import local_gdal_file

_HELP = (
    "Turns the chosen classes of a classified raster (the output of <i>Segment raster</i>) into polygons: "
    "one polygon per connected region, holes kept, in the raster's CRS, written to a GeoPackage layer "
    f"<i>{POLYGON_LAYER}</i> with fields class_id, class_name, area and perimeter (map units).",
    "<b>Classes to vectorize</b>: names or ids of the raster's classes, comma-separated (e.g. building,road "
    f"or 0,2); empty: {DEFAULT_CLASSES_TEXT} when the raster has them, else all classes but catch-alls "
    "such as unlabeled. Class names come from the raster's legend.",
    "<b>Minimum polygon area</b> drops smaller regions (square map units); <b>Simplify tolerance</b> "
    "straightens pixel staircases (map units; 0 keeps every pixel corner).",
)


class VectorizeClassesAlgorithm(EngineAlgorithm):
    """Classified raster in, GeoPackage polygons out."""

    INPUT = "INPUT"
    OUTPUT = "OUTPUT"

    def name(self) -> str:
        return "vectorize_classes"

    def displayName(self) -> str:
        return "Vectorize classes"

    def shortHelpString(self) -> str:
        return help_html(*_HELP)

    def tags(self) -> list[str]:
        return ["polygonize", "vectorize", "land cover", "classes", "buildings", "roads", "water"]

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Classified raster"))
        self.add_vectorize_parameters(self.INPUT)
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Polygons", type=VECTOR_POLYGON_SOURCE,
        ))

    def prepareAlgorithm(self, parameters, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException("The classified raster layer is missing or cannot be read.")
        self.classified_path = local_gdal_file(layer)
        if self.classified_path is None:
            raise QgsProcessingException(
                f"{layer.name()} is not a local GeoTIFF: vectorize the classified raster written by Segment raster."
            )
        return True

    def processAlgorithm(self, parameters, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        python = engine_python()  # first: a missing package fails before any work
        out_vector = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        check_extension(out_vector, (POLYGON_SUFFIX,), "polygon output")
        request = VectorizeRequest(self.classified_path, out_vector, VectorizeOptions(
            classes=self.chosen_classes(parameters, context),
            min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
            simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
        ))
        try:
            self.run_child(python, request.arguments(), request.outputs(), feedback)
        except EngineCancelled:
            return self.report_cancelled(feedback)
        self.style_on_load(out_vector, raster_classes(self.classified_path), context)
        return {self.OUTPUT: out_vector}
