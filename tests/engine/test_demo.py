# SPDX-License-Identifier: GPL-2.0-or-later
"""``make demo``: the sample scene segmented into three outputs, and a clear way out without a model."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import pytest
import rasterio
from osgeo import ogr
from rasterio.crs import CRS

import tools.demo as demo
from tools.make_sample_scene import OUTPUT as SAMPLE_SCENE


def test_sample_scene_is_small_georeferenced_rgb_and_documented() -> None:
    assert SAMPLE_SCENE.stat().st_size < 1_000_000
    with rasterio.open(SAMPLE_SCENE) as sample:
        assert sample.count == 3 and sample.dtypes == ("uint8",) * 3
        assert sample.crs == CRS.from_epsg(32640)
        assert sample.tags()["GEOREFERENCE"] == "made up for demonstration"
        source_sha256 = sample.tags()["SOURCE_SHA256"]
    notes = (SAMPLE_SCENE.parent / "SAMPLE.md").read_text()
    assert source_sha256 in notes and "MADE UP" in notes and "CC0" in notes


def test_demo_writes_raster_polygons_and_preview_on_the_sample_grid(
    small_unet_model_file: Path, tmp_path: Path,
) -> None:
    result = demo.run_demo(small_unet_model_file, output_dir=tmp_path, tile_size=256)

    assert {result.raster.parent, result.vector.parent, result.preview.parent} == {tmp_path}
    with rasterio.open(SAMPLE_SCENE) as sample, rasterio.open(result.raster) as classified:
        assert classified.crs == sample.crs
        assert classified.transform == sample.transform
        assert (classified.width, classified.height) == (sample.width, sample.height)
    dataset = ogr.Open(str(result.vector))
    layer = dataset.GetLayer(0)
    assert CRS.from_wkt(layer.GetSpatialRef().ExportToWkt()) == CRS.from_epsg(32640)
    names = {feature["class_name"] for feature in layer}
    assert names <= {"Building", "Road", "Water"}
    assert layer.GetFeatureCount() == sum(result.polygon_counts.values())
    dataset = None
    preview = cv2.imread(str(result.preview))
    assert preview is not None and preview.shape[1] > preview.shape[0] > 300  # two panels side by side
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_default_model_is_the_newest_valid_model_file(small_unet_model_file: Path, tmp_path: Path) -> None:
    older, newer = tmp_path / "a" / "older.safetensors", tmp_path / "b" / "runs" / "newer.safetensors"
    for index, path in enumerate((older, newer)):
        path.parent.mkdir(parents=True)
        shutil.copy(small_unet_model_file, path)
        os.utime(path, (1_000_000 + index, 1_000_000 + index))
    junk = tmp_path / "a" / "not_a_model.safetensors"
    junk.write_bytes(b"\x00" * 64)  # newest of all, but not a model file
    assert demo.find_default_model((tmp_path / "a", tmp_path / "b", tmp_path / "missing")) == newer


def test_without_a_model_it_says_where_it_looked_and_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folders = (tmp_path / "models", tmp_path / "shared" / "models")
    folders[0].mkdir()
    monkeypatch.setattr(demo, "MODEL_FOLDERS", folders)
    monkeypatch.delenv("MODEL", raising=False)

    assert demo.main(["--output-dir", str(tmp_path / "out")]) == demo.EXIT_NO_MODEL
    message = capsys.readouterr().err
    assert str(folders[0]) in message and f"{folders[1]} (does not exist)" in message
    assert "MODEL=" in message and "make train" in message
    assert not (tmp_path / "out").exists()


def test_a_model_that_is_not_a_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "model.safetensors"
    fake.write_text("not a model")
    monkeypatch.setenv("MODEL", str(fake))
    assert demo.main(["--output-dir", str(tmp_path / "out")]) == demo.EXIT_NO_MODEL
    assert f"MODEL={fake} is not a usable model file" in capsys.readouterr().err
