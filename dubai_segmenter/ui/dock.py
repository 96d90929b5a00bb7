"""The plugin's dock panel, opened by the toolbar button and the Raster menu entry."""
from __future__ import annotations

from qgis.gui import QgsDockWidget
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget


class SegmenterDock(QgsDockWidget):
    """Panel from which an analyst runs a segmentation on a raster layer."""

    def __init__(self, iface, parent=None) -> None:
        super().__init__("Dubai Segmenter", parent)
        self.setObjectName("DubaiSegmenterDock")
        self.iface = iface
        body = QWidget(self)
        layout = QVBoxLayout(body)
        intro = QLabel(
            "Classifies a raster into building, land, road, vegetation, water and "
            "unlabeled, and draws polygons of buildings, roads and water."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addStretch(1)
        self.setWidget(body)
