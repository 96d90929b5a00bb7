# SPDX-License-Identifier: GPL-2.0-or-later
"""The QGIS side of the plugin: toolbar button, Raster menu entry, Processing provider.

Kept thin on purpose: the work is done by the engine in a child process, so nothing
here imports TensorFlow (see ``engine/system_sqlite.py`` on the crash it causes inside QGIS).
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .processing_provider.provider import DubaiSegmenterProvider
from .ui.dock import SegmenterDock

PLUGIN_NAME = "Dubai Segmenter"
ICON_PATH = Path(__file__).parent / "icons" / "icon.png"


class DubaiSegmenterPlugin:
    """Registers the plugin's entry points with QGIS and removes them on unload."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: DubaiSegmenterProvider | None = None
        self.action: QAction | None = None
        self.toolbar = None
        self.dock: SegmenterDock | None = None

    def initProcessing(self) -> None:
        """Register the Processing provider (also called by qgis_process without a GUI)."""
        self.provider = DubaiSegmenterProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()
        self.action = QAction(QIcon(str(ICON_PATH)), "Segment land cover…", self.iface.mainWindow())
        self.action.setObjectName("dubaiSegmenterAction")
        self.action.setToolTip("Open the Dubai Segmenter panel: classify a raster into land cover")
        self.action.setCheckable(True)
        self.action.toggled.connect(self._show_dock)
        # A toolbar of our own, so analysts can move or hide it like any QGIS toolbar.
        self.toolbar = self.iface.addToolBar(PLUGIN_NAME)
        self.toolbar.setObjectName("DubaiSegmenterToolbar")
        self.toolbar.addAction(self.action)
        self.iface.addPluginToRasterMenu(PLUGIN_NAME, self.action)

    def unload(self) -> None:
        if self.dock is not None:
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removePluginRasterMenu(PLUGIN_NAME, self.action)
            if self.toolbar is not None:
                self.toolbar.removeAction(self.action)
            self.action.deleteLater()
            self.action = None
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def _show_dock(self, visible: bool) -> None:
        if self.dock is None:
            self.dock = SegmenterDock(self.iface, parent=self.iface.mainWindow())
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
            # Closing the dock with its own button must untick the toolbar button.
            self.dock.visibilityChanged.connect(self.action.setChecked)
        self.dock.setVisible(visible)
