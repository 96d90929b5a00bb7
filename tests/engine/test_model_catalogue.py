# SPDX-License-Identifier: GPL-2.0-or-later
"""The model catalogue and ``models list|get`` with urllib, against a server on 127.0.0.1.

Success, hash mismatch, 404, a connection dropped half way, cancel (callback and SIGINT):
a failed download leaves nothing in the model folder and says what happened in one line.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from dubai_segmenter.engine import model_catalogue as mc
from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, main
from dubai_segmenter.engine.errors import DownloadCancelled, DownloadError
from dubai_segmenter.engine.model_store import MODELS_ENV, installed_models, resolve_model
from tests.engine.rasters import block_classes, write_painted
from tests.model_server import ModelServer
from tools.mirror_catalogue import build_mirror

ROOT = Path(__file__).resolve().parents[2]
NAME = "colour-v1"


@pytest.fixture
def server(colour_model_file: Path):
    files = {f"{NAME}.safetensors": colour_model_file.read_bytes(), f"{NAME}.onnx": os.urandom(300_000)}
    with ModelServer(NAME, files, {f"{NAME}.safetensors": "safetensors", f"{NAME}.onnx": "onnx"}) as running:
        yield running


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shipped_catalogue_lists_the_tracked_release_with_its_hash_and_relative_urls() -> None:
    catalogue = mc.parse_catalogue(mc.SHIPPED_CATALOGUE.read_bytes(), "https://mirror.example/m/models.json")
    entry = catalogue.entry("dubai-native-v1")
    released = ROOT / "models" / "dubai-native-v1.safetensors"
    safetensors = entry.file("safetensors")
    assert safetensors.size == released.stat().st_size
    assert safetensors.sha256 == hashlib.sha256(released.read_bytes()).hexdigest()
    assert entry.file("onnx").url == "https://mirror.example/m/dubai-native-v1/dubai-native-v1.onnx"
    assert entry.tile_size == 512 and entry.licence == "CC0-1.0" and entry.metrics["iou"]["road"] > 0
    assert "No public server" in catalogue.note


def test_catalogue_location_setting_beats_environment_beats_shipped(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(mc.CATALOGUE_ENV, raising=False)
    assert mc.catalogue_location() == mc.SHIPPED_CATALOGUE.as_uri()
    monkeypatch.setenv(mc.CATALOGUE_ENV, "http://intranet.example/models.json")
    assert mc.catalogue_location() == "http://intranet.example/models.json"
    assert mc.catalogue_location(str(tmp_path / "c.json")) == (tmp_path / "c.json").as_uri()


def test_list_shows_metrics_size_and_what_is_installed(server, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    code, out, _ = run(capsys, "models", "list", "--catalogue", server.url)
    assert code == EXIT_OK
    assert f"{NAME}  (version 1, CC0-1.0; pixel accuracy 0.900, mean IoU 0.800;" in out and "not installed" in out


def test_get_installs_a_checked_file_that_segment_then_finds_by_name(server, capsys, tmp_path, monkeypatch,
                                                                       colour_model_file) -> None:
    folder = tmp_path / "models"
    monkeypatch.setenv(MODELS_ENV, str(folder))
    code, out, err = run(capsys, "models", "get", NAME, "--kind", "safetensors", "--catalogue", server.url)
    assert code == EXIT_OK, err
    assert sorted(p.name for p in folder.iterdir()) == [f"{NAME}.safetensors"]
    assert (folder / f"{NAME}.safetensors").read_bytes() == colour_model_file.read_bytes()
    assert "size and SHA-256 checked" in out
    # a second get finds it installed and downloads nothing
    before = len(server.requests)
    assert run(capsys, "models", "get", NAME, "--kind", "safetensors", "--catalogue", server.url)[0] == EXIT_OK
    assert server.requests[before:] == ["/models.json"]

    truth = block_classes(96, 80)
    source = write_painted(tmp_path / "scene.tif", truth)
    code, _, err = run(capsys, "segment", source, "--model", NAME, "--out-raster", tmp_path / "classes.tif")
    assert code == EXIT_OK, err
    with rasterio.open(tmp_path / "classes.tif") as dataset:
        np.testing.assert_array_equal(dataset.read(1), truth)


@pytest.mark.parametrize("behaviour, words", [
    ("corrupt", "SHA-256"),
    ("missing", "404"),
    ("drop", "dropped"),
])
def test_a_failed_download_leaves_nothing_and_says_why_in_one_line(server, capsys, tmp_path, behaviour, words) -> None:
    server.behaviour[f"{NAME}.onnx"] = behaviour
    code, _, err = run(capsys, "models", "get", NAME, "--dir", tmp_path, "--catalogue", server.url)
    assert code == EXIT_FAILED
    assert err.count("\n") == 2 and err.splitlines()[-1].startswith("ERROR: ") and words in err  # "Downloading" + error
    assert list(tmp_path.iterdir()) == []


def test_a_dropped_connection_is_caught_by_the_size_even_if_urllib_returns_short(server, tmp_path) -> None:
    server.behaviour[f"{NAME}.onnx"] = "drop"
    entry = mc.read_catalogue(server.url).entry(NAME)
    with pytest.raises(DownloadError, match=f"{NAME}.onnx"):
        mc.download(entry.file("onnx"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cancel_during_the_transfer_leaves_nothing(server, tmp_path) -> None:
    server.behaviour[f"{NAME}.onnx"] = "slow"
    entry = mc.read_catalogue(server.url).entry(NAME)
    seen = []
    with pytest.raises(DownloadCancelled):
        mc.download(entry.file("onnx"), tmp_path, progress=lambda done, total: seen.append(done),
                    cancel=lambda: len(seen) >= 3)
    assert seen and seen[-1] < entry.file("onnx").size
    assert list(tmp_path.iterdir()) == []


def test_sigint_cancels_get_with_exit_3_and_nothing_left(server, tmp_path) -> None:
    server.behaviour[f"{NAME}.onnx"] = "slow"  # 300 kB in 4 kB steps of 50 ms: about 4 s
    process = subprocess.Popen(
        [sys.executable, "-m", "dubai_segmenter", "models", "get", NAME, "--dir", str(tmp_path),
         "--catalogue", server.url],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_CANCELLED, err
    assert "cancelled; nothing was kept" in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_name_and_unreadable_catalogue_are_bad_input(server, capsys, tmp_path) -> None:
    code, _, err = run(capsys, "models", "get", "nope", "--dir", tmp_path, "--catalogue", server.url)
    assert code == EXIT_BAD_INPUT and f"has no model named 'nope' (it has: {NAME})" in err
    code, _, err = run(capsys, "models", "list", "--catalogue", server.url.replace("models.json", "other.json"))
    assert code == EXIT_BAD_INPUT and "404" in err


def test_model_store_names_newest_first_and_skips_partial_downloads(colour_model_file, tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "zone-v2").mkdir(parents=True)
    first.mkdir()
    (first / "colour-v1.safetensors").write_bytes(colour_model_file.read_bytes())
    (second / "zone-v2" / "model.safetensors").write_bytes(colour_model_file.read_bytes())
    (first / ".colour-v3.safetensors.123.part").write_bytes(colour_model_file.read_bytes())
    (first / "junk.safetensors").write_bytes(b"not a model")
    os.utime(first / "colour-v1.safetensors", (1_000_000, 1_000_000))
    models = installed_models([first, second])
    assert [m.name for m in models] == ["zone-v2", "colour-v1"]
    assert resolve_model("colour-v1", [first, second]) == first / "colour-v1.safetensors"
    with pytest.raises(FileNotFoundError, match="models get colour-v3"):
        resolve_model("colour-v3", [first, second])


def test_the_store_recognises_model_files_without_the_safetensors_package() -> None:
    from dubai_segmenter.engine import model_store
    from dubai_segmenter.engine.model_file import FORMAT_NAME

    assert model_store.MODEL_FORMAT == FORMAT_NAME
    probe = ("import sys, dubai_segmenter.engine.model_store as s; "
             "print('safetensors' in sys.modules, [m.name for m in s.installed_models([s.CHECKOUT_MODELS])])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split(" ", 1) == ["False", "['dubai-native-v1']\n"]


def test_mirror_folder_serves_a_catalogue_that_get_accepts(colour_model_file, tmp_path, capsys) -> None:
    content = colour_model_file.read_bytes()
    catalogue = tmp_path / "catalogue.json"
    from tests.model_server import catalogue_json

    catalogue.write_bytes(
        catalogue_json(NAME, {f"{NAME}.safetensors": content}, {f"{NAME}.safetensors": "safetensors"}))
    source = tmp_path / "found"
    source.mkdir()
    (source / "whatever-name.safetensors").write_bytes(content)
    mirror = tmp_path / "mirror"
    assert build_mirror(mirror, [source], catalogue) == []
    assert json.loads((mirror / "models.json").read_text())["models"][0]["name"] == NAME
    installed = tmp_path / "installed"
    code, _, err = run(capsys, "models", "get", NAME, "--kind", "all", "--dir", installed,
                       "--catalogue", str(mirror / "models.json"))
    assert code == EXIT_OK, err
    assert (installed / f"{NAME}.safetensors").read_bytes() == content
