# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the example graphical model shipped with the plugin (segment, then vectorize).

Why a script: a .model3 saved by the modeler window carries window geometry and default
values of whoever saved it; building it in code gives a small, reviewable file that can
be made again after the algorithms' parameters change. The provider loads the file as an
algorithm ("Example model - segment then vectorize"); analysts open it in the modeler as
a starting point for their own chains.

Run: ``.venv/bin/python -m tools.make_example_model`` (needs QGIS's Python bindings).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "dubai_segmenter" / "processing_provider" / "graphical_models" / "segment_then_vectorize.model3"
MODEL_NAME = "Example model - segment then vectorize"


def build_model():
    """The model: raster + model file in; classified raster and polygons out."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFile,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.PyQt.QtCore import QPointF

    from dubai_segmenter.processing_provider.segment_algorithms import MODEL_FILE_FILTER

    model = QgsProcessingModelAlgorithm(MODEL_NAME, "")
    model.setHelpContent({
        "ALG_DESC": "Segments a raster into land-cover classes, then turns buildings, roads and water into "
                    "polygons: the two steps of 'Segment raster and vectorize classes' as separate "
                    "algorithms, to copy and extend (add a clip, a buffer, a report...).",
        "input_raster": "Any raster layer the model can read (RGB for the Dubai models).",
        "model_file": "A dubai_segmenter model file (.safetensors).",
    })
    for position, parameter in enumerate((
        QgsProcessingParameterRasterLayer("input_raster", "Input raster"),
        QgsProcessingParameterFile("model_file", "Model file",
                                   behavior=QgsProcessingParameterFile.Behavior.File,
                                   fileFilter=MODEL_FILE_FILTER),
    )):
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, 60 + 80 * position))
        model.addModelParameter(parameter, component)

    segment = QgsProcessingModelChildAlgorithm("dubai_segmenter:segment_raster")
    segment.setChildId("segment")
    segment.setDescription("Segment raster")
    segment.setPosition(QPointF(360, 140))
    segment.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("input_raster")])
    segment.addParameterSources("MODEL", [QgsProcessingModelChildParameterSource.fromModelParameter("model_file")])
    segment.addParameterSources("BATCH_SIZE", [QgsProcessingModelChildParameterSource.fromStaticValue(1)])
    raster_output = QgsProcessingModelOutput("classified_raster", "Classified raster")
    raster_output.setChildId("segment")
    raster_output.setChildOutputName("OUTPUT")
    raster_output.setPosition(QPointF(560, 80))
    segment.setModelOutputs({"classified_raster": raster_output})
    model.addChildAlgorithm(segment)

    vectorize = QgsProcessingModelChildAlgorithm("dubai_segmenter:vectorize_classes")
    vectorize.setChildId("vectorize")
    vectorize.setDescription("Vectorize classes")
    vectorize.setPosition(QPointF(360, 260))
    vectorize.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromChildOutput("segment", "OUTPUT")])
    # Empty: the classified raster's default classes (building, road, water for the Dubai models).
    vectorize.addParameterSources("CLASSES", [QgsProcessingModelChildParameterSource.fromStaticValue("")])
    vectorize.addParameterSources("MIN_AREA", [QgsProcessingModelChildParameterSource.fromStaticValue(0.0)])
    vectorize.addParameterSources("SIMPLIFY", [QgsProcessingModelChildParameterSource.fromStaticValue(0.0)])
    polygon_output = QgsProcessingModelOutput("polygons", "Polygons")
    polygon_output.setChildId("vectorize")
    polygon_output.setChildOutputName("OUTPUT")
    polygon_output.setPosition(QPointF(560, 320))
    vectorize.setModelOutputs({"polygons": polygon_output})
    model.addChildAlgorithm(vectorize)
    model.updateDestinationParameters()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Qt orders XML attributes by a randomly seeded hash: a fixed seed makes the file
    # byte-identical between runs, so a regenerated model shows only real changes.
    os.environ["QT_HASH_SEED"] = "0"
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    try:
        from dubai_segmenter.processing_provider.provider import DubaiSegmenterProvider

        provider = DubaiSegmenterProvider()  # kept referenced: the registry does not own it
        QgsApplication.processingRegistry().addProvider(provider)
        model = build_model()
        errors = [error for child in ("segment", "vectorize") for error in model.validateChildAlgorithm(child)[1]]
        if errors:
            sys.exit("model is not valid: " + "; ".join(errors))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        if not model.toFile(str(args.output)):
            sys.exit(f"could not write {args.output}")
        print(args.output)
    finally:
        app.exitQgis()


if __name__ == "__main__":
    main()
