# SPDX-License-Identifier: GPL-2.0-or-later
"""The "Segment raster" and "Segment and vectorize" algorithms.

Both run one ``segment`` call of the engine (one TensorFlow start-up); the second also
asks it for polygons. The input is prepared in QGIS first when the engine could not read
it directly (web layers, VRTs, a processing area): see input_preparation.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

from qgis.core import (
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingUtils,
)

from ..child_process.engine_command import SegmentRequest, VectorizeOptions
from ..child_process.runner import EngineCancelled
from ..engine.contract import POLYGON_LAYER, POLYGON_SUFFIX, RASTER_SUFFIXES
from ..engine.raster_legend import raster_classes
from ..qgis_compat import FILE_BEHAVIOUR_FILE, NUMBER_INTEGER, PARAMETER_ADVANCED, VECTOR_POLYGON_SOURCE
from .classified_raster import class_areas, summary_text
from .engine_algorithm import DEFAULT_CLASSES_TEXT, EngineAlgorithm, check_extension, help_html
from .engine_python import engine_python
from .input_preparation import (
    InputPreparationError,
    RasterSnapshot,
    ShareOfProgress,
    preparation_kind,
    prepare_input,
)

MODEL_FILE_FILTER = "Dubai segmenter models (*.safetensors *.onnx);;All files (*)"

#: Share of the progress bar for preparing the input, by what preparing takes: nothing
#: for a local file read as it is, a GDAL warp of the area (fast next to the model),
#: or rendering a web layer through QGIS (network-bound).
PREPARATION_SHARE = {"none": 0.0, "warp": 5.0, "render": 25.0}


#: The Quality choices: (label, the engine's --tta mode), in the order of the enum parameter.
QUALITY_CHOICES: tuple[tuple[str, str], ...] = (("Fast", "none"), ("Best (test-time augmentation)", "flips"))

_SEGMENT_HELP = (
    "Classifies every pixel of a raster into the land-cover classes of a model (for the Dubai models: "
    "building, land, road, vegetation, water, unlabeled) and writes a classified GeoTIFF in the input's "
    "CRS, with the class colours and names as its legend.",
    "The model runs as a sliding window in a separate Python process, so QGIS stays responsive and Cancel "
    "stops it at once without leaving a half-written file. Pixels without data, and pixels outside the "
    "chosen polygons, get the no-data value 255.",
    "<b>Input raster</b>: any raster layer; web (WMS/XYZ) and VRT layers are exported to a temporary "
    "GeoTIFF of the processing area first. <b>Bands</b>: the bands the model reads, in order (default: "
    "the first ones, e.g. 1,2,3 for RGB). <b>Model file</b>: a .safetensors or exported .onnx model.",
    "<b>Tile size</b> and <b>Tile overlap</b> in pixels: empty for the model's own (the tile a multiple "
    "of 32; an overlap of 0 is allowed and means tiles do not overlap). <b>Tiles per batch</b>: more is a "
    "little faster and needs more memory.",
    "<b>Resolution</b>: map units per pixel to resample to (empty or 0: the layer's own; required for "
    "web layers). <b>Extent</b> and <b>Only inside polygons</b>: process part of the layer only.",
    "<b>Quality</b>: Fast runs each tile once; Best averages the model over the tile and its three "
    "flips (test-time augmentation), about four times the model time.",
    "<b>Dask scheduler</b> (advanced): the address of a Dask cluster's scheduler, e.g. "
    "tcp://10.0.0.5:8786, to run the tiles on its workers with the same result; empty: this computer.",
    "The Python that runs the model is chosen in the Dubai Segmenter panel (or with the environment "
    "variable DUBAI_SEGMENTER_PYTHON); if it lacks a package the error says which and gives the pip "
    "command.",
)

_VECTORIZE_HELP = (
    f"Also turns the chosen classes into polygons (GeoPackage layer <i>{POLYGON_LAYER}</i> with fields "
    "class_id, class_name, area, perimeter).",
    "<b>Classes to vectorize</b>: names or ids of the model's classes, comma-separated (e.g. "
    f"building,road or 0,2); empty: {DEFAULT_CLASSES_TEXT} when the model has them, else all classes "
    "but catch-alls such as unlabeled. <b>Minimum polygon area</b> (square map units) drops smaller "
    "regions; <b>Simplify tolerance</b> (map units) straightens pixel staircases, 0 keeps every pixel "
    "corner.",
)


class SegmentRasterAlgorithm(EngineAlgorithm):
    """Raster in, classified GeoTIFF out."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    MODEL = "MODEL"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    RESOLUTION = "RESOLUTION"
    SCHEDULER = "SCHEDULER"
    QUALITY = "QUALITY"
    EXTENT = "EXTENT"
    MASK = "MASK"
    OUTPUT = "OUTPUT"
    OUTPUT_VECTOR = "OUTPUT_VECTOR"
    CLASS_AREAS = "CLASS_AREAS"
    with_polygons = False

    def name(self) -> str:
        return "segment_raster"

    def displayName(self) -> str:
        return "Segment raster (land cover)"

    def shortHelpString(self) -> str:
        return help_html(*_SEGMENT_HELP)

    def tags(self) -> list[str]:
        return ["segmentation", "classification", "land cover", "deep learning", "u-net", "buildings", "roads"]

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"))
        self.addParameter(QgsProcessingParameterBand(
            self.BANDS, "Bands", parentLayerParameterName=self.INPUT, optional=True, allowMultiple=True,
        ))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model file", behavior=FILE_BEHAVIOUR_FILE, fileFilter=MODEL_FILE_FILTER,
        ))
        for name, label, minimum in ((self.TILE_SIZE, "Tile size", 32), (self.OVERLAP, "Tile overlap", 0)):
            self.addParameter(QgsProcessingParameterNumber(
                name, label, type=NUMBER_INTEGER, optional=True, minValue=minimum,
            ))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Tiles per batch", type=NUMBER_INTEGER, defaultValue=1, minValue=1,
        ))
        self.addParameter(QgsProcessingParameterDistance(
            self.RESOLUTION, "Resolution", parentParameterName=self.INPUT, optional=True, minValue=0.0,
        ))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.MASK, "Only inside polygons", [VECTOR_POLYGON_SOURCE], optional=True,
        ))
        self.addParameter(QgsProcessingParameterEnum(
            self.QUALITY, "Quality", options=[label for label, _ in QUALITY_CHOICES], defaultValue=0, optional=True,
        ))
        scheduler = QgsProcessingParameterString(self.SCHEDULER, "Dask scheduler", optional=True)
        scheduler.setFlags(scheduler.flags() | PARAMETER_ADVANCED)
        self.addParameter(scheduler)
        if self.with_polygons:
            self.add_vectorize_parameters(self.INPUT)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Classified raster"))
        if self.with_polygons:
            self.addParameter(QgsProcessingParameterVectorDestination(
                self.OUTPUT_VECTOR, "Polygons", type=VECTOR_POLYGON_SOURCE,
            ))
        self.addOutput(QgsProcessingOutputString(self.CLASS_AREAS, "Area per class (JSON)"))

    def prepareAlgorithm(self, parameters, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        # Runs in the thread that owns the layer; processAlgorithm may run in another.
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException("The input raster layer is missing or cannot be read.")
        self.snapshot = RasterSnapshot.of(layer, context.transformContext())
        return True

    def _optional_number(self, parameters, name: str, context: QgsProcessingContext) -> float | None:
        """An optional number, None only when left empty: 0 is a value (an overlap of 0)."""
        if parameters.get(name) in (None, ""):
            return None
        return self.parameterAsDouble(parameters, name, context)

    def _polygons(self, parameters, context: QgsProcessingContext):
        source = self.parameterAsSource(parameters, self.MASK, context)
        if source is None:
            return None
        request = QgsFeatureRequest().setDestinationCrs(self.snapshot.crs, context.transformContext())
        request.setNoAttributes()
        return [feature.geometry() for feature in source.getFeatures(request) if feature.hasGeometry()]

    def processAlgorithm(self, parameters, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        python = engine_python()  # first: a missing package fails before any work
        model = self.parameterAsFile(parameters, self.MODEL, context)
        if model and not os.path.isfile(model):  # the name of an installed model, e.g. dubai-native-v1
            from ..model_locations import resolve_plugin_model

            try:
                model = str(resolve_plugin_model(model))
            except FileNotFoundError as exc:
                raise QgsProcessingException(str(exc)) from exc
        if not model or not os.path.isfile(model):
            raise QgsProcessingException(
                f"Model file not found: {model or '(none given)'}. Choose a .safetensors (or exported .onnx) model.")
        out_raster = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        check_extension(out_raster, RASTER_SUFFIXES, "classified raster")
        out_vector = None
        vectorize = VectorizeOptions()
        if self.with_polygons:
            out_vector = self.parameterAsOutputLayer(parameters, self.OUTPUT_VECTOR, context)
            check_extension(out_vector, (POLYGON_SUFFIX,), "polygon output")
            vectorize = VectorizeOptions(
                classes=self.chosen_classes(parameters, context),
                min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
                simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
            )
        extent = None
        if parameters.get(self.EXTENT) not in (None, ""):
            extent = self.parameterAsExtent(parameters, self.EXTENT, context, self.snapshot.crs)
        tile, overlap = (self._optional_number(parameters, n, context) for n in (self.TILE_SIZE, self.OVERLAP))
        # 0 or empty resolution: the layer's own (a resolution of 0 means nothing else).
        resolution = self._optional_number(parameters, self.RESOLUTION, context) or None
        polygons = self._polygons(parameters, context)
        preparation = PREPARATION_SHARE[preparation_kind(self.snapshot, extent, polygons)]
        work_dir = tempfile.mkdtemp(prefix="dubai_segmenter_", dir=QgsProcessingUtils.tempFolder())
        try:
            try:
                prepared = prepare_input(self.snapshot, work_dir, extent, polygons, resolution,
                                         ShareOfProgress(feedback, preparation))
            except InputPreparationError as exc:
                raise QgsProcessingException(str(exc)) from exc
            if prepared is None or feedback.isCanceled():
                return self.report_cancelled(feedback)
            if prepared.path != self.snapshot.local_path:
                feedback.pushInfo(f"Prepared the processing area as {prepared.path}")
            request = SegmentRequest(
                input_path=prepared.path,
                model_path=model,
                out_raster=out_raster,
                out_vector=out_vector,
                vectorize=vectorize,
                bands=self._bands(parameters, context),
                tile_size=None if tile is None else int(tile),
                overlap=None if overlap is None else int(overlap),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context) or None,
                resolution=prepared.resolution,
                scheduler=self.parameterAsString(parameters, self.SCHEDULER, context).strip() or None,
                tta=QUALITY_CHOICES[self.parameterAsEnum(parameters, self.QUALITY, context)][1],
            )
            try:
                self.run_child(python, request.arguments(), request.outputs(), feedback, start=preparation)
            except EngineCancelled:
                return self.report_cancelled(feedback)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        areas = class_areas(out_raster)
        feedback.pushInfo("Area per class (share of the processed area):\n" + summary_text(areas))
        classes = raster_classes(out_raster)
        results = {self.OUTPUT: out_raster, self.CLASS_AREAS: json.dumps([a.as_dict() for a in areas])}
        self.style_on_load(out_raster, classes, context)
        if out_vector is not None:
            self.style_on_load(out_vector, classes, context)
            results[self.OUTPUT_VECTOR] = out_vector
        return results


    def _bands(self, parameters, context) -> list[int] | None:
        """The chosen bands, also from "1,1,1" as qgis_process passes it (parameterAsInts reads 0)."""
        raw = parameters.get(self.BANDS)
        if isinstance(raw, str) and raw.strip():
            try:
                return [int(part) for part in raw.replace(";", ",").split(",") if part.strip()]
            except ValueError:
                raise QgsProcessingException(
                    f"Bands: {raw!r} is not a list of band numbers; give them separated by commas, e.g. 1,1,1"
                ) from None
        return self.parameterAsInts(parameters, self.BANDS, context) or None


class SegmentAndVectorizeAlgorithm(SegmentRasterAlgorithm):
    """Raster in, classified GeoTIFF and polygons of chosen classes out, in one engine run."""

    with_polygons = True

    def name(self) -> str:
        return "segment_and_vectorize"

    def displayName(self) -> str:
        return "Segment raster and vectorize classes"

    def shortHelpString(self) -> str:
        return help_html(*_SEGMENT_HELP, *_VECTORIZE_HELP)
