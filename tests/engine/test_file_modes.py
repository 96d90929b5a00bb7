# SPDX-License-Identifier: GPL-2.0-or-later
"""Every file the engine writes gets the umask's mode (a colleague must be able to read a shared
model or result), not a private 0600 from a temporary file."""
from __future__ import annotations

import os
import stat

import pytest

from dubai_segmenter.engine.architectures import PIXEL_LINEAR, build_model
from dubai_segmenter.engine.cli import EXIT_OK, main
from dubai_segmenter.engine.model_file import save_model
from dubai_segmenter.engine.onnx_file import export_onnx
from tests.engine.helpers import colour_metadata
from tests.engine.rasters import block_classes, write_painted


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_every_file_the_engine_writes_follows_the_umask(tmp_path, umask, mask):
    scene = write_painted(tmp_path / "scene.tif", block_classes(80, 80))
    out = tmp_path / "out"
    out.mkdir()
    umask(mask)
    model = out / "model.safetensors"
    save_model(model, build_model(PIXEL_LINEAR, None, 6, 3, 32), colour_metadata(32, 8))
    export_onnx(model, out / "model.onnx")
    assert main(["segment", str(scene), "--model", str(model), "--out-raster", str(out / "classes.tif"),
                 "--out-vector", str(out / "polygons.gpkg"), "--resolution", "0.5", "--confidence"]) == EXIT_OK
    assert main(["vectorize", str(out / "classes.tif"), "--out-vector", str(out / "again.gpkg")]) == EXIT_OK
    written = sorted(p.name for p in out.iterdir())
    assert written == ["again.gpkg", "classes.tif", "classes.tif.aux.xml", "model.onnx", "model.safetensors",
                       "polygons.gpkg"]
    for name in written:
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == 0o666 & ~mask, f"{name}: {oct(mode)}"
