"""The "Dubai segmenter" Processing provider.

Registering a provider is what makes the algorithms available in the toolbox, the batch
interface, the graphical modeler and qgis_process all at once.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON_PATH = Path(__file__).parent.parent / "icons" / "icon.png"


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
        """Algorithms are added here as the engine gains them."""
