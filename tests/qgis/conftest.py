# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for the QGIS tier: a model with a known answer, painted rasters, the provider.

The colour model (tests/engine/helpers.py) classifies a raster painted in the class
colours exactly, so every output pixel can be compared with the ids that were painted.
It is built in a child process: building it imports TensorFlow, which this QGIS process
must not load (that is the point of the plugin's design).
"""
from __future__ import annotations

import os
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication

from dubai_segmenter.child_process.interpreter import ENV_VAR, resolve_interpreter
from dubai_segmenter.processing_provider.engine_python import SETTING_PYTHON
from dubai_segmenter.processing_provider.provider import DubaiSegmenterProvider
from tests.engine.helpers import paint
from tools.package_plugin import build_zip

REPO = Path(__file__).resolve().parents[2]
ORIGIN = (300_000.0, 2_780_000.0)  # UTM 40N, Dubai
PIXEL = 0.5


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory) -> Path:
    """The engine tests' colour model file (tile 64, overlap 16), built by the engine's Python."""
    path = tmp_path_factory.mktemp("models") / "colour.safetensors"
    code = "import sys; from pathlib import Path; from tests.engine.helpers import save_colour_model; " \
           "save_colour_model(Path(sys.argv[1]))"
    python = resolve_interpreter(None, {}).path
    subprocess.run([python, "-c", code, str(path)], cwd=REPO, check=True, capture_output=True, timeout=300)
    return path


@pytest.fixture(scope="session")
def class_models(tmp_path_factory) -> Callable[[int], Path]:
    """``class_models(n)``: a tiny nearest-colour model of n other classes (tests/qgis/class_models.py)."""
    folder = tmp_path_factory.mktemp("class_models")
    python = resolve_interpreter(None, {}).path

    def build(count: int) -> Path:
        path = folder / f"classes{count}.safetensors"
        if not path.exists():
            subprocess.run([python, "-m", "tests.qgis.class_models", str(path), str(count)], cwd=REPO, check=True,
                           capture_output=True, timeout=300)
        return path

    return build


def scene_ids(height: int = 96, width: int = 128) -> np.ndarray:
    """A small scene: land with a road, two buildings, water and vegetation (ids 0..4)."""
    ids = np.full((height, width), 1, dtype=np.uint8)  # land
    ids[40:52, :] = 2  # a road across
    ids[8:30, 10:40] = 0  # building
    ids[60:90, 70:110] = 0  # building
    ids[60:90, 5:50] = 4  # water
    ids[8:30, 80:120] = 3  # vegetation
    return ids


def write_painted_raster(path: Path, class_ids: np.ndarray, epsg: int = 32640,
                         origin: tuple[float, float] = ORIGIN, pixel: float = PIXEL, image=None) -> Path:
    """An RGB GeoTIFF painted in the class colours of ``class_ids`` (or the given ``image``)."""
    image = paint(class_ids) if image is None else image
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), image.shape[1], image.shape[0], 3, gdal.GDT_Byte)
    dataset.SetGeoTransform((origin[0], pixel, 0.0, origin[1], 0.0, -pixel))
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(epsg)
    dataset.SetProjection(reference.ExportToWkt())
    for band in range(3):
        dataset.GetRasterBand(band + 1).WriteArray(image[:, :, band])
    dataset = None
    return path


def read_band(path) -> np.ndarray:
    dataset = gdal.Open(str(path))  # kept referenced: a band of a freed dataset crashes GDAL
    return dataset.GetRasterBand(1).ReadAsArray()


@pytest.fixture(scope="module")
def provider(qgis_processing):
    """The plugin's provider, registered for one test module (the plugin-load tests need it absent)."""
    registry = QgsApplication.processingRegistry()
    provider = DubaiSegmenterProvider()
    assert registry.addProvider(provider)
    yield provider
    registry.removeProvider(provider)


@pytest.fixture(autouse=True)
def default_interpreter():
    """Every test starts with no interpreter chosen in the settings (the checkout's .venv)."""
    QgsSettings().remove(SETTING_PYTHON)
    yield
    QgsSettings().remove(SETTING_PYTHON)


def wait_until(condition: Callable[[], bool], timeout: float = 180.0) -> None:
    """Process Qt events until ``condition()`` holds (tasks report back through the event loop)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        QCoreApplication.processEvents()
        time.sleep(0.02)


def child_processes_writing(path: Path) -> list[int]:
    """Pids of live processes whose command line mentions ``path`` (a leaked engine)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(path).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


#: Debian's /usr/bin/qgis_process wrapper passes an option 3.22 rejects (README, "Command line").
QGIS_PROCESS = "/usr/bin/qgis_process.bin"



@pytest.fixture(scope="module")
def qgis_process(tmp_path_factory):
    """Run qgis_process with the packaged plugin enabled in a fresh profile."""
    # Never a skip: `make setup` installs QGIS (Debian package qgis), so a missing runner is a broken setup.
    assert os.path.exists(QGIS_PROCESS), f"{QGIS_PROCESS} is missing: run `make setup` (it installs Debian's qgis)"
    root = tmp_path_factory.mktemp("qgis_process")
    plugins = root / "plugins"
    with zipfile.ZipFile(build_zip(root / "dubai_segmenter.zip")) as archive:
        archive.extractall(plugins)
    env = dict(os.environ, HOME=str(root / "home"), QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen")
    for inherited in ("QGIS_CUSTOM_CONFIG_PATH", "QGIS_OPTIONS_PATH"):  # pytest-qgis's profile, not a fresh one
        env.pop(inherited, None)
    # The unpacked plugin is not in a checkout, so it is told which Python runs the engine.
    env[ENV_VAR] = resolve_interpreter(None, {}).path

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=300)

    enabled = run("plugins", "enable", "dubai_segmenter")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    run.env, run.plugins = env, plugins  # for tests that run other programs in the same fresh profile
    return run
