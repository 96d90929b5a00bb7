# SPDX-License-Identifier: GPL-2.0-or-later
"""A short fit on a tiny synthetic dataset in the real folder layout, end to end:
train, checkpoint, resume, export, load in the engine, evaluate."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dubai_segmenter.engine.model_file import load_keras_model, read_metadata
from dubai_segmenter.engine.onnx_file import file_sha256
from dubai_segmenter.engine.predictors import open_predictor
from dubai_segmenter.engine.segment import segment_array
from dubai_segmenter.engine.tta import with_tta
from tests.training.helpers import write_synthetic_dataset
from training import callbacks
from training import train as train_module
from training.config import NATIVE, REFERENCE
from training.dataset import list_samples, load_sample, reference_split
from training.evaluate import main as evaluate_main
from training.export import main as export_main
from training.lineage import load_initial_weights
from training.metrics import confusion_matrix, scores
from training.train import compile_network, main, train

TINY = dict(architecture="unet_small", architecture_params={"filters": [8, 16]}, batch_size=4,
            tile_size=64, overlap=16, bn_recalibration_batches=4, bn_recalibration_size=64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data"), tiles=(1, 2), size=(72, 80))


def _rows(run_dir):
    with open(run_dir / "model_training.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _variables(model):
    return [np.array(v.numpy()) for v in [*model.weights, *model.optimizer.variables]]


def test_native_fit_checkpoint_resume_export_evaluate(data, tmp_path, monkeypatch):
    recipe = NATIVE.with_overrides(**TINY, image_size=32, steps_per_epoch=3, max_epochs=2, warmup_steps=2,
                                   validation_crops_per_image=2)
    run_dir = tmp_path / "run"
    saved, loaded = [], []
    real_save, real_load = callbacks.save_checkpoint, train_module.load_checkpoint
    monkeypatch.setattr(callbacks, "save_checkpoint",
                        lambda d, model, state: (saved.append(_variables(model)), real_save(d, model, state))[1])
    monkeypatch.setattr(train_module, "load_checkpoint",
                        lambda folder, model: (real_load(folder, model), loaded.append(_variables(model)))[0])
    # A budget shorter than one step: the run stops after its first step and checkpoints.
    train(recipe, run_dir, hours=1e-5, data_root=data, evaluate=False)
    assert (run_dir / "checkpoints" / "latest").read_text() == "epoch-0001"
    assert len(_rows(run_dir)) == 1 and int(_rows(run_dir)[0]["steps"]) == 1
    # The same run again with time left resumes at epoch 1 and runs to max_epochs, from
    # exactly the weights and optimizer state (Adam moments, iteration count) it saved.
    model_path = train(recipe, run_dir, hours=1.0, data_root=data)
    assert len(saved[0]) == len(loaded[0]) > 0
    for at_save, at_resume in zip(saved[0], loaded[0]):
        np.testing.assert_array_equal(at_save, at_resume)
    assert not all(np.array_equal(a, b) for a, b in zip(saved[0], saved[-1]))  # and it trained on
    rows = _rows(run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1] and [int(r["steps"]) for r in rows] == [1, 4]
    assert {"loss", "val_loss", "masked_accuracy", "val_mean_iou", "soft_dice", "learning_rate"} <= set(rows[0])
    assert (run_dir / "learning_curves.png").stat().st_size > 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["split"]["validation"] == [f"Tile {t}/image_part_{p:03d}" for t in (1, 2) for p in (8, 9)]
    assert run["training"]["batchnorm"]["recalibration_batches"] == 4

    # The engine loads the model file and runs its sliding window with it.
    metadata = read_metadata(model_path)
    assert metadata.architecture == "unet_small" and metadata.input_scale == pytest.approx(1 / 255)
    assert metadata.provenance["recipe"]["name"] == "native"
    assert metadata.provenance["split"]["train"][0] == "Tile 1/image_part_001"
    assert metadata.provenance["code_version"]
    window = metadata.provenance["validation_metrics"]["sliding_window"]
    predictor = open_predictor(model_path)
    assert predictor.backend == "onnx"  # the ONNX export beside the model file is current
    _, validation = reference_split(list_samples(data))
    image, labels = load_sample(validation[0])
    probabilities = segment_array(image.astype(np.float32) / 255, predictor, 64, 16)
    assert probabilities.shape == labels.shape + (6,)

    # The evaluation report matches what the engine's output scores.
    report = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
    assert report["sliding_window"]["pixel_accuracy"] == pytest.approx(window["pixel_accuracy"])
    assert report["per_image"][0]["pixel_accuracy"] == pytest.approx(
        scores(confusion_matrix(labels, probabilities.argmax(-1)))["pixel_accuracy"], abs=1e-6)
    assert report["reference_protocol"]["image_size"] == 512
    assert "0.8112" in (run_dir / "evaluation" / "metrics.md").read_text()
    assert len(list((run_dir / "evaluation" / "figures").glob("*.png"))) == len(validation) == 4
    assert len(list((run_dir / "evaluation" / "activations").glob("*.png"))) >= 3

    # Export on its own (its command line) rewrites the same weights.
    export_main([str(run_dir), "--out", str(tmp_path / "again.safetensors")])
    second = open_predictor(tmp_path / "again.safetensors").predict(image[None, :64, :64].astype(np.float32) / 255)
    np.testing.assert_allclose(second, predictor.predict(image[None, :64, :64].astype(np.float32) / 255), atol=1e-6)
    # The evaluation's command line scores it the same as the run's own evaluation.
    monkeypatch.setenv("DATA_DIR", str(data))
    evaluate_main([str(tmp_path / "again.safetensors"), "--out", str(tmp_path / "scores")])
    rescored = json.loads((tmp_path / "scores" / "metrics.json").read_text())
    assert rescored["sliding_window"]["pixel_accuracy"] == pytest.approx(window["pixel_accuracy"], abs=1e-6)
    # With --tta flips it scores the flip-averaged sliding window, in its own folder.
    evaluate_main([str(tmp_path / "again.safetensors"), "--tta", "flips"])
    flipped = json.loads((tmp_path / "evaluation-tta-flips" / "metrics.json").read_text())
    averaged = segment_array(image.astype(np.float32) / 255, with_tta(predictor, "flips"), 64, 16)
    assert flipped["tta"] == "flips" and flipped["per_image"][0]["pixel_accuracy"] == pytest.approx(
        scores(confusion_matrix(labels, averaged.argmax(-1)))["pixel_accuracy"], abs=1e-6)
    # With --split training it scores the images the model trained on, in its own folder, and
    # both reports say how the scores change away from class boundaries.
    evaluate_main([str(tmp_path / "again.safetensors"), "--split", "training"])
    seen = json.loads((tmp_path / "evaluation-training-images" / "metrics.json").read_text())
    training_names = [s.name for s in reference_split(list_samples(data))[0]]
    assert seen["split"]["training"] == training_names == [row["image"] for row in seen["per_image"]]
    assert [band["width"] for band in seen["away_from_boundaries"]] == [2, 8]
    assert 0 < seen["away_from_boundaries"][0]["band_pixel_share"] < seen["away_from_boundaries"][1]["band_pixel_share"]
    assert "share of errors in band" in (tmp_path / "evaluation-training-images" / "metrics.md").read_text()
    scan = seen["temperature_scan"]
    assert scan["soft_dice"][scan["temperatures"].index(1.0)] == pytest.approx(seen["sliding_window"]["soft_dice"],
                                                                              abs=1e-4)


def test_reference_recipe_learns_the_synthetic_classes(data, tmp_path):
    """The reference recipe end to end (offline copies, squashed images, its loss and schedule,
    early stopping bookkeeping): classes painted in their colours are learnt, so images, masks
    and the loss line up."""
    recipe = REFERENCE.with_overrides(**TINY, image_size=64, steps_per_epoch=12, max_epochs=3, offline_copies=2,
                                      learning_rate=3e-2, reference_crop_sizes={1: (48, 48), 2: (40, 40)})
    model_path = train(recipe, tmp_path / "run", hours=1.0, data_root=data, evaluate=False)
    assert len(list_samples(tmp_path / "run" / "augmented")) == 2 * 14
    assert (tmp_path / "run" / "best.weights.h5").is_file()
    predictor = open_predictor(model_path)
    assert predictor.backend == "onnx"  # the ONNX export beside the model file is current
    _, validation = reference_split(list_samples(data))
    image, labels = load_sample(validation[0])
    predicted = segment_array(image.astype(np.float32) / 255, predictor, 64, 16).argmax(-1)
    assert scores(confusion_matrix(labels, predicted))["pixel_accuracy"] > 0.8


def test_command_line_refuses_a_run_folder_of_another_recipe(data, tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"recipe": {"name": "reference"}}))
    monkeypatch.setenv("DATA_DIR", str(data))
    with pytest.raises(SystemExit, match="another recipe"):
        main(["--recipe", "native", "--hours", "1", "--out", str(tmp_path / "run")])


def test_init_from_a_model_file_continues_its_weights_and_records_the_lineage(data, tmp_path, monkeypatch):
    recipe = NATIVE.with_overrides(**TINY, image_size=32, steps_per_epoch=2, max_epochs=100, warmup_steps=2,
                                   validation_crops_per_image=2, restart_warmup_steps=2)
    first = train(recipe, tmp_path / "first", steps=2, data_root=data, evaluate=False)

    # The weights come from the file, through the engine's loader, into the training network.
    network = compile_network(recipe, np.full(6, 1 / 6), None)
    load_initial_weights(network, first, recipe)
    crop = load_sample(list_samples(data)[0])[0][None, :32, :32].astype(np.float32) / 255
    np.testing.assert_allclose(np.asarray(network(crop, training=False)),
                               np.asarray(load_keras_model(first, 32)(crop, training=False)), atol=1e-6)

    second = train(recipe, tmp_path / "second", steps=4, data_root=data, evaluate=False, init_from=first)
    run = json.loads((tmp_path / "second" / "run.json").read_text())
    assert run["init_from"]["sha256"] == file_sha256(first)
    assert run["training"]["steps"] == 4
    # A fresh cycle with the restart warm-up from step 0 of this run.
    assert run["training"]["cycle"] == {"start": 0, "end": 4, "warmup": 2, "peak": recipe.restart_learning_rate,
                                        "floor": recipe.min_learning_rate, "hours": None}
    provenance = read_metadata(second).provenance
    lineage = provenance["lineage"]
    assert [entry.get("run") for entry in lineage] == ["first", "second"]
    assert [entry["steps"] for entry in lineage] == [2, 4]
    assert lineage[1]["init_from_sha256"] == file_sha256(first)
    assert provenance["total_training_hours"] == pytest.approx(sum(e["hours"] for e in lineage), abs=1e-3)
    assert provenance["total_cpu_hours"] > 0

    # A model of another architecture is refused with a message naming both.
    monkeypatch.setenv("DATA_DIR", str(data))
    with pytest.raises(SystemExit, match="its network is unet_small .* builds unet_inception_resnet_v2"):
        main(["--recipe", "native", "--steps", "1", "--out", str(tmp_path / "third"), "--init-from", str(first)])
    assert not (tmp_path / "third" / "checkpoints").exists()
