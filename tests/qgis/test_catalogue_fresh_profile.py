# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin installed from the zip, in a fresh profile, fetches a model from a catalogue and runs it by name.

A first-time user's path: the zip's plugin (not the checkout's), a fresh QGIS profile,
the catalogue set through ``DUBAI_SEGMENTER_CATALOGUE`` (an intranet mirror, here a server
on 127.0.0.1), the "Get model…" dialog's real ``QgsFileDownloader`` download into the
profile's model folder, then ``qgis_process`` segmenting with ``MODEL=<name>``: nobody
types a path to a model file.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.model_server import ModelServer
from tests.qgis.conftest import read_band, scene_ids, write_painted_raster

NAME = "colour-v1"
FILE = f"{NAME}.safetensors"

# Runs in a child QGIS (no pytest-qgis profile): the dialog of the unpacked zip, Download, wait.
DOWNLOAD_SCRIPT = """
import sys, time
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication
QCoreApplication.setOrganizationName("QGIS")  # as the desktop application does: profiles under QGIS/QGIS3
QCoreApplication.setApplicationName("QGIS3")
app = QgsApplication([], True)
app.initQgis()
sys.path.insert(0, sys.argv[1])
from dubai_segmenter.ui.model_catalogue_dialog import ModelCatalogueDialog
import dubai_segmenter
assert dubai_segmenter.__file__.startswith(sys.argv[1]), dubai_segmenter.__file__
dialog = ModelCatalogueDialog()
deadline = time.monotonic() + 30
while dialog.loading and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.02)
got = []
dialog.installed.connect(got.append)
dialog.download_button.click()
deadline = time.monotonic() + 60
while dialog.busy and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.02)
print("STATUS", dialog.status.text())
print("INSTALLED", got[0] if got else "")
"""


def test_a_catalogue_model_fetched_into_the_fresh_profile_runs_by_name(qgis_process, colour_model, tmp_path):
    with ModelServer(NAME, {FILE: colour_model.read_bytes()}, {FILE: "safetensors"}) as server:
        env = dict(qgis_process.env, DUBAI_SEGMENTER_CATALOGUE=server.url)
        fetched = subprocess.run([sys.executable, "-c", DOWNLOAD_SCRIPT, str(qgis_process.plugins)], env=env,
                                 capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stdout[-2000:] + fetched.stderr[-2000:]
    installed = Path(fetched.stdout.split("INSTALLED ")[1].strip())
    home = Path(env["HOME"])
    assert installed.name == FILE and home in installed.parents and "profiles" in installed.parts
    assert installed.read_bytes() == colour_model.read_bytes()

    scene = write_painted_raster(tmp_path / "scene.tif", scene_ids())
    result = qgis_process("run", "dubai_segmenter:segment_raster", "--", f"INPUT={scene}", f"MODEL={NAME}",
                          f"OUTPUT={tmp_path / 'classes.tif'}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    np.testing.assert_array_equal(read_band(tmp_path / "classes.tif"), scene_ids())
