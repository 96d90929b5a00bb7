# SPDX-License-Identifier: GPL-2.0-or-later
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
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from ..child_process.runner import EngineCancelled, EngineError, run_engine
from ..engine.classes import DEFAULT_VECTOR_KEYS, ClassInfo
from ..plugin_metadata import plugin_metadata
from ..qgis_compat import NUMBER_DOUBLE
from .engine_messages import for_qgis
from .layer_styles import ClassStylePostProcessor

ICON_PATH = Path(__file__).resolve().parent.parent / "icons" / "icon.png"
#: The classes vectorized when none are chosen, for help texts ("building, road and water").
DEFAULT_CLASSES_TEXT = f"{', '.join(DEFAULT_VECTOR_KEYS[:-1])} and {DEFAULT_VECTOR_KEYS[-1]}"
#: What a cancelled run reports: a cancel is not an error, so this is information.
CANCELLED_MESSAGE = "Cancelled: the engine was stopped and no output was written."


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms (not registered itself)."""

    CLASSES = "CLASSES"
    MIN_AREA = "MIN_AREA"
    SIMPLIFY = "SIMPLIFY"

    def createInstance(self):
        return type(self)()

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return ""

    def helpUrl(self) -> str:
        homepage = plugin_metadata().get("homepage", "")
        return f"{homepage}#qgis-plugin" if homepage else ""

    # --- parameters -------------------------------------------------------------------

    def add_vectorize_parameters(self, distance_parent: str) -> None:
        """Classes, minimum area and simplification, in the units of ``distance_parent``'s CRS.

        Classes are the model's (or the classified raster's), not a fixed list: they are
        given by name or id and checked by the engine, which knows them.
        """
        self.addParameter(QgsProcessingParameterString(
            self.CLASSES, "Classes to vectorize", optional=True, defaultValue="",
        ))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_AREA, "Minimum polygon area", type=NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0,
        ))
        self.addParameter(QgsProcessingParameterDistance(
            self.SIMPLIFY, "Simplify tolerance", defaultValue=0.0, parentParameterName=distance_parent, minValue=0.0,
        ))

    def chosen_classes(self, parameters, context: QgsProcessingContext) -> tuple[str, ...] | None:
        """Class names or ids as given (None: the model's default classes).

        Python callers may pass a list (``[0, 4]``), as they did when this was an enum.
        """
        value = parameters.get(self.CLASSES)
        if isinstance(value, (list, tuple)):
            text = ",".join(str(v) for v in value)
        else:
            text = self.parameterAsString(parameters, self.CLASSES, context) or ""
        chosen = tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())
        return chosen or None

    # --- running the engine -----------------------------------------------------------

    @staticmethod
    def run_child(python: str, arguments: list[str], outputs: list[str], feedback: QgsProcessingFeedback,
                  start: float = 0.0) -> list[str]:
        """Run the engine with ``python``; progress and cancel through ``feedback``.

        The engine's 0-100 % is mapped onto ``start``-100 % of the bar. Returns the
        engine's stdout lines. A cancel raises EngineCancelled (the engine stopped, no
        output left) for the caller to turn into an empty result.
        """
        feedback.pushCommandInfo(shlex.join([python, *arguments]))

        def progress(percent: float, message: str) -> None:
            feedback.setProgress(start + percent * (100.0 - start) / 100.0)
            if message:
                feedback.setProgressText(message)

        def log(line: str) -> None:
            if not line.startswith("ERROR:"):  # the error is shown once, as the exception below
                feedback.pushConsoleInfo(line)

        try:
            return run_engine(python, arguments, progress=progress, cancel=feedback.isCanceled,
                              log=log, outputs=outputs)
        except EngineCancelled:
            raise
        except EngineError as exc:
            raise QgsProcessingException(for_qgis(str(exc))) from exc

    @staticmethod
    def report_cancelled(feedback: QgsProcessingFeedback) -> dict:
        """One neutral line for a cancelled run, and the empty result Processing expects."""
        feedback.pushInfo(CANCELLED_MESSAGE)
        return {}

    def style_on_load(self, path: str, classes: tuple[ClassInfo, ...], context: QgsProcessingContext) -> None:
        """Class colours for ``path`` if Processing is going to load it into the project."""
        if context.willLoadLayerOnCompletion(path):
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(ClassStylePostProcessor.create(classes))


def help_html(*paragraphs: str) -> str:
    """Help as paragraphs: QGIS turns every line break of a help string into a new line."""
    return "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)


def check_extension(path: str, extensions: tuple[str, ...], what: str) -> None:
    """The engine writes GeoTIFF and GeoPackage only: say so before it starts."""
    if not path.lower().endswith(extensions):
        raise QgsProcessingException(f"The {what} must be a {extensions[0]} file, not {Path(path).name}.")

