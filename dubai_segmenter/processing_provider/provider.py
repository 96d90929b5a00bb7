"""The "Dubai segmenter" Processing provider.

Registering a provider is what makes the algorithms available in the toolbox, the batch
interface, the graphical modeler and qgis_process all at once. The example graphical
models shipped in ``graphical_models/`` are loaded as algorithms of the provider too.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsMessageLog, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

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

    def longName(self) -> str:  # noqa: N802 - QGIS API
        return "Dubai segmenter: land-cover segmentation of aerial imagery"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API
        for algorithm in (SegmentRasterAlgorithm(), SegmentAndVectorizeAlgorithm(), VectorizeClassesAlgorithm()):
            self.addAlgorithm(algorithm)
        for path in sorted(GRAPHICAL_MODELS_DIR.glob("*.model3")):
            model = QgsProcessingModelAlgorithm()
            if model.fromFile(str(path)):
                self.addAlgorithm(model)
            else:
                QgsMessageLog.logMessage(f"Cannot read the example model {path}", self.name())

    # The engine writes GeoTIFF and GeoPackage files only: offer nothing else, so a
    # temporary output is always a file the child process can write.
    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802 - QGIS API
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:  # noqa: N802 - QGIS API
        return ["gpkg"]

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # noqa: N802,N803 - QGIS API
        return "gpkg"

    def defaultRasterFileExtension(self) -> str:  # noqa: N802 - QGIS API
        return "tif"

    def supportsNonFileBasedOutput(self) -> bool:  # noqa: N802 - QGIS API
        return False
