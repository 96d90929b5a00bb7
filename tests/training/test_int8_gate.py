# SPDX-License-Identifier: GPL-2.0-or-later
"""The int8 accuracy gate: its verdict rules, and the whole chain stamping the file it scored."""
from __future__ import annotations

import copy
import json

import pytest

from dubai_segmenter.engine.int8_export import int8_path_for, read_precision
from dubai_segmenter.engine.onnx_file import open_onnx_session
from tests.engine.helpers import save_small_unet
from tests.training.helpers import write_synthetic_dataset
from training.int8_gate import MAX_CLASS_IOU_DROP, MAX_MEAN_IOU_DROP, gate_verdict, int8_is_current, run_gate

KEYS = ("building", "land", "road", "vegetation", "water")


def _result(mean_iou: float, **iou: float) -> dict:
    per_class = {key: {"iou": iou.get(key, 0.6)} for key in KEYS} | {"unlabeled": {"iou": 0.0}}
    return {"sliding_window": {"tile_size": 512, "overlap": 128, "pixel_accuracy": 0.85, "mean_iou": mean_iou,
                               "per_class": per_class},
            "per_image": [{}] * 16, "data_dir": "/data", "seconds": 60.0}


def test_gate_passes_within_the_limits_and_ignores_gains():
    fp32 = _result(0.64)
    int8 = _result(0.64 - MAX_MEAN_IOU_DROP + 1e-4, road=0.6 - MAX_CLASS_IOU_DROP + 1e-4, water=0.7)
    verdict = gate_verdict(fp32, int8)
    assert verdict["passed"] and not verdict["failures"]
    assert verdict["worst_class"]["name"] == "road"
    assert verdict["worst_class"]["iou_drop"] == pytest.approx(MAX_CLASS_IOU_DROP - 1e-4)


def test_gate_fails_on_the_mean_or_on_one_class():
    fp32 = _result(0.64)
    mean_drop = gate_verdict(fp32, _result(0.64 - MAX_MEAN_IOU_DROP - 1e-3))
    assert not mean_drop["passed"] and "mean IoU" in mean_drop["failures"][0]
    one_class = gate_verdict(fp32, _result(0.64, vegetation=0.6 - MAX_CLASS_IOU_DROP - 1e-3))
    assert not one_class["passed"] and one_class["failures"] == [
        f"vegetation IoU {MAX_CLASS_IOU_DROP + 1e-3:+.4f} below float32 (limit {MAX_CLASS_IOU_DROP})"]


def test_make_int8_chain_exports_scores_and_stamps(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "data", tiles=(1, 2), size=(96, 112))
    (tmp_path / "model").mkdir()
    model = save_small_unet(tmp_path / "model" / "small.safetensors", tile_size=512, overlap=128)
    gate = run_gate(model, tmp_path / "gate", calibration=data, tiles=3, data_root=data)

    int8_path = int8_path_for(model)
    assert int8_path.name == "small.int8.onnx" and model.with_suffix(".onnx").is_file()
    props = open_onnx_session(int8_path).get_modelmeta().custom_metadata_map
    precision, stamped = read_precision(props)
    assert precision == "int8" and stamped == json.loads((tmp_path / "gate" / "gate.json").read_text()) == gate
    calibration = json.loads(props["calibration"])
    assert calibration["tiles"] == 3 and len(calibration["sha256"]) == 64
    assert not any("image_part_008" in name or "image_part_009" in name for name in calibration["images"])
    # The verdict is the rule applied to the two evaluations written beside it.
    fp32, int8 = (json.loads((tmp_path / "gate" / name / "metrics.json").read_text()) for name in ("fp32", "int8"))
    assert gate == json.loads(json.dumps(gate_verdict(fp32, int8)))
    assert gate["protocol"]["validation_images"] == 4
    assert (tmp_path / "gate" / "gate.md").read_text().startswith("# int8 accuracy gate: ")
    # Run again reusing the float32 scores: the int8 file is current, so it is not quantized again.
    assert int8_is_current(model, int8_path, data, 3) and not int8_is_current(model, int8_path, data, 2)
    capsys.readouterr()
    again = run_gate(model, tmp_path / "again", calibration=data, tiles=3, data_root=data,
                     fp32_metrics=tmp_path / "gate" / "fp32" / "metrics.json")
    printed = capsys.readouterr().out
    assert "not quantized again" in printed and "evaluating fp32" not in printed
    assert again["passed"] == gate["passed"] and again["int8"] == gate["int8"]
    assert again["protocol"]["fp32_scores_from"].endswith("metrics.json")
    # A changed verdict replaces the old one in place.
    flipped = copy.deepcopy(gate) | {"passed": not gate["passed"]}
    from dubai_segmenter.engine.int8_export import stamp_accuracy_gate

    stamp_accuracy_gate(int8_path, flipped)
    again = open_onnx_session(int8_path).get_modelmeta().custom_metadata_map
    assert read_precision(again)[1]["passed"] is (not gate["passed"])
