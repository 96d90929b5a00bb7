# SPDX-License-Identifier: GPL-2.0-or-later
"""The "Dubai segmenter" Processing provider.

Registering a provider is what makes the algorithms available in the toolbox, the batch
interface, the graphical modeler and qgis_process all at once. The example graphical
models shipped in ``graphical_models/`` are loaded as algorithms of the provider too.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from qgis.core import QgsApplication, QgsMessageLog, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..engine.contract import POLYGON_SUFFIX, RASTER_SUFFIXES
from .segment_algorithms import SegmentAndVectorizeAlgorithm, SegmentRasterAlgorithm
from .vectorize_algorithm import VectorizeClassesAlgorithm

ICON_PATH = Path(__file__).parent.parent / "icons" / "icon.png"
GRAPHICAL_MODELS_DIR = Path(__file__).parent / "graphical_models"


class DubaiSegmenterProvider(QgsProcessingProvider):
    """Holds the plugin's algorithms."""

    def id(self) -> str:
        return "dubai_segmenter"

    def name(self) -> str:
        return "Dubai segmenter"

    def longName(self) -> str:
        return "Dubai segmenter: land-cover segmentation of aerial imagery"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def load(self) -> bool:
        # The registry loads a provider's algorithms before it lists the provider, so the
        # example models cannot find their child algorithms (ours) yet: they are added
        # once the provider is registered. Until then they would have no outputs.
        QgsApplication.processingRegistry().providerAdded.connect(self._provider_added)
        return super().load()

    def unload(self) -> None:
        with contextlib.suppress(TypeError):  # already disconnected
            QgsApplication.processingRegistry().providerAdded.disconnect(self._provider_added)
        super().unload()

    def _provider_added(self, provider_id: str) -> None:
        if provider_id == self.id():
            QgsApplication.processingRegistry().providerAdded.disconnect(self._provider_added)
            self.refreshAlgorithms()

    def loadAlgorithms(self) -> None:
        for algorithm in (SegmentRasterAlgorithm(), SegmentAndVectorizeAlgorithm(), VectorizeClassesAlgorithm()):
            self.addAlgorithm(algorithm)
        if QgsApplication.processingRegistry().providerById(self.id()) is not self:
            return
        for path in sorted(GRAPHICAL_MODELS_DIR.glob("*.model3")):
            model = QgsProcessingModelAlgorithm()
            if model.fromFile(str(path)):
                self.addAlgorithm(model)
            else:
                QgsMessageLog.logMessage(f"Cannot read the example model {path}", self.name())

    # The engine writes GeoTIFF and GeoPackage files only: offer nothing else, so a
    # temporary output is always a file the child process can write.
    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return [RASTER_SUFFIXES[0].lstrip(".")]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return [POLYGON_SUFFIX.lstrip(".")]

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:
        return POLYGON_SUFFIX.lstrip(".")

    def defaultRasterFileExtension(self) -> str:
        return RASTER_SUFFIXES[0].lstrip(".")

    def supportsNonFileBasedOutput(self) -> bool:
        return False
