# SPDX-License-Identifier: GPL-2.0-or-later
"""Dataset reading: mask colours, ignored black pixels, palette PNGs, the reference split."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from tests.training.helpers import block_labels, write_mask_png
from training.dataset import IGNORE, data_dir, decode_mask, list_samples, load_sample, read_rgb, reference_split

REAL_DATA = data_dir()
needs_real_data = pytest.mark.skipif(not (REAL_DATA / "Tile 1").is_dir(),
                                     reason=f"real dataset not found at {REAL_DATA} (set DATA_DIR)")


def test_decode_mask_uses_the_real_colours_and_ignores_black():
    colours = [c.color for c in DUBAI_CLASSES] + [(0, 0, 0)]
    rgb = np.array([colours], dtype=np.uint8)
    assert decode_mask(rgb).tolist() == [[0, 1, 2, 3, 4, 5, IGNORE]]


def test_decode_mask_rejects_the_classes_json_colours():
    # classes.json says Building is #D0021B: such a pixel means the wrong colour table.
    rgb = np.array([[[0xD0, 0x02, 0x1B]]], dtype=np.uint8)
    with pytest.raises(ValueError, match=r"\(208, 2, 27\)"):
        decode_mask(rgb)


@pytest.mark.parametrize("palette", [True, False])
def test_mask_png_round_trip(tmp_path, palette):
    labels = block_labels(np.random.default_rng(1), 40, 56, 8, ignore_share=0.2)
    path = tmp_path / "mask.png"
    write_mask_png(path, labels, palette=palette)
    assert (Image.open(path).mode == "P") == palette
    np.testing.assert_array_equal(decode_mask(read_rgb(path)), labels)


def test_missing_dataset_names_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "nowhere"))
    assert data_dir() == tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="DATA_DIR"):
        list_samples()


@needs_real_data
def test_reference_split_on_the_real_dataset():
    train, validation = reference_split(list_samples(REAL_DATA))
    assert (len(train), len(validation)) == (56, 16)
    assert [s.name for s in validation] == [f"Tile {t}/image_part_{p:03d}" for t in range(1, 9) for p in (8, 9)]
    assert {s.name for s in train} == {f"Tile {t}/image_part_{p:03d}" for t in range(1, 9) for p in range(1, 8)}


@needs_real_data
def test_real_palette_mask_and_unannotated_pixels():
    samples = {s.name: s for s in list_samples(REAL_DATA)}
    assert Image.open(samples["Tile 2/image_part_001"].mask_path).mode == "P"
    image, labels = load_sample(samples["Tile 2/image_part_001"])
    assert image.shape[:2] == labels.shape and set(np.unique(labels)) <= {0, 1, 2, 3, 4, 5}
    # 17.2 % of Tile 8 part 003 is black (never annotated).
    _, labels = load_sample(samples["Tile 8/image_part_003"])
    assert (labels == IGNORE).mean() == pytest.approx(0.172, abs=0.001)
