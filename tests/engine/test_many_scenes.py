# SPDX-License-Identifier: GPL-2.0-or-later
"""``segment`` with several inputs, a folder or a glob and --out-dir, in this process."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import rasterio

from dubai_segmenter.engine import segment
from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, main
from dubai_segmenter.engine.output_claim import claimed
from dubai_segmenter.engine.predictors import open_predictor
from dubai_segmenter.engine.segment import segment_raster
from tests.engine.rasters import write_raster
from tests.engine.test_distributed import save_conv_onnx


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_conv_onnx(tmp_path_factory.mktemp("model") / "conv.onnx")


@pytest.fixture
def folder(tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    rng = np.random.default_rng(3)
    for name, shape in (("north", (3, 90, 120)), ("south", (3, 70, 50))):
        write_raster(scenes / f"{name}.tif", rng.integers(0, 256, shape, dtype=np.uint8))
    (scenes / "notes.txt").write_text("not a scene: ignored in a folder")
    return scenes


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_folder_becomes_one_output_per_scene_equal_to_single_runs(folder, model, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, printed, err = run(capsys, "segment", folder, "--model", model, "--out-dir", out, "--progress", "none")
    assert code == EXIT_OK, err
    assert printed.count("Wrote ") == 2 and sorted(p.name for p in out.glob("*.tif")) == ["north.tif", "south.tif"]
    predictor = open_predictor(model)
    for name in ("north", "south"):
        reference = segment_raster(folder / f"{name}.tif", predictor, tmp_path / f"{name}-single.tif").output_path
        with rasterio.open(out / f"{name}.tif") as got, rasterio.open(reference) as expected:
            np.testing.assert_array_equal(got.read(), expected.read())


def test_a_failed_scene_is_reported_and_the_others_are_written(folder, model, tmp_path, capsys):
    (folder / "broken.tif").write_text("not a raster")
    out = tmp_path / "out"
    out.mkdir()
    code, printed, err = run(capsys, "segment", f"{folder}/*.tif", "--model", model, "--out-dir", out)
    assert code == EXIT_FAILED
    assert f"FAILED {folder / 'broken.tif'}: " in err and "not a raster" in err
    errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
    assert errors == ["ERROR: 1 of 3 scenes failed (listed above)"]
    assert sorted(p.name for p in out.glob("*.tif")) == ["north.tif", "south.tif"]


@pytest.mark.parametrize("argv, message", [
    (["{folder}/north.tif", "{folder}/south.tif", "--out-raster", "{tmp}/o.tif"], "give --out-dir instead"),
    (["{folder}"], "give an output folder with --out-dir"),
    (["{folder}", "--out-dir", "{tmp}/missing"], "does not exist"),
    (["{tmp}/*.jp2", "--out-dir", "{tmp}"], "no file matches"),
    (["{folder}/north.tif"], "give the output with --out-raster"),
    (["{folder}", "--out-dir", "{tmp}", "--cluster", "remote"], "bad --cluster 'remote'"),
    (["{folder}", "--out-dir", "{tmp}", "--cluster", "local:1", "--backend", "tf"], "--backend tf does not apply"),
])
def test_bad_many_scene_requests_exit_2_in_one_line(folder, model, tmp_path, capsys, argv, message):
    argv = [a.format(folder=folder, tmp=tmp_path) for a in argv]
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run(capsys, "segment", *argv, "--model", model)
    assert code == EXIT_BAD_INPUT
    errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert sorted(tmp_path.rglob("*")) == before


def test_a_model_without_onnx_export_is_refused_for_a_cluster(folder, colour_model_file, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(capsys, "segment", folder, "--model", colour_model_file, "--out-dir", out,
                       "--cluster", "local:1")
    assert code == EXIT_BAD_INPUT
    errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and "export-onnx" in errors[0], err
    assert list(out.iterdir()) == []


def test_cancelled_midway_says_which_scenes_were_finished_and_kept(folder, model, tmp_path, capsys, monkeypatch):
    """Ctrl-C while the second scene runs: the first is complete and stays, the others are not written."""
    (folder / "west.tif").write_bytes((folder / "south.tif").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    real, started = segment.segment_raster, []

    def ctrl_c_at_the_second_scene(*args, **kwargs):
        started.append(args[0])
        if len(started) == 2:
            signal.raise_signal(signal.SIGINT)  # to the command's own handler, as a Ctrl-C
        return real(*args, **kwargs)

    monkeypatch.setattr(segment, "segment_raster", ctrl_c_at_the_second_scene)
    code, _, err = run(capsys, "segment", folder, "--model", model, "--out-dir", out, "--progress", "none")
    assert code == EXIT_CANCELLED and len(started) == 2
    assert err.strip().splitlines()[-1] == (
        f"ERROR: cancelled: 1 of 3 scenes finished and kept ({out / 'north.tif'}); the other 2 were not written")
    assert sorted(p.name for p in out.iterdir()) == ["north.tif", "north.tif.aux.xml"]
    with rasterio.open(out / "north.tif") as written:  # complete: every pixel classified
        assert written.read(1).max() < 255


def test_an_output_another_run_is_writing_is_refused_before_any_scene_runs(folder, model, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with claimed([out / "south.tif"]):  # as a live run writing it holds it
        code, _, err = run(capsys, "segment", folder, "--model", model, "--out-dir", out)
        assert sorted(p.name for p in out.iterdir()) == [".south.tif.claim"]
    assert code == EXIT_BAD_INPUT
    assert err.strip().splitlines() == [
        f"ERROR: output {out / 'south.tif'} is being written by another dubai_segmenter run (process {os.getpid()}); "
        "wait for it to finish or cancel it, or choose another output path"]
