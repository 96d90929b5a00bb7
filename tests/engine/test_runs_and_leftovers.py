# SPDX-License-Identifier: GPL-2.0-or-later
"""Concurrent and killed runs: one writer per output, leftovers of dead writers removed by the
next run, a live run's files never touched, and the plugin's clean-up after a SIGKILL in every
phase removing exactly the killed engine's files (its real temporary names, the GeoPackage's
and the --resolution scratch folder included)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dubai_segmenter.child_process import runner
from dubai_segmenter.child_process.runner import EngineError, run_engine
from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from dubai_segmenter.engine.errors import OutputBusyError
from dubai_segmenter.engine.output_claim import claim_path, claimed
from dubai_segmenter.engine.temporary_names import owner_of, temporary_path
from tests.engine.rasters import block_classes, write_painted

ROOT = Path(__file__).resolve().parents[2]


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def tall_scene(tmp_path_factory) -> Path:
    """2048 x 200 pixels: 172 tiles of the colour model and 4 blocks of rows to vectorize."""
    return write_painted(tmp_path_factory.mktemp("scene") / "tall.tif", block_classes(2048, 200, block=16))


def test_temporary_names_tell_whose_they_are(tmp_path):
    final = tmp_path / "classes.tif"
    made = temporary_path(final, pid=4242)
    assert made.parent == tmp_path and made.name.startswith(".classes.tif.partial-4242-")
    for name in (made.name, made.name + ".aux.xml", temporary_path(final, ".d", pid=4242).name):
        assert owner_of(tmp_path / name, final) == 4242, name
    gpkg = tmp_path / "polygons.gpkg"
    pid_4242 = (".polygons.partial-4242.gpkg", ".polygons.partial-4242.gpkg-wal",
                temporary_path(gpkg, ".gpkg", pid=4242).name)
    for name in pid_4242:
        assert owner_of(tmp_path / name, gpkg) == 4242, name
    for name in ("classes.tif", ".classes.tif.claim", ".classes.tif.aux.xml", ".other.tif.partial-4242-ab",
                 "x.partial-1"):
        assert owner_of(tmp_path / name, final) is None, name


def test_a_claim_is_exclusive_and_names_its_holder(tmp_path):
    out = tmp_path / "classes.tif"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom dubai_segmenter.engine.output_claim import claimed\n"
         f"with claimed([{str(out)!r}]):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = rf"output {out} is being written by another .* \(process {holder.pid}\)"
        with pytest.raises(OutputBusyError, match=busy), claimed([out]):
            pass
    finally:
        holder.kill()
        holder.wait()
    with claimed([out]):  # the kernel dropped the dead holder's lock
        assert claim_path(out).exists()
    assert not claim_path(out).exists()


def test_second_run_refused_live_files_kept_dead_leftovers_removed(tmp_path, tall_scene, colour_model_file, capsys):
    out = tmp_path / "out"
    out.mkdir()
    classes = out / "classes.tif"
    first = subprocess.Popen(
        [sys.executable, "-m", "dubai_segmenter", "segment", str(tall_scene), "--model", str(colour_model_file),
         "--out-raster", str(classes), "--progress", "lines"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        for line in first.stdout:
            if line.startswith("PROGRESS") and "tile" in line:
                first.send_signal(signal.SIGSTOP)  # a live run, frozen mid-write
                break
        live = _listing(out)
        assert any(owner_of(out / name, classes) == first.pid for name in live), live
        # A second run into the same output is refused, naming the live run; nothing of it changes.
        code = main(["segment", str(tall_scene), "--model", str(colour_model_file), "--out-raster", str(classes)])
        err = capsys.readouterr().err
        assert code == EXIT_BAD_INPUT and f"(process {first.pid})" in err and err.count("\n") == 1, err
        assert _listing(out) == live
        # A run into another output of the same folder works and leaves the live run's files alone.
        other = ["segment", str(tall_scene), "--model", str(colour_model_file), "--out-raster", str(out / "other.tif")]
        assert main(other) == EXIT_OK
        assert set(live) <= set(_listing(out))
    finally:
        first.kill()  # SIGKILL: no clean-up of its own, like a power cut
        first.wait()
    assert any(owner_of(out / name, classes) == first.pid for name in _listing(out))  # its leftovers
    again = ["segment", str(tall_scene), "--model", str(colour_model_file), "--out-raster", str(classes)]
    assert main(again) == EXIT_OK
    assert _listing(out) == ["classes.tif", "classes.tif.aux.xml", "other.tif", "other.tif.aux.xml"]


PHASES = {  # phase: (progress message that starts it, extra arguments)
    "loading the model": ("loading the model", []),
    "tiles": ("tile ", []),
    "overviews": ("writing overviews", []),
    "resampling": ("resampling classes", ["--resolution", "0.45"]),
    "vectorizing": ("vectorized rows", []),
}


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_the_plugin_removes_exactly_the_killed_engines_files(
    tmp_path, tall_scene, colour_model_file, monkeypatch, phase,
):
    message, extra = PHASES[phase]
    out = tmp_path / "out"
    out.mkdir()
    older = phase in ("loading the model", "tiles", "resampling")  # killed before it publishes
    if older:
        (out / "classes.tif").write_text("an older result: the run replaces it only when complete")
    (out / "notes.txt").write_text("not ours")
    live = temporary_path(out / "polygons.gpkg", ".gpkg")  # another live run's (this pytest's pid)
    live.write_text("a live run's temporary")
    before = _listing(out)
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(runner.subprocess, "Popen", popen)
    at_kill: list[str] = []

    def progress(percent: float, text: str) -> None:
        if text.startswith(message) and not at_kill:
            os.kill(started[0].pid, signal.SIGSTOP)
            at_kill.extend(_listing(out))
            os.kill(started[0].pid, signal.SIGKILL)

    arguments = ["-m", "dubai_segmenter", "segment", str(tall_scene), "--model", str(colour_model_file),
                 "--out-raster", str(out / "classes.tif"), "--out-vector", str(out / "polygons.gpkg"),
                 "--progress", "lines", "--tile", "32", "--overlap", "8", *extra]
    with pytest.raises(EngineError, match="killed by signal 9"):
        run_engine(sys.executable, arguments, progress=progress, outputs=[out / "classes.tif", out / "polygons.gpkg"])
    pid = started[0].pid
    assert _listing(out) == before, (at_kill, _listing(out))
    if older:
        assert (out / "classes.tif").read_text().startswith("an older result")
    assert ".classes.tif.claim" in at_kill  # it was killed holding its claims ...
    own = [name for name in at_kill if str(pid) in name]
    if phase == "resampling":  # ... with its scratch folder
        assert any(name.endswith(".d") for name in own), at_kill
    if phase == "vectorizing":  # ... with its GeoPackage temporary, after publishing its raster
        assert any(".gpkg" in name for name in own), at_kill
    if phase == "tiles":
        assert any(owner_of(out / name, out / "classes.tif") == pid for name in own), at_kill
