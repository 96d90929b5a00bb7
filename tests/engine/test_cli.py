# SPDX-License-Identifier: GPL-2.0-or-later
"""The command line: success path, every bad-input error with exit code 2, cancel by signal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_OK, build_parser, main
from tests.engine.rasters import block_classes, write_painted, write_raster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scene(tmp_path):
    truth = block_classes(150, 120)
    return truth, write_painted(tmp_path / "scene.tif", truth)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_segment_writes_raster_and_polygons_with_progress_lines(tmp_path, scene, colour_model_file, capsys):
    truth, source = scene
    code, out, err = run(
        capsys, "segment", source, "--model", colour_model_file, "--out-raster", tmp_path / "classes.tif",
        "--out-vector", tmp_path / "polygons.gpkg", "--classes", "building,water", "--tile", "32",
        "--overlap", "8", "--batch", "2", "--confidence", "--progress", "lines",
    )
    assert code == EXIT_OK, err
    with rasterio.open(tmp_path / "classes.tif") as dataset:
        np.testing.assert_array_equal(dataset.read(1), truth)
        assert dataset.count == 2
    assert (tmp_path / "polygons.gpkg").is_file()
    percents = [float(line.split()[1]) for line in out.splitlines() if line.startswith("PROGRESS ")]
    assert percents == sorted(percents) and percents[-1] == 100.0 and len(percents) > 3
    assert "Wrote" in out and "polygons" in out
    assert "backend tf" in err  # the choice of backend is shown


def test_info_prints_metadata_and_json(colour_model_file, capsys):
    code, out, _ = run(capsys, "info", colour_model_file)
    assert code == EXIT_OK and "pixel_linear" in out and "Building" in out
    code, out, _ = run(capsys, "info", colour_model_file, "--json")
    assert code == EXIT_OK and json.loads(out)["tile_size"] == 64


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--out-raster", "--out-vector", "--classes", "--tile", "--overlap", "--batch",
                   "--bands", "--resolution", "--min-area", "--simplify", "--confidence", "--backend", "--progress"):
        assert option in text
    parser = build_parser()
    commands = next(a for a in parser._actions if a.choices and "segment" in a.choices).choices
    for name, command in commands.items():
        for action in command._actions:
            assert action.help and len(action.help) > 15, f"{name} {action.option_strings or action.dest}"


BAD_INPUT = {
    "missing input": (["segment", "{tmp}/nothing.tif"], "not found"),
    "not a raster": (["segment", "{tmp}/notes.txt"], "not a raster"),
    "no CRS": (["segment", "{tmp}/nocrs.tif"], "coordinate reference system"),
    "bad band list": (["segment", "{scene}", "--bands", "1,2"], "needs 3 bands"),
    "band out of range": (["segment", "{scene}", "--bands", "1,2,7"], "band 7 does not exist"),
    "band list not numbers": (["segment", "{scene}", "--bands", "r,g,b"], "bad band list"),
    "unwritable output": (["segment", "{scene}", "--out-raster", "{locked}/out.tif"], "cannot write"),
    "missing output folder": (["segment", "{scene}", "--out-raster", "{tmp}/no/such/out.tif"], "does not exist"),
    "output is the input": (["segment", "{scene}", "--out-raster", "{scene}"], "input"),
    "not a model": (["segment", "{scene}", "--model", "{tmp}/notes.txt"], "not a dubai_segmenter model"),
    "model wants more bands": (["segment", "{tmp}/grey.tif"], "--bands 1,1,1"),
    "tile size not positive": (["segment", "{scene}", "--tile", "0"], "positive"),
    "tile size the model cannot run": (["segment", "{scene}", "--model", "{small}", "--tile", "30"], "multiple of 4"),
    "overlap too big": (["segment", "{scene}", "--overlap", "40"], "overlap"),
    "unknown class": (["segment", "{scene}", "--out-vector", "{tmp}/p.gpkg", "--classes", "castle"], "castle"),
    "vector options without vector output": (["segment", "{scene}", "--min-area", "5"], "--out-vector"),
    "vector output not a GeoPackage": (["segment", "{scene}", "--out-vector", "{tmp}/p.shp"], ".gpkg"),
    "missing model for info": (["info", "{tmp}/none.safetensors"], "not found"),
    "unknown command": (["paint"], "invalid choice"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_exits_2_with_one_error_line_and_no_output(
    case, tmp_path, scene, colour_model_file, small_unet_model_file, capsys
):
    _, source = scene
    (tmp_path / "notes.txt").write_text("hello")
    write_painted(tmp_path / "nocrs.tif", block_classes(40, 40), crs=None)
    write_raster(tmp_path / "grey.tif", np.zeros((1, 40, 40), np.uint8))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    argv, message = BAD_INPUT[case]
    # root may write into a mode-500 folder; nobody may create files in /sys.
    unwritable = "/sys" if os.geteuid() == 0 else locked
    argv = [a.format(tmp=tmp_path, scene=source, small=small_unet_model_file, locked=unwritable) for a in argv]
    if argv[0] == "segment":
        if "--model" not in argv:
            argv += ["--model", str(colour_model_file)]
        if "--out-raster" not in argv:
            argv += ["--out-raster", str(tmp_path / "out.tif")]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    try:
        code, _, err = run(capsys, *argv)
    except SystemExit as exit_info:  # argparse usage errors
        code, err = exit_info.code, capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_sigterm_cancels_at_the_next_tile_and_leaves_no_output(tmp_path, colour_model_file):
    source = write_painted(tmp_path / "big.tif", block_classes(2000, 2000))
    before = sorted(os.listdir(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "dubai_segmenter", "segment", str(source), "--model", str(colour_model_file),
         "--out-raster", str(tmp_path / "out.tif"), "--out-vector", str(tmp_path / "out.gpkg"),
         "--progress", "lines"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in process.stdout:
        if line.startswith("PROGRESS") and "tile" in line:
            process.send_signal(signal.SIGTERM)
            break
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_CANCELLED, err
    assert err.strip().splitlines()[-1].startswith("ERROR: cancelled")
    assert sorted(os.listdir(tmp_path)) == before


def test_export_onnx_then_segment_with_the_export(tmp_path, scene, colour_model_file, capsys):
    truth, source = scene
    code, out, err = run(capsys, "export-onnx", colour_model_file, tmp_path / "colour.onnx")
    assert code == EXIT_OK, err
    code, out, err = run(
        capsys, "segment", source, "--model", tmp_path / "colour.onnx", "--out-raster", tmp_path / "classes.tif"
    )
    assert code == EXIT_OK, err
    assert "backend onnx" in err
    with rasterio.open(tmp_path / "classes.tif") as dataset:
        np.testing.assert_array_equal(dataset.read(1), truth)
    code, _, err = run(capsys, "export-onnx", colour_model_file, tmp_path / "colour.txt")
    assert code == EXIT_BAD_INPUT and "ERROR: " in err and ".onnx" in err
