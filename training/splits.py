# SPDX-License-Identifier: GPL-2.0-or-later
"""Which images train and which validate, for any dataset folder training accepts.

Two layouts: the HITL Dubai dataset (training.dataset) with the reference project's split,
and an analyst's own GeoTIFF image/mask pairs (training.geotiff_pairs), checked here
before anything trains on them.
"""
from __future__ import annotations

from pathlib import Path

from training.dataset import Sample, data_dir, list_samples, reference_split
from training.geotiff_pairs import is_pair_layout, list_pairs, split_pairs

REFERENCE_SPLIT_NAME = "reference (validation = image_part_008 and image_part_009 of every tile)"


def training_split(root: Path | str | None = None) -> tuple[list[Sample], list[Sample], str]:
    """(train, validation, split name) of the dataset folder `root` (default: data_dir())."""
    root = Path(root) if root is not None else data_dir()
    if is_pair_layout(root):
        return split_pairs(list_pairs(root))
    return (*reference_split(list_samples(root)), REFERENCE_SPLIT_NAME)
