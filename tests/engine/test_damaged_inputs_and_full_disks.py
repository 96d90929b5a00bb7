# SPDX-License-Identifier: GPL-2.0-or-later
"""Damaged rasters and full disks: one plain sentence, the right exit code, nothing left behind,
and a traceback only when asked for (--debug or DUBAI_SEGMENTER_DEBUG)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, EXIT_FAILED, main
from tests.engine.rasters import block_classes, write_painted

ROOT = Path(__file__).resolve().parents[2]


def _tiled_scene(path: Path, size: int = 512) -> Path:
    return write_painted(path, block_classes(size, size, block=8), tiled=True, blockxsize=128, blockysize=128,
                         compress="deflate")


def _offset_and_size(path: Path, x: int, y: int) -> tuple[int, int]:
    from osgeo import gdal

    dataset = gdal.Open(str(path))  # kept: a band outlives its dataset only in newer GDAL
    band = dataset.GetRasterBand(1)
    offset = band.GetMetadataItem(f"BLOCK_OFFSET_{x}_{y}", "TIFF")
    return int(offset), int(band.GetMetadataItem(f"BLOCK_SIZE_{x}_{y}", "TIFF"))


def _run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_a_truncated_geotiff_is_refused_before_the_model_loads(tmp_path, colour_model_file, capsys):
    scene = _tiled_scene(tmp_path / "scene.tif")
    offset, _ = _offset_and_size(scene, 3, 3)  # the last block (pixel interleaved: all bands)
    data = scene.read_bytes()
    scene.write_bytes(data[: offset + 10])  # cut off in the middle of it
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run(capsys, "segment", scene, "--model", colour_model_file, "--out-raster", out / "c.tif")
    assert code == EXIT_BAD_INPUT
    assert err.splitlines() == [
        f"ERROR: {scene} is damaged or truncated: its data for rows 384-511, columns 384-511 lies beyond the end "
        f"of the file ({offset + 10:,} bytes); nothing was written. Copy or download it again"
    ], err
    assert "Traceback" not in err and list(out.iterdir()) == []


def test_a_corrupted_block_is_named_and_nothing_is_written(tmp_path, colour_model_file, capsys):
    scene = _tiled_scene(tmp_path / "scene.tif")
    offset, size = _offset_and_size(scene, 1, 2)
    with open(scene, "r+b") as f:  # same length, garbage inside one compressed block
        f.seek(offset)
        f.write(np.random.default_rng(0).bytes(size))
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run(capsys, "segment", scene, "--model", colour_model_file, "--out-raster", out / "c.tif",
                     "--out-vector", out / "p.gpkg")
    assert code == EXIT_BAD_INPUT, err
    line = err.splitlines()[-1]  # after the backend's line ("backend tf: ...")
    assert "Traceback" not in err and err.count("ERROR") == 1
    assert line.startswith(f"ERROR: {scene} is damaged: rows ") and "nothing was written" in line, line
    assert list(out.iterdir()) == []


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                          capture_output=True)
    return done.returncode == 0


needs_tmpfs = pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs user namespaces to mount a small tmpfs")


def _on_small_disk(folder: Path, size_kb: int, argv: list[str], env: dict | None = None) -> tuple[int, str, list[str]]:
    """Run the engine with ``folder`` on a fresh tmpfs of ``size_kb`` kB (private mount namespace).

    Returns the exit code, stderr, and what the tmpfs held after the run."""
    script = (
        f'mount -t tmpfs -o size={size_kb}k tmpfs "$0" || exit 99\n'
        '"$@"; code=$?\n'
        'echo "LISTING $(ls -A "$0" | tr "\\n" " ")" >&2\n'
        "exit $code\n"
    )
    done = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", script, str(folder), sys.executable, "-m",
         "dubai_segmenter", *map(str, argv)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    listing = lines[-1].split()[1:]
    return done.returncode, "\n".join(lines[:-1]), listing


@needs_tmpfs
def test_a_full_disk_while_writing_the_raster(tmp_path, colour_model_file):
    scene = write_painted(tmp_path / "scene.tif", block_classes(1500, 1500, block=2))
    disk = tmp_path / "disk"
    disk.mkdir()
    code, err, left = _on_small_disk(disk, 64, ["segment", scene, "--model", colour_model_file, "--out-raster",
                                                disk / "classes.tif", "--progress", "none"])
    assert code == EXIT_FAILED, err
    assert err.splitlines()[-1].startswith(f"ERROR: no space left on device while writing {disk / 'classes.tif'}")
    assert "Traceback" not in err and left == [], (err, left)


@needs_tmpfs
def test_a_full_disk_while_writing_polygons_with_and_without_debug(tmp_path, colour_model_file):
    classified = tmp_path / "classes.tif"
    scene = write_painted(tmp_path / "scene.tif", block_classes(400, 400, block=2))
    assert main(["segment", str(scene), "--model", str(colour_model_file), "--out-raster", str(classified)]) == 0
    disk = tmp_path / "disk"
    disk.mkdir()
    argv = ["vectorize", classified, "--out-vector", disk / "polygons.gpkg", "--classes", "building,road"]
    for debug_env, debug_flag in ((None, []), ({"DUBAI_SEGMENTER_DEBUG": "1"}, []), (None, ["--debug"])):
        code, err, left = _on_small_disk(disk, 200, argv + debug_flag, debug_env)
        assert code == EXIT_FAILED, err
        assert err.splitlines()[-1].startswith(
            f"ERROR: no space left on device while writing {disk / 'polygons.gpkg'}"), err
        assert ("Traceback" in err) == bool(debug_env or debug_flag), err
        assert left == [], left
