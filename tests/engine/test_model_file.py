# SPDX-License-Identifier: GPL-2.0-or-later
"""Model files round-trip weights and metadata, and anything else is refused clearly."""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from dubai_segmenter.engine.architectures import PIXEL_LINEAR, UNET_SMALL, build_model
from dubai_segmenter.engine.classes import ClassInfo
from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.model_file import (
    ModelMetadata,
    describe_model,
    load_keras_model,
    load_weights,
    read_metadata,
    save_model,
)
from tests.engine.helpers import colour_metadata, run_without_tensorflow

MAX_MODEL_BYTES = 130_000_000


def _full_metadata() -> ModelMetadata:
    return colour_metadata(
        tile_size=96,
        overlap=24,
        architecture=UNET_SMALL,
        architecture_params={"filters": [4, 8], "bn_momentum": 0.8},
        classes=(ClassInfo(0, "Building", (60, 16, 152)), ClassInfo(1, "Bâtiment ombré", (1, 2, 3))),
        input_bands=4,
        input_scale=1 / 1023,
        resolution=0.5,
        provenance={"dataset": "hitl-dubai", "split": "parts 008-009", "metrics": {"miou": 0.61, "dice": 0.8}},
    )


def _fp16_rounded(model):
    return [np.asarray(w).astype(np.float16).astype(np.float32) for w in model.get_weights()]


def _rewrite_header(source: Path, target: Path, **header_changes) -> Path:
    """Copy a model file with changed header entries (None removes the entry)."""
    with safe_open(str(source), framework="numpy") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
        header = dict(f.metadata())
    for key, value in header_changes.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    save_file(tensors, str(target), metadata=header)
    return target


def test_metadata_round_trips_through_json_and_file(tmp_path):
    metadata = _full_metadata()
    assert ModelMetadata.from_json(metadata.to_json()) == metadata
    model = build_model(UNET_SMALL, metadata.architecture_params, 2, 4, 96)
    path = tmp_path / "m.safetensors"
    save_model(path, model, metadata)
    loaded = read_metadata(path)
    assert loaded == metadata
    assert loaded.classes[1].name == "Bâtiment ombré" and loaded.classes[1].color == (1, 2, 3)
    assert loaded.provenance["metrics"]["miou"] == 0.61


def test_save_then_load_predicts_the_same(tmp_path, small_unet_model_file):
    model = load_keras_model(small_unet_model_file)
    x = np.random.default_rng(3).random((2, 64, 64, 3), dtype=np.float32)
    expected = model(x, training=False).numpy()
    path = tmp_path / "again.safetensors"
    save_model(path, model, read_metadata(small_unet_model_file))
    again = load_keras_model(path)
    # The weights were float16 already: a second save/load changes nothing.
    np.testing.assert_array_equal(again(x, training=False).numpy(), expected)
    # The same weights rebuilt at another tile size give the same per-pixel answer inside.
    bigger = load_keras_model(path, tile_size=128)
    x128 = np.zeros((1, 128, 128, 3), np.float32)
    x128[:, :64, :64] = x[:1]
    assert bigger.output_shape == (None, 128, 128, 6)
    np.testing.assert_allclose(bigger(x128, training=False).numpy()[0, :40, :40], expected[0, :40, :40], atol=1e-5)


def test_weights_are_float16_on_disk_and_float32_when_loaded(small_unet_model_file):
    with safe_open(str(small_unet_model_file), framework="numpy") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {np.dtype(np.float16)}  # noqa: SIM118 (safe_open is not iterable)
    _, weights = load_weights(small_unet_model_file)
    assert weights and all(w.dtype == np.float32 for w in weights)


def test_values_beyond_float16_stay_float32(tmp_path):
    model = build_model(PIXEL_LINEAR, None, 2, 1, 8)
    model.set_weights([np.array([[[[1e5, -3.0]]]], np.float32), np.array([0.1, 0.2], np.float32)])
    path = tmp_path / "big.safetensors"
    save_model(path, model, colour_metadata(8, 0, classes=_full_metadata().classes, input_bands=1))
    _, (kernel, bias) = load_weights(path)
    assert kernel[0, 0, 0, 0] == 1e5  # float16 would have made it infinity
    assert bias[0] == np.float32(np.float16(0.1))


def test_full_reference_model_round_trips_and_fits_the_size_limit(irv2_model_256):
    model, path = irv2_model_256
    size = path.stat().st_size
    print(f"full model file: {size / 1e6:.1f} MB")
    assert size < MAX_MODEL_BYTES
    loaded = load_keras_model(path)
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    model.set_weights(_fp16_rounded(model))  # what the file holds
    np.testing.assert_allclose(loaded(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-5)
    assert read_metadata(path).architecture == "unet_inception_resnet_v2"


def test_reading_needs_no_tensorflow(colour_model_file):
    done = run_without_tensorflow(
        "from dubai_segmenter.engine.model_file import read_metadata, load_weights, describe_model\n"
        f"meta, weights = load_weights({str(colour_model_file)!r})\n"
        f"print(describe_model(read_metadata({str(colour_model_file)!r}), {str(colour_model_file)!r}))\n"
        "print([w.shape for w in weights])\n"
        "import tensorflow\n"
    )
    assert "Parameters: 24" in done.stdout and "[(1, 1, 3, 6), (6,)]" in done.stdout, done.stderr
    assert "tensorflow is blocked" in done.stderr  # the blocker works: TF really was absent


def _png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "kind, message",
    [
        ("random", "not a dubai_segmenter model file"),
        ("png", "not a dubai_segmenter model file"),
        ("empty", "not a dubai_segmenter model file"),
        ("keras", "not a dubai_segmenter model file"),
        ("h5", "not a dubai_segmenter model file"),
        ("plain_safetensors", "safetensors file but not a dubai_segmenter model"),
        ("truncated", "is truncated .*copy or download it again"),
        ("missing", "model file not found"),
        ("newer_version", "update dubai_segmenter"),
        ("bad_metadata", "model metadata field 'architecture_params': is missing"),
    ],
)
def test_files_that_are_not_models_are_refused(tmp_path, colour_model_file, kind, message):
    path = tmp_path / f"{kind}.safetensors"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "png":
        path.write_bytes(_png_bytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("keras", "h5"):
        model = build_model(PIXEL_LINEAR, None, 6, 3, 8)
        if kind == "keras":
            path = tmp_path / "model.keras"
            model.save(path)
        else:
            path = tmp_path / "model.weights.h5"
            model.save_weights(path)
    elif kind == "plain_safetensors":
        save_file({"w": np.ones((3, 3), np.float32)}, str(path))
    elif kind == "truncated":
        data = colour_model_file.read_bytes()
        path.write_bytes(data[: len(data) - 7])
    elif kind == "newer_version":
        _rewrite_header(colour_model_file, path, format_version="2")
    elif kind == "bad_metadata":
        _rewrite_header(colour_model_file, path, metadata=json.dumps({"architecture": PIXEL_LINEAR}))
    for read in (read_metadata, load_weights, load_keras_model):
        with pytest.raises(ModelFileError, match=message):
            read(path)


@pytest.mark.parametrize("architecture", [PIXEL_LINEAR, UNET_SMALL])
def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path, colour_model_file, architecture):
    wrong = colour_metadata(architecture=architecture, classes=_full_metadata().classes)  # 2 classes, not 6
    path = _rewrite_header(colour_model_file, tmp_path / "mismatch.safetensors", metadata=wrong.to_json())
    for read in (read_metadata, load_keras_model):  # the weight total in the header tells, before any build
        with pytest.raises(ModelFileError, match="does not match the weights"):
            read(path)


def test_metadata_errors_name_the_field():
    with pytest.raises(ModelFileError, match="unknown architecture 'segformer'"):
        colour_metadata(architecture="segformer")
    with pytest.raises(ModelFileError, match="class ids must be 0..C-1"):
        colour_metadata(classes=(ClassInfo(1, "a", (0, 0, 0)), ClassInfo(2, "b", (1, 1, 1))))
    with pytest.raises(ModelFileError, match="overlap 40 must be"):
        colour_metadata(tile_size=64, overlap=40)
    with pytest.raises(ModelFileError, match="tile size 102"):
        colour_metadata(architecture=UNET_SMALL, tile_size=102, overlap=0)


def test_save_is_atomic(tmp_path, colour_model_file):
    model = build_model(PIXEL_LINEAR, None, 6, 3, 8)
    path = tmp_path / "model.safetensors"
    save_model(path, model, colour_metadata(8, 0))
    before = path.read_bytes()
    broken = [np.full((1, 1, 3, 6), np.nan, np.float32), np.zeros(6, np.float32)]
    model.set_weights(broken)
    with pytest.raises(ModelFileError, match="NaN"):
        save_model(path, model, colour_metadata(8, 0))
    assert path.read_bytes() == before  # the failed save left the old file alone
    assert os.listdir(tmp_path) == ["model.safetensors"]  # and no temporary file


def test_describe_model_says_what_a_user_needs(tmp_path):
    metadata = _full_metadata()
    path = tmp_path / "m.safetensors"
    save_model(path, build_model(UNET_SMALL, metadata.architecture_params, 2, 4, 96), metadata)
    text = describe_model(metadata, path)
    for expected in (
        "Classes (2)", "1  Bâtiment ombré  #010203", "Input bands: 4", "x 0.000977517",
        "Tile size: 96 px, overlap 24 px", "0.5 m/pixel", "miou: 0.61", "split: parts 008-009",
        f"({path.stat().st_size / 1e6:.1f} MB)", "Parameters: ",
    ):
        assert expected in text, (expected, text)
    assert "unknown" in describe_model(replace(metadata, resolution=None))
