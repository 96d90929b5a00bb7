"""What every algorithm of the provider shares: parameters, running the engine, errors.

An algorithm never computes anything heavy itself: it prepares the input in QGIS (only
QGIS can read web layers), starts the engine's command line in a child process with the
configured Python, maps its progress lines onto the Processing feedback, and stops it
when the user cancels. Engine errors become QgsProcessingException with the engine's
own message, which Processing shows as is: no traceback for a bad input.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtGui import QIcon

from ..child_process.runner import EngineCancelled, EngineError, run_engine
from ..engine.classes import DUBAI_CLASSES, ClassInfo
from .layer_styles import ClassStylePostProcessor

ICON_PATH = Path(__file__).resolve().parent.parent / "icons" / "icon.png"
#: Classes vectorized unless the user chooses others (indices into DUBAI_CLASSES).
DEFAULT_VECTOR_CLASS_INDICES = [i for i, c in enumerate(DUBAI_CLASSES) if c.key in ("building", "road", "water")]


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms (not registered itself)."""

    CLASSES = "CLASSES"
    MIN_AREA = "MIN_AREA"
    SIMPLIFY = "SIMPLIFY"

    def createInstance(self):  # noqa: N802 - QGIS API
        return type(self)()

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def group(self) -> str:
        return ""

    def groupId(self) -> str:  # noqa: N802 - QGIS API
        return ""

    def helpUrl(self) -> str:  # noqa: N802 - QGIS API
        return "https://github.com/dubai-segmenter/dubai_segmenter#qgis-plugin"

    # --- parameters -------------------------------------------------------------------

    def add_vectorize_parameters(self, distance_parent: str) -> None:
        """Classes, minimum area and simplification, in the units of ``distance_parent``'s CRS."""
        self.addParameter(QgsProcessingParameterEnum(
            self.CLASSES, "Classes to vectorize", options=[c.name for c in DUBAI_CLASSES],
            allowMultiple=True, defaultValue=DEFAULT_VECTOR_CLASS_INDICES,
        ))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_AREA, "Minimum polygon area (square map units; smaller regions are dropped)",
            type=QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0,
        ))
        self.addParameter(QgsProcessingParameterDistance(
            self.SIMPLIFY, "Simplification tolerance (0 = keep every pixel corner)",
            defaultValue=0.0, parentParameterName=distance_parent, minValue=0.0,
        ))

    def chosen_class_keys(self, parameters, context: QgsProcessingContext) -> tuple[str, ...]:
        indices = self.parameterAsEnums(parameters, self.CLASSES, context)
        if not indices:
            raise QgsProcessingException("Choose at least one class to vectorize.")
        return tuple(DUBAI_CLASSES[i].key for i in indices)

    # --- running the engine -----------------------------------------------------------

    @staticmethod
    def run_child(python: str, arguments: list[str], outputs: list[str], feedback: QgsProcessingFeedback) -> list[str]:
        """Run the engine with ``python``; progress and cancel through ``feedback``.

        Returns the engine's stdout lines. A cancel raises EngineCancelled (the engine
        stopped, no output left) for the caller to turn into an empty result.
        """
        feedback.pushCommandInfo(shlex.join([python, *arguments]))

        def progress(percent: float, message: str) -> None:
            feedback.setProgress(percent)
            if message:
                feedback.setProgressText(message)

        try:
            return run_engine(python, arguments, progress=progress, cancel=feedback.isCanceled,
                              log=feedback.pushConsoleInfo, outputs=outputs)
        except EngineCancelled:
            raise
        except EngineError as exc:
            if exc.details:
                feedback.pushDebugInfo(exc.details)
            raise QgsProcessingException(str(exc)) from exc

    def style_on_load(self, path: str, classes: tuple[ClassInfo, ...], context: QgsProcessingContext) -> None:
        """Class colours for ``path`` if Processing is going to load it into the project."""
        if context.willLoadLayerOnCompletion(path):
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(ClassStylePostProcessor.create(classes))


def check_extension(path: str, extensions: tuple[str, ...], what: str) -> None:
    """The engine writes GeoTIFF and GeoPackage only: say so before it starts."""
    if not path.lower().endswith(extensions):
        raise QgsProcessingException(f"The {what} must be a {extensions[0]} file, not {Path(path).name}.")

