# SPDX-License-Identifier: GPL-2.0-or-later
"""The training levers of issue 11, each as a recipe knob: bfloat16 arithmetic, 90-degree
rotations, class-aware crops, Lovasz-softmax late in the run, weight averaging (EMA) and a
changed head dropout from a starting model."""
from __future__ import annotations

import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from keras import ops

from dubai_segmenter.engine.model_file import load_keras_model, read_metadata
from tests.training.helpers import write_synthetic_dataset
from tests.training.test_augment import _draw_rates
from training.augment import crop_window, native_border
from training.callbacks import LovaszPhase
from training.config import NATIVE, REFERENCE
from training.dataset import IGNORE, REAL_CLASS_IDS
from training.inputs import random_crops
from training.losses import build_loss, lovasz_softmax_loss
from training.precision import resolve_precision, use_policy
from training.schedule import Cycle
from training.train import WITHOUT_EMA, train

TINY = dict(architecture="unet_small", architecture_params={"filters": [8, 16]}, batch_size=4, image_size=32,
            tile_size=64, overlap=16, bn_recalibration_batches=2, bn_recalibration_size=64, steps_per_epoch=2,
            max_epochs=100, warmup_steps=1, restart_warmup_steps=1, validation_crops_per_image=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data"), tiles=(1, 2), size=(72, 80))


@pytest.fixture
def float32_afterwards():
    yield
    use_policy("float32")


def _iou_loss(labels: np.ndarray, predicted: np.ndarray) -> float:
    """1 - mean IoU over the real classes present in `labels`, annotated pixels only."""
    valid = labels != IGNORE
    ious = [np.sum((labels == c) & (predicted == c) & valid) / np.sum(((labels == c) | (predicted == c)) & valid)
            for c in REAL_CLASS_IDS if np.any(labels[valid] == c)]
    return 1.0 - float(np.mean(ious))


def test_lovasz_softmax_equals_one_minus_iou_on_hard_predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (2, 16, 16)).astype(np.uint8)
    labels[0, :3] = IGNORE
    predicted = np.where(rng.random(labels.shape) < 0.7, labels, rng.integers(0, 6, labels.shape))
    predicted[labels == IGNORE] = 2  # whatever is predicted on unannotated pixels does not count
    one_hot = np.eye(6, dtype=np.float32)[predicted]
    loss = float(lovasz_softmax_loss(labels, one_hot))
    assert loss == pytest.approx(_iou_loss(labels, predicted), abs=1e-5)
    assert float(lovasz_softmax_loss(labels, np.eye(6, dtype=np.float32)[np.where(labels == IGNORE, 0, labels)])) \
        == pytest.approx(0.0, abs=1e-6)


def test_lovasz_softmax_gives_gradients_towards_the_truth():
    labels = np.array([[[1, 1, 3, 3]]], dtype=np.uint8)
    logits = keras.Variable(np.zeros((1, 1, 4, 6), dtype=np.float32))
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = lovasz_softmax_loss(labels, ops.softmax(logits, axis=-1))
    gradient = tape.gradient(loss, logits.value).numpy()[0, 0]
    assert gradient[0, 1] < 0 and gradient[2, 3] < 0  # raising the true class lowers the loss
    assert gradient[0, 3] > 0


def test_the_lovasz_term_switches_on_at_its_share_of_the_cycle():
    recipe = NATIVE.with_overrides(lovasz_weight=1.0, lovasz_from=0.5)
    loss = build_loss(recipe, np.full(6, 1 / 6))
    clock = SimpleNamespace(cycle=Cycle(start=100, end=200, warmup=5, peak=1e-3, floor=1e-5), steps=0)
    phase = LovaszPhase(recipe, clock, loss.lovasz_scale)
    seen = []
    for step in (100, 149, 150, 199):
        clock.steps = step
        phase.on_train_batch_begin(0)
        seen.append(float(loss.lovasz_scale.numpy()))
    assert seen == [0.0, 0.0, 1.0, 1.0]
    labels = np.zeros((1, 4, 4), dtype=np.uint8) + 1
    uniform = np.full((1, 4, 4, 6), 1 / 6, dtype=np.float32)
    with_term = float(loss(labels, uniform))
    loss.lovasz_scale.assign(0.0)
    assert with_term - float(loss(labels, uniform)) == pytest.approx(float(lovasz_softmax_loss(labels, uniform)))
    assert not hasattr(build_loss(NATIVE, np.full(6, 1 / 6)), "lovasz_scale")


def test_rot90_crops_need_no_margin_and_draw_pixels_uniformly():
    assert crop_window(256, "rot90") == 256 and crop_window(256, "free") == 363
    assert native_border(256, "rot90") == 128
    height, width, crop = 72, 88, 32
    index = np.arange(height * width, dtype=np.uint16).reshape(height, width)
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    rates = _draw_rates([(image, index)], crop, 3000, rotation="rot90")
    assert rates.min() > 0.6 and rates.max() < 1.5, (rates.min(), rates.max())


def test_rot90_crops_move_labels_without_resampling():
    """A rot90 crop's mask is a block of the padded image turned by a multiple of 90 degrees
    or flipped: neighbouring ids stay neighbours. Only the optional grid/optical distortions
    (about 20 % of crops) break that; a free rotation breaks it in half the crops as well."""
    height, width, crop = 48, 48, 16
    index = np.arange(height * width, dtype=np.uint16).reshape(height, width)
    image = np.zeros((height, width, 3), dtype=np.uint8)

    def rigid_share(rotation: str) -> float:
        crops = random_crops([(image, index)], NATIVE.with_overrides(image_size=crop, rotation=rotation), seed=1)
        rigid = 0
        for _ in range(200):
            mask = next(crops)[1].astype(np.int64)
            steps = set(np.abs(np.diff(mask, axis=1)).ravel()) | set(np.abs(np.diff(mask, axis=0)).ravel())
            rigid += steps <= {0, 1, width}  # 0 where the reflected border repeats an edge
        return rigid / 200

    turned, free = rigid_share("rot90"), rigid_share("free")
    assert turned > 0.7 and free < 0.5, (turned, free)


def test_class_aware_crops_show_a_rare_class_far_more_often():
    labels = np.full((200, 200), 1, dtype=np.uint8)
    labels[20:30, 150:160] = 3  # 0.25 % of the image
    image = np.zeros((200, 200, 3), dtype=np.uint8)

    def share_with_rare_class(recipe):
        crops = random_crops([(image, labels)], recipe, seed=5)
        return np.mean([np.any(next(crops)[1] == 3) for _ in range(300)])

    uniform = share_with_rare_class(NATIVE.with_overrides(image_size=32))
    aware = share_with_rare_class(NATIVE.with_overrides(image_size=32, class_aware_crops=0.5))
    # Two real classes present: half the crops are class-aware, half of those aim at class 3.
    assert uniform < 0.1 and aware > uniform + 0.15, (uniform, aware)


def test_recipe_refuses_unknown_lever_values():
    for knob, value in (("precision", "float16"), ("rotation", "45"), ("class_aware_crops", 1.5),
                        ("ema_momentum", 1.0), ("lovasz_from", -0.1)):
        with pytest.raises(ValueError, match=knob):
            NATIVE.with_overrides(**{knob: value})


def test_auto_precision_follows_the_cpu():
    auto = NATIVE.with_overrides(precision="auto")
    assert resolve_precision(auto, frozenset({"avx512f", "avx512_bf16"})) == ("mixed_bfloat16",
                                                                             "the CPU has AVX512-BF16")
    policy, why = resolve_precision(auto, frozenset({"avx2"}))
    assert policy == "float32" and "emulated" in why
    assert NATIVE.precision == "auto" and REFERENCE.precision == "float32"  # the reference stays as published
    assert resolve_precision(REFERENCE, frozenset({"avx512_bf16"}))[0] == "float32"


def test_bfloat16_training_exports_a_float32_model(data, tmp_path, float32_afterwards):
    recipe = NATIVE.with_overrides(**TINY, precision="mixed_bfloat16")
    path = train(recipe, tmp_path / "run", steps=2, data_root=data, evaluate=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["precision"]["policy"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # export and evaluation in float32
    model = load_keras_model(path, 64)
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float32")}
    output = np.asarray(model(np.zeros((1, 64, 64, 3), np.float32)))
    assert output.dtype == np.float32 and np.allclose(output.sum(-1), 1, atol=1e-5)


def test_ema_run_exports_the_average_and_its_last_weights_beside_it(data, tmp_path):
    recipe = NATIVE.with_overrides(**TINY, ema_momentum=0.5, learning_rate=3e-2)
    path = train(recipe, tmp_path / "run", steps=4, data_root=data)
    without = tmp_path / "run" / WITHOUT_EMA
    averaged, last = load_keras_model(path, 64), load_keras_model(without, 64)
    conv = [i for i, w in enumerate(averaged.get_weights()) if w.ndim == 4]
    assert not np.allclose(averaged.get_weights()[conv[0]], last.get_weights()[conv[0]])
    for folder in ("evaluation", "evaluation-without-ema"):
        assert (tmp_path / "run" / folder / "metrics.json").is_file()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {"batchnorm", "batchnorm_without_ema"} <= set(run["training"])
    assert read_metadata(without).provenance["recipe"]["ema_momentum"] == 0.5


def test_init_from_may_change_the_head_dropout(data, tmp_path):
    params = {"filters": [8, 16], "dropout": 0.3}
    first = train(NATIVE.with_overrides(**{**TINY, "architecture_params": params}), tmp_path / "first", steps=1,
                  data_root=data, evaluate=False)
    second = train(NATIVE.with_overrides(**TINY), tmp_path / "second", steps=1, data_root=data, evaluate=False,
                   init_from=first)
    assert read_metadata(second).architecture_params == {"filters": [8, 16]}


def test_a_run_folder_written_before_new_knobs_resumes(data, tmp_path):
    recipe = NATIVE.with_overrides(**TINY)
    train(recipe, tmp_path / "run", steps=2, data_root=data, evaluate=False)
    run_json = tmp_path / "run" / "run.json"
    run = json.loads(run_json.read_text())
    for knob in ("rotation", "class_aware_crops", "ema_momentum", "lovasz_weight", "lovasz_from"):
        del run["recipe"][knob]  # as written by the code before these knobs existed
    run_json.write_text(json.dumps(run))
    train(recipe, tmp_path / "run", steps=4, data_root=data, evaluate=False)
    assert json.loads(run_json.read_text())["training"]["steps"] == 4
    with pytest.raises(SystemExit, match='another recipe .*rotation="free" \\(now "rot90"\\)'):
        train(recipe.with_overrides(rotation="rot90"), tmp_path / "run", steps=6, data_root=data, evaluate=False)
    # Before `precision` existed every run was float32; the native recipe is now "auto", so
    # such a run resumes only as it was, and the refusal says how.
    del run["recipe"]["precision"]
    run_json.write_text(json.dumps(run))
    with pytest.raises(SystemExit, match='precision="float32" \\(now "auto"\\); --set KNOB=VALUE'):
        train(recipe, tmp_path / "run", steps=6, data_root=data, evaluate=False)
    train(recipe.with_overrides(precision="float32"), tmp_path / "run", steps=6, data_root=data, evaluate=False)
