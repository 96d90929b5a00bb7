# SPDX-License-Identifier: GPL-2.0-or-later
"""Tiny models with other classes than Dubai's six (3 and 8), for the model-driven-class tests.

Like the colour model, each classifies a raster painted in its class colours exactly
(nearest colour). Built in a child process (``python -m tests.qgis.class_models OUT N``):
building a model imports TensorFlow, which the QGIS test process must not load.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dubai_segmenter.engine.classes import ClassInfo

#: Eight distinct classes; a model of N classes uses the first N. None is named building,
#: road or water, so the defaults must come from the model, not from the Dubai classes;
#: "Unlabeled" is a catch-all that the defaults leave out.
OTHER_CLASSES = (
    ClassInfo(0, "Tree canopy", (20, 120, 20)),
    ClassInfo(1, "Grass", (140, 220, 90)),
    ClassInfo(2, "Bare soil", (200, 150, 90)),
    ClassInfo(3, "Pavement", (90, 90, 90)),
    ClassInfo(4, "Roof tiles", (220, 40, 40)),
    ClassInfo(5, "Solar panels", (20, 30, 160)),
    ClassInfo(6, "Unlabeled", (160, 160, 160)),
    ClassInfo(7, "Pool", (40, 220, 240)),
)


def classes_of(count: int) -> tuple[ClassInfo, ...]:
    return OTHER_CLASSES[:count]


def stripes(count: int, height: int = 64, width: int = 128) -> np.ndarray:
    """Class ids in vertical stripes, every class present."""
    return (np.arange(width)[None, :] * count // width).repeat(height, axis=0).astype(np.uint8)


def paint_classes(class_ids: np.ndarray, classes: tuple[ClassInfo, ...]) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) image in ``classes``' colours."""
    return np.array([c.color for c in classes], dtype=np.uint8)[np.asarray(class_ids)]


def save_class_model(path: Path, count: int) -> Path:
    from dubai_segmenter.engine.architectures import PIXEL_LINEAR, build_model
    from dubai_segmenter.engine.model_file import save_model
    from tests.engine.helpers import COLOUR_SCALE, colour_metadata

    classes = classes_of(count)
    centres = np.array([c.color for c in classes], dtype=np.float64) / 255
    kernel = (2 * COLOUR_SCALE * centres.T)[None, None].astype(np.float32)
    bias = (-COLOUR_SCALE * (centres**2).sum(axis=1)).astype(np.float32)
    model = build_model(PIXEL_LINEAR, {}, count, 3, 64)
    model.set_weights([kernel, bias])
    save_model(path, model, colour_metadata(classes=classes, provenance={"recipe": f"{count} colours"}))
    return path


if __name__ == "__main__":
    save_class_model(Path(sys.argv[1]), int(sys.argv[2]))
