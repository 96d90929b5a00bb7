# SPDX-License-Identifier: GPL-2.0-or-later
"""int8 exports: what the file holds, how close it stays to float32, and when auto picks it."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from dubai_segmenter.engine import cpu_features
from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, EXIT_OK, main
from dubai_segmenter.engine.int8_export import calibration_images, calibration_set, stamp_accuracy_gate
from dubai_segmenter.engine.onnx_file import export_onnx
from dubai_segmenter.engine.predictors import open_predictor
from tests.engine.helpers import paint, save_small_unet
from tests.engine.rasters import block_classes, write_painted

VNNI = frozenset({"fpu", "avx2", "avx512f", "avx512_vnni"})
AVX2_ONLY = frozenset({"fpu", "avx2", "fma"})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small U-Net with its float32 export and (through the command line) its int8 export,
    calibrated on painted images; one of them is named like a held-out validation part."""
    folder = tmp_path_factory.mktemp("int8")
    images = folder / "training" / "images"
    images.mkdir(parents=True)
    for number in range(1, 5):
        write_painted(images / f"image_part_{number:03d}.tif", block_classes(80, 96, block=6, seed=number))
    write_painted(images / "image_part_008.tif", block_classes(80, 96, seed=99))
    (folder / "model").mkdir()
    model = save_small_unet(folder / "model" / "unet.safetensors")
    export_onnx(model, model.with_suffix(".onnx"))
    code = main(["export-onnx", str(model), "--precision", "int8", "--calibration", str(folder / "training"),
                 "--calibration-tiles", "3"])
    assert code == EXIT_OK
    return model, folder / "training"


@pytest.fixture
def model(files, tmp_path):
    """A private copy of the model folder (tests stamp the int8 file)."""
    shutil.copytree(files[0].parent, tmp_path / "model")
    return tmp_path / "model" / "unet.safetensors"


def _flags(monkeypatch, flags):
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda *_: flags)


def test_int8_file_is_quantized_and_records_its_calibration(files):
    model, training = files
    proto = onnx.load(str(model.with_name("unet.int8.onnx")))
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [i for i in proto.graph.initializer if i.data_type == TensorProto.INT8 and len(i.dims) == 4]
    assert int8_weights  # convolution kernels stored as int8 ...
    scales = [i for i in proto.graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1 and i.dims[0] > 1]
    assert scales  # ... with one scale per output channel
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["precision"] == "int8" and json.loads(props["metadata"])["architecture"] == "unet_small"
    calibration = json.loads(props["calibration"])
    assert calibration["images"] and all("image_part_008" not in name for name in calibration["images"])
    again = calibration_set(calibration_images(training), 64, 3, 1 / 255, count=3, seed=calibration["seed"],
                            root=training)
    assert calibration["sha256"] == again.sha256 and calibration["images"] == list(again.names)
    assert "accuracy_gate" not in props


def test_int8_classes_stay_close_to_float32(model):
    fp32 = open_predictor(model.with_suffix(".onnx"))
    int8 = open_predictor(model.with_name("unet.int8.onnx"))
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    batch = np.stack([paint(block_classes(64, 64, block=6, seed=s)) for s in (11, 12, 13)]).astype(np.float32) / 255
    a, b = fp32.predict(batch), int8.predict(batch)
    assert b.shape == a.shape and b.dtype == np.float32
    np.testing.assert_allclose(b.sum(-1), 1, atol=1e-4)  # the softmax stays float
    assert (a.argmax(-1) == b.argmax(-1)).mean() > 0.9


def test_auto_picks_int8_only_with_the_instructions_and_a_passed_gate(model, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="dubai_segmenter.engine.predictors")
    _flags(monkeypatch, VNNI)
    assert open_predictor(model).precision == "fp32"  # not through the gate yet
    assert "not been through the accuracy gate" in caplog.text

    int8_path = model.with_name("unet.int8.onnx")
    stamp_accuracy_gate(int8_path, {"passed": False})
    assert open_predictor(model).precision == "fp32"
    assert "failed the accuracy gate" in caplog.text

    stamp_accuracy_gate(int8_path, {"passed": True})
    caplog.clear()
    chosen = open_predictor(model)
    assert (chosen.backend, chosen.precision) == ("onnx", "int8")
    assert "backend onnx int8" in caplog.text and "AVX512-VNNI" in caplog.text

    for flags, why in ((AVX2_ONLY, "none of AMX-INT8, AVX512-VNNI, AVX-VNNI"), (None, "cannot be read")):
        _flags(monkeypatch, flags)
        caplog.clear()
        assert open_predictor(model).precision == "fp32"  # falls back on this CPU
        assert "int8 not used" in caplog.text and why in caplog.text and "backend onnx:" in caplog.text
    # Asked for explicitly, int8 runs anyway.
    assert open_predictor(model, backend="int8").precision == "int8"


def test_a_stale_int8_export_is_not_used(model, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="dubai_segmenter.engine.predictors")
    _flags(monkeypatch, VNNI)
    stamp_accuracy_gate(model.with_name("unet.int8.onnx"), {"passed": True})
    save_small_unet(model, seed=1)  # the model file changes; both exports are now stale
    with pytest.raises(ValueError, match="exported from another version"):
        open_predictor(model, backend="int8")
    assert open_predictor(model).backend == "tf"


def test_cli_int8_export_errors_and_segment_reason(files, model, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DATA_DIR", raising=False)
    assert main(["export-onnx", str(model), "--precision", "int8"]) == EXIT_BAD_INPUT
    assert "--calibration DIR" in capsys.readouterr().err
    assert main(["export-onnx", str(model), "--precision", "int8", "--calibration", str(tmp_path / "none")]) \
        == EXIT_BAD_INPUT
    assert "does not exist" in capsys.readouterr().err

    _flags(monkeypatch, AVX2_ONLY)
    stamp_accuracy_gate(model.with_name("unet.int8.onnx"), {"passed": True})
    raster = write_painted(tmp_path / "scene.tif", block_classes(100, 90, block=6))
    code = main(["segment", str(raster), "--model", str(model), "--out-raster", str(tmp_path / "c.tif")])
    err = capsys.readouterr().err
    assert code == EXIT_OK, err
    assert "int8 not used: the CPU has none of" in err and "backend onnx:" in err
