# SPDX-License-Identifier: GPL-2.0-or-later
"""The HITL / MBRSC Dubai dataset on disk: layout, masks, and the reference split
(an analyst's GeoTIFF pairs, training.geotiff_pairs, go through `training_split` too).

Layout: `<DATA_DIR>/Tile N/images/image_part_NNN.jpg` with its mask at
`Tile N/masks/image_part_NNN.png`. Masks are coloured PNGs (palette PNGs in Tiles 2 and 4)
decoded by the colours really found in the pixels (`DUBAI_CLASSES`), not those of the
dataset's classes.json. Pure black pixels were never annotated: they become `IGNORE` and
count neither in the loss nor in the metrics.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dubai_segmenter.engine.classes import DUBAI_CLASSES

#: Label of pixels nobody annotated (pure black in the masks). uint8 so label maps stay
#: cheap and go through OpenCV/albumentations unchanged.
IGNORE = 255
NUM_CLASSES = len(DUBAI_CLASSES)
#: The five real land-cover classes (Unlabeled excluded) over which mean IoU is taken.
REAL_CLASS_IDS: tuple[int, ...] = tuple(c.id for c in DUBAI_CLASSES if c.key != "unlabeled")
#: Parts held out for validation by the reference project, in every tile.
REFERENCE_VALIDATION_PARTS = frozenset({8, 9})

_REPO_ROOT = Path(__file__).resolve().parents[1]
_PART_RE = re.compile(r"^image_part_(\d{3})(?:_aug(\d+))?$")
_TILE_RE = re.compile(r"^Tile (\d+)$")


def data_dir() -> Path:
    """The dataset folder: `$DATA_DIR`, else ../shared/data/hitl-dubai beside the repo."""
    return Path(os.environ.get("DATA_DIR") or _REPO_ROOT.parent / "shared" / "data" / "hitl-dubai")


@dataclass(frozen=True)
class Sample:
    """One image/mask pair. `copy` numbers offline augmented copies (0 = the original)."""

    tile: int
    part: int
    image_path: Path
    mask_path: Path
    copy: int = 0
    #: Name of an analyst's GeoTIFF pair (training.geotiff_pairs); None in the HITL layout.
    label: str | None = None

    @property
    def name(self) -> str:
        if self.label is not None:
            return self.label
        suffix = f"_aug{self.copy}" if self.copy else ""
        return f"Tile {self.tile}/image_part_{self.part:03d}{suffix}"


def list_samples(root: Path | str | None = None) -> list[Sample]:
    """All image/mask pairs under `root`, sorted by tile, part and copy."""
    root = Path(root) if root is not None else data_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist; set DATA_DIR to the "
                                "folder holding 'Tile 1' .. 'Tile 8'")
    samples = []
    for tile_dir in root.iterdir():
        tile_match = _TILE_RE.match(tile_dir.name)
        if not tile_match or not (tile_dir / "images").is_dir():
            continue
        for image_path in (tile_dir / "images").glob("*.jpg"):
            part_match = _PART_RE.match(image_path.stem)
            if not part_match:
                continue
            mask_path = tile_dir / "masks" / (image_path.stem + ".png")
            if not mask_path.is_file():
                raise FileNotFoundError(f"{image_path} has no mask; expected {mask_path}")
            samples.append(Sample(int(tile_match.group(1)), int(part_match.group(1)), image_path,
                                  mask_path, int(part_match.group(2) or 0)))
    if not samples:
        raise FileNotFoundError(f"no 'Tile N/images/image_part_NNN.jpg' files under {root}; "
                                "set DATA_DIR to the HITL Dubai dataset folder")
    return sorted(samples, key=lambda s: (s.tile, s.part, s.copy))


def reference_split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, validation) as the reference drew it: parts 008 and 009 of every tile validate."""
    validation = [s for s in samples if s.part in REFERENCE_VALIDATION_PARTS]
    train = [s for s in samples if s.part not in REFERENCE_VALIDATION_PARTS]
    return train, validation


def describe_split(train: list[Sample], validation: list[Sample], name: str) -> dict:
    """The split as written into every run folder and model file."""
    return {"name": name, "train": [s.name for s in train], "validation": [s.name for s in validation]}


_COLOR_KEYS = np.array([(r << 16) | (g << 8) | b for r, g, b in (c.color for c in DUBAI_CLASSES)])
_KEY_ORDER = np.argsort(_COLOR_KEYS)
_SORTED_KEYS = _COLOR_KEYS[_KEY_ORDER]
_SORTED_IDS = np.array([DUBAI_CLASSES[i].id for i in _KEY_ORDER], dtype=np.uint8)


def decode_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 mask colours -> (H, W) uint8 class ids; black -> IGNORE.

    Any other colour is an error: it would mean the wrong colour table (e.g. classes.json).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a mask must be an RGB image, got shape {rgb.shape}")
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    labels = np.full(keys.shape, IGNORE, dtype=np.uint8)
    known = keys != 0
    index = np.clip(np.searchsorted(_SORTED_KEYS, keys[known]), 0, len(_SORTED_KEYS) - 1)
    matched = _SORTED_KEYS[index] == keys[known]
    if not matched.all():
        bad = keys[known][~matched][0]
        raise ValueError(f"mask colour {(bad >> 16, (bad >> 8) & 255, bad & 255)} is not a class "
                         "colour of DUBAI_CLASSES (nor black = unannotated)")
    labels[known] = _SORTED_IDS[index]
    return labels


def colorize(labels: np.ndarray) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 class colours; IGNORE -> black."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for c in DUBAI_CLASSES:
        palette[c.id] = c.color
    return palette[labels]


def read_rgb(path: Path | str) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; palette PNGs are expanded to their colours."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_rgb(path: Path | str, rgb: np.ndarray) -> None:
    """Write RGB pixels (JPEG or PNG by the file suffix)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write image {path}")


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8 RGB, labels (H, W) uint8) of one sample, sizes checked."""
    if sample.mask_path.suffix.lower() in (".tif", ".tiff"):
        from training.geotiff_pairs import load_pair

        return load_pair(sample)
    image = read_rgb(sample.image_path)
    labels = decode_mask(read_rgb(sample.mask_path))
    if image.shape[:2] != labels.shape:
        raise ValueError(f"{sample.name}: image {image.shape[:2]} and mask {labels.shape} sizes differ")
    return image, labels


def class_frequencies(labels: list[np.ndarray]) -> np.ndarray:
    """Share of each class among the annotated pixels of `labels` (IGNORE excluded)."""
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    for lab in labels:
        counts += np.bincount(lab[lab != IGNORE].ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
    return counts / max(counts.sum(), 1)
