# SPDX-License-Identifier: GPL-2.0-or-later
"""Fine-tuning on an analyst's own GeoTIFF image/mask pairs (`--data DIR`): the layout is
checked on start with the file named in every error, and a tiny model fine-tuned on
generated pairs learns (its loss falls) and exports a model file the engine runs."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from dubai_segmenter.engine.predictors import open_predictor
from tests.training.helpers import block_labels
from training.config import NATIVE
from training.dataset import IGNORE, colorize, load_sample
from training.geotiff_pairs import PairError, list_pairs
from training.splits import training_split
from training.train import main, train

TINY = dict(architecture="unet_small", architecture_params={"filters": [8, 16]}, batch_size=4, image_size=32,
            tile_size=64, overlap=16, bn_recalibration_batches=2, bn_recalibration_size=64,
            validation_crops_per_image=2, validation_bn_batches=2, warmup_steps=2, restart_warmup_steps=2)
GRID = from_origin(500000, 2800000, 0.5, 0.5)


def _write(path, array, crs="EPSG:32640", transform=GRID, nodata=None):
    bands = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                       dtype=bands.dtype, crs=crs, transform=transform, nodata=nodata) as out:
        out.write(bands)


def write_pairs(root, count=6, size=(64, 72), seed=0):
    """RGB images painted in the class colours plus noise, masks of class ids (255 = unannotated)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(count):
        labels = block_labels(rng, *size, 8, classes=5, ignore_share=0.05)
        image = np.clip(colorize(labels) + rng.normal(0, 12, labels.shape + (3,)), 0, 255).astype(np.uint8)
        _write(root / "images" / f"field_{k}.tif", image)
        _write(root / "masks" / f"field_{k}.tif", labels)
    return root


def test_pairs_are_listed_split_and_loaded(tmp_path):
    root = write_pairs(tmp_path / "data")
    train_pairs, validation, name = training_split(root)
    assert [s.name for s in validation] == ["field_4"] and len(train_pairs) == 5 and "every 5th" in name
    image, labels = load_sample(train_pairs[0])
    assert image.shape == (64, 72, 3) and image.dtype == np.uint8 and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, 3, 4, IGNORE} and (labels == IGNORE).any()


def _broken(tmp_path, damage):
    root = write_pairs(tmp_path / "data", count=2)
    damage(root)
    with pytest.raises(PairError) as caught:
        list_pairs(root)
    return str(caught.value)


def test_a_missing_mask_is_named(tmp_path):
    message = _broken(tmp_path, lambda root: (root / "masks" / "field_1.tif").unlink())
    assert "field_1.tif has no mask" in message and "masks" in message


def test_a_mask_of_another_size_is_named(tmp_path):
    message = _broken(tmp_path, lambda root: _write(root / "masks" / "field_1.tif", np.zeros((60, 72), np.uint8)))
    assert "field_1.tif: 72x60 pixels but its image field_1.tif is 72x64" in message


def test_a_mask_in_another_crs_is_named(tmp_path):
    message = _broken(tmp_path, lambda root: _write(root / "masks" / "field_0.tif", np.zeros((64, 72), np.uint8),
                                                    crs="EPSG:4326"))
    assert "field_0.tif: CRS EPSG:4326 differs" in message


def test_unknown_class_ids_are_named_with_the_file(tmp_path):
    def damage(root):
        labels = np.zeros((64, 72), np.uint8)
        labels[3, 4], labels[5, 5] = 7, 12
        _write(root / "masks" / "field_1.tif", labels)
    message = _broken(tmp_path, damage)
    assert "field_1.tif: class ids [7, 12] are not classes of the model" in message and "255" in message


def test_nodata_marks_unannotated_pixels(tmp_path):
    root = write_pairs(tmp_path / "data", count=2)
    labels = np.full((64, 72), 2, np.uint16)
    labels[:10] = 9999
    _write(root / "masks" / "field_0.tif", labels, nodata=9999)
    _, labels = load_sample(list_pairs(root)[0])
    assert (labels[:10] == IGNORE).all() and (labels[10:] == 2).all()


def test_the_command_line_names_the_bad_file_in_one_line(tmp_path):
    root = write_pairs(tmp_path / "data", count=2)
    _write(root / "masks" / "field_1.tif", np.full((64, 72), 6, np.uint8))
    with pytest.raises(SystemExit, match=r"^--data: .*field_1.tif: class ids \[6\]"):
        main(["--data", str(root), "--steps", "1", "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_fine_tuning_on_pairs_lowers_the_loss_and_exports_a_model(tmp_path):
    root = write_pairs(tmp_path / "data")
    recipe = NATIVE.with_overrides(**TINY, steps_per_epoch=6, max_epochs=100, learning_rate=1e-2,
                                   restart_learning_rate=1e-2, validation_every=100)
    start = train(recipe, tmp_path / "start", steps=2, data_root=root, evaluate=False)
    model_path = train(recipe, tmp_path / "tuned", steps=36, data_root=root, evaluate=False, init_from=start)
    with open(tmp_path / "tuned" / "model_training.csv", newline="") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0], losses
    run = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert run["split"]["validation"] == ["field_4"] and run["data_dir"] == str(root)
    predictor = open_predictor(model_path)
    image, labels = load_sample(list_pairs(root)[4])
    predicted = predictor.predict(image[None, :64, :64].astype(np.float32) / 255)[0].argmax(-1)
    known = labels[:64, :64] != IGNORE
    assert (predicted[known] == labels[:64, :64][known]).mean() > 0.5
