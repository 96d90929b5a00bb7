# SPDX-License-Identifier: GPL-2.0-or-later
"""The ONNX export made once beside a model file (``cache_export``), or TensorFlow, said in the log."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from dubai_segmenter.engine import onnx_cache
from dubai_segmenter.engine.predictors import open_predictor


@pytest.fixture
def model_copy(colour_model_file: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "colour-v1.safetensors"
    shutil.copy(colour_model_file, copy)
    return copy


def test_the_export_is_made_once_beside_the_model_and_reused(model_copy, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dubai_segmenter.engine.predictors")
    assert open_predictor(model_copy, cache_export=True).backend == "onnx"
    export = model_copy.with_suffix(".onnx")
    assert export.is_file() and "making the ONNX export" in caplog.text
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["colour-v1.onnx", "colour-v1.safetensors"]
    made = export.stat().st_mtime_ns
    caplog.clear()
    assert open_predictor(model_copy, cache_export=True).backend == "onnx"
    assert export.stat().st_mtime_ns == made and "making" not in caplog.text
    assert "backend onnx: colour-v1.onnx is a current export" in caplog.text


def test_without_the_exporter_it_runs_tensorflow_and_says_why(model_copy, caplog, monkeypatch) -> None:
    monkeypatch.setattr(onnx_cache, "_missing_exporter_modules", lambda: ["tf2onnx"])
    caplog.set_level(logging.INFO, logger="dubai_segmenter.engine.predictors")
    assert open_predictor(model_copy, cache_export=True).backend == "tf"
    assert "no ONNX export made" in caplog.text and "tf2onnx not installed" in caplog.text
    assert "backend tf" in caplog.text
    assert not model_copy.with_suffix(".onnx").exists()


def test_a_failed_export_falls_back_to_tensorflow(model_copy, caplog, monkeypatch) -> None:
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_cache, "export_onnx", full_disk)
    caplog.set_level(logging.INFO, logger="dubai_segmenter.engine.predictors")
    assert open_predictor(model_copy, cache_export=True).backend == "tf"
    assert "no ONNX export made: [Errno 28] No space left on device" in caplog.text


def test_without_cache_export_nothing_is_written(model_copy) -> None:
    assert open_predictor(model_copy).backend == "tf"
    assert not model_copy.with_suffix(".onnx").exists()

