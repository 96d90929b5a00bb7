# SPDX-License-Identifier: GPL-2.0-or-later
"""Regression test of the released model, its ONNX export and the sliding window together.

The sample scene is a validation image with a CC0 ground truth bundled beside it
(``dubai_tile5_part008_truth.tif``, class ids on the same grid). Segmenting it the way
``make demo`` does (the export is made once beside the tracked model if missing) must
score at least the floors below, set a little under what dubai-native-v1 scored when
it was released (measured 2026-12-04 with ONNX Runtime: accuracy 0.812; IoU building
0.366, land 0.767, road 0.505, vegetation 0.323, water 0.816; the evaluation of the
release measured 0.812 accuracy on this image too). A change to tiling, blending,
input scaling, the export or the model file that costs accuracy fails here.

About a minute on two cores (two more the first time, for the export): one run per session.
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio

from dubai_segmenter.engine.classes import NODATA_CLASS
from dubai_segmenter.engine.model_catalogue import SHIPPED_CATALOGUE, parse_catalogue
from tools.make_sample_scene import OUTPUT as SAMPLE_SCENE
from tools.make_sample_scene import TRUTH_OUTPUT as SAMPLE_TRUTH

ROOT = Path(__file__).resolve().parents[2]
RELEASED = ROOT / "models" / "dubai-native-v1.safetensors"
ACCURACY_FLOOR = 0.80
IOU_FLOORS = {0: 0.34, 1: 0.75, 2: 0.48, 3: 0.30, 4: 0.79}  # building, land, road, vegetation, water


@pytest.fixture(scope="module")
def segmented(tmp_path_factory) -> tuple[np.ndarray, np.ndarray, str]:
    """(predicted ids, true ids, backend) for the sample scene, segmented once."""
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.segment import segment_raster

    predictor = open_predictor(RELEASED, cache_export=True)
    output = segment_raster(SAMPLE_SCENE, predictor, tmp_path_factory.mktemp("released") / "classes.tif").output_path
    with rasterio.open(output) as predicted, rasterio.open(SAMPLE_TRUTH) as truth:
        assert (predicted.transform, predicted.shape) == (truth.transform, truth.shape)
        return predicted.read(1), truth.read(1), predictor.backend


def test_released_model_is_the_catalogued_file() -> None:
    entry = parse_catalogue(SHIPPED_CATALOGUE.read_bytes(), SHIPPED_CATALOGUE.as_uri()).entry("dubai-native-v1")
    assert hashlib.sha256(RELEASED.read_bytes()).hexdigest() == entry.file("safetensors").sha256
    card = (ROOT / "models" / "README.md").read_text()
    assert entry.file("safetensors").sha256 in card and entry.file("onnx").sha256 in card


def test_the_export_made_beside_the_model_is_used_and_not_tracked(segmented) -> None:
    assert segmented[2] == "onnx"
    export = RELEASED.with_suffix(".onnx")
    assert subprocess.run(["git", "check-ignore", "-q", str(export)], cwd=ROOT).returncode == 0


def test_sample_accuracy_and_per_class_iou_stay_above_the_floors(segmented) -> None:
    predicted, truth, _ = segmented
    valid = truth != NODATA_CLASS
    accuracy = float((predicted[valid] == truth[valid]).mean())
    ious = {}
    for class_id in IOU_FLOORS:
        union = ((predicted == class_id) | (truth == class_id)) & valid
        ious[class_id] = float(((predicted == class_id) & (truth == class_id) & valid).sum() / union.sum())
    assert accuracy >= ACCURACY_FLOOR, accuracy
    assert all(ious[c] >= floor for c, floor in IOU_FLOORS.items()), ious
