# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin loads in QGIS through classFactory and cleans up after itself."""
import subprocess
import sys

import pytest
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication, QEvent
from qgis.PyQt.QtWidgets import QToolBar

import dubai_segmenter

PROVIDER_ID = "dubai_segmenter"


def _toolbar(iface):
    return iface.mainWindow().findChild(QToolBar, "DubaiSegmenterToolbar")


@pytest.fixture()
def plugin(qgis_iface):
    plugin = dubai_segmenter.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    plugin.unload()


def test_init_gui_adds_toolbar_button_menu_entry_and_provider(plugin, qgis_iface):
    toolbar = _toolbar(qgis_iface)
    assert toolbar is not None
    assert plugin.action in toolbar.actions()
    assert not plugin.action.icon().isNull()
    qgis_iface.addPluginToRasterMenu.assert_any_call("Dubai Segmenter", plugin.action)
    provider = QgsApplication.processingRegistry().providerById(PROVIDER_ID)
    assert provider is not None
    assert provider.name() == "Dubai segmenter"


def test_toolbar_button_opens_and_closes_the_dock(plugin):
    plugin.action.trigger()
    assert plugin.dock is not None and not plugin.dock.isHidden()
    plugin.action.trigger()
    assert plugin.dock.isHidden()


def test_unload_removes_everything(qgis_iface):
    plugin = dubai_segmenter.classFactory(qgis_iface)
    plugin.initGui()
    action = plugin.action
    plugin.action.trigger()
    plugin.unload()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    assert QgsApplication.processingRegistry().providerById(PROVIDER_ID) is None
    qgis_iface.removePluginRasterMenu.assert_any_call("Dubai Segmenter", action)
    assert _toolbar(qgis_iface) is None
    assert plugin.dock is None and plugin.action is None


def test_importing_the_plugin_does_not_import_tensorflow():
    code = (
        "import sys, dubai_segmenter, dubai_segmenter.plugin;"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
