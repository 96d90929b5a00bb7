# SPDX-License-Identifier: GPL-2.0-or-later
"""tf.data input pipelines of the two recipes: what the network sees, batch by batch.

Everything is decoded into memory once (the 56 training images are 77 M pixels, about
300 MB with their labels), so an epoch never waits for JPEG decoding. Native crops are
cut and augmented on the fly in a generator: about 2 ms per 256-pixel crop, against
seconds per training step on the CPU, and `prefetch` overlaps the two.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from training.augment import crop_window, make_offline_copies, native_pipeline, pad_for_native_crops
from training.config import Recipe
from training.dataset import REAL_CLASS_IDS, Sample, load_sample

INPUT_SCALE = 1.0 / 255.0
#: Pixels remembered per class and image as centres of class-aware crops (a sample keeps
#: the memory small; thousands per image are plenty of distinct crops).
CENTRES_PER_IMAGE = 2000


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> the model's float32 input (the reference's 1/255, no ImageNet centring)."""
    return images.astype(np.float32) * np.float32(INPUT_SCALE)


def squash(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's loading: the whole image resized to size x size, nearest neighbour."""
    return (cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST),
            cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST))


def load_all(samples: list[Sample]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [load_sample(s) for s in samples]


def squashed_arrays(samples: list[Sample], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 images and (N, size, size) labels, every sample squashed."""
    pairs = [squash(*load_sample(s), size) for s in samples]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def grid_crops(pairs: list[tuple[np.ndarray, np.ndarray]], crop: int, per_image: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed crops at native resolution, spread over each image (validation in crop mode).

    Deterministic, so every epoch's validation numbers compare the same pixels.
    """
    images, labels = [], []
    side = int(np.ceil(np.sqrt(per_image)))
    for image, lab in pairs:
        image, lab = _pad_to(image, lab, crop)
        height, width = lab.shape
        spots = [(r, c) for r in np.linspace(0, height - crop, side).astype(int)
                 for c in np.linspace(0, width - crop, side).astype(int)][:per_image]
        for r, c in spots:
            images.append(image[r:r + crop, c:c + crop])
            labels.append(lab[r:r + crop, c:c + crop])
    return np.stack(images), np.stack(labels)


def _pad_to(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    pad_h, pad_w = max(0, size - labels.shape[0]), max(0, size - labels.shape[1])
    if not pad_h and not pad_w:
        return image, labels
    border = dict(top=0, bottom=pad_h, left=0, right=pad_w, borderType=cv2.BORDER_REFLECT_101)
    return cv2.copyMakeBorder(image, **border), cv2.copyMakeBorder(labels, **border)


def random_crops(pairs: list[tuple[np.ndarray, np.ndarray]], recipe: Recipe, seed: int,
                 augment: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless augmented native-resolution crops; images drawn in proportion to their area.

    Area-proportional drawing and reflect-padded images (augment.native_border) make every
    training pixel about equally likely, as the pooled validation metrics weigh them;
    consecutive crops come from any tile, so batches mix. With `recipe.class_aware_crops`
    that share of the augmented crops is centred on a pixel of a class drawn uniformly
    instead (`class_centres`).
    """
    rng = np.random.default_rng(seed)
    areas = np.array([lab.size for _, lab in pairs], dtype=np.float64)
    pipeline = native_pipeline(recipe.image_size, seed=seed, rotation=recipe.rotation) if augment else None
    if pipeline is not None:  # reflect-padded, so border pixels are drawn as often as the rest
        pairs = [pad_for_native_crops(image, labels, recipe.image_size, recipe.rotation) for image, labels in pairs]
    centres = class_centres(pairs, rng) if pipeline is not None and recipe.class_aware_crops else None
    window = crop_window(recipe.image_size, recipe.rotation)
    while True:
        if centres and rng.random() < recipe.class_aware_crops:
            image, labels = window_on_class(pairs, centres, window, rng)
        else:
            image, labels = pairs[rng.choice(len(pairs), p=areas / areas.sum())]
        if pipeline is None:
            image, labels = _pad_to(image, labels, recipe.image_size)
            r = rng.integers(0, labels.shape[0] - recipe.image_size + 1)
            c = rng.integers(0, labels.shape[1] - recipe.image_size + 1)
            yield scale(image[r:r + recipe.image_size, c:c + recipe.image_size]), \
                labels[r:r + recipe.image_size, c:c + recipe.image_size]
        else:
            out = pipeline(image=image, mask=labels)
            yield scale(out["image"]), out["mask"]


def class_centres(pairs: list[tuple[np.ndarray, np.ndarray]],
                  rng: np.random.Generator) -> dict[int, list[tuple[int, int, np.ndarray]]]:
    """For each real class present: (image index, its pixel count, up to CENTRES_PER_IMAGE
    of its (row, col) positions) per image holding it."""
    centres: dict[int, list[tuple[int, int, np.ndarray]]] = {}
    for index, (_, labels) in enumerate(pairs):
        for class_id in REAL_CLASS_IDS:
            rows, cols = np.nonzero(labels == class_id)
            if len(rows):
                keep = rng.choice(len(rows), size=min(len(rows), CENTRES_PER_IMAGE), replace=False)
                centres.setdefault(class_id, []).append((index, len(rows), np.stack([rows[keep], cols[keep]], 1)))
    return centres


def window_on_class(pairs: list[tuple[np.ndarray, np.ndarray]], centres: dict[int, list[tuple[int, int, np.ndarray]]],
                    window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A `window`-pixel square (less at an image's edge) centred on a pixel of a class drawn
    uniformly; the image is drawn in proportion to how many pixels of that class it has."""
    holders = centres[list(centres)[rng.integers(len(centres))]]
    counts = np.array([count for _, count, _ in holders], dtype=np.float64)
    index, _, positions = holders[rng.choice(len(holders), p=counts / counts.sum())]
    row, col = positions[rng.integers(len(positions))]
    image, labels = pairs[index]
    top = int(np.clip(row - window // 2, 0, max(labels.shape[0] - window, 0)))
    left = int(np.clip(col - window // 2, 0, max(labels.shape[1] - window, 0)))
    return image[top:top + window, left:left + window], labels[top:top + window, left:left + window]


def crop_dataset(pairs, recipe: Recipe, seed: int, augment: bool = True) -> tf.data.Dataset:
    """Batches of native crops, prefetched so the next batch is ready when a step ends."""
    size = recipe.image_size
    signature = (tf.TensorSpec((size, size, 3), tf.float32), tf.TensorSpec((size, size), tf.uint8))
    return (tf.data.Dataset.from_generator(lambda: random_crops(pairs, recipe, seed, augment),
                                           output_signature=signature)
            .batch(recipe.batch_size, drop_remainder=True)
            .prefetch(2))


def array_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Batches from in-memory arrays; shuffled and endless when a seed is given (training)."""
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    if seed is not None:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    return data.map(lambda x, y: (tf.cast(x, tf.float32) * INPUT_SCALE, y)).batch(batch_size).prefetch(2)


def training_data(recipe: Recipe, train: list[Sample], run_dir: Path, seed: int) -> tf.data.Dataset:
    """The endless training batches of a recipe."""
    if recipe.input_mode == "crops":
        return crop_dataset(load_all(train), recipe, seed)
    if recipe.input_mode == "squash":
        samples = list(train)
        if recipe.offline_copies:
            samples += make_offline_copies(train, run_dir / "augmented", recipe)
        images, labels = squashed_arrays(samples, recipe.image_size)
        return array_dataset(images, labels, recipe.batch_size, seed)
    raise ValueError(f"unknown input mode {recipe.input_mode!r} in recipe {recipe.name!r}")


def validation_data(recipe: Recipe, validation: list[Sample]) -> tf.data.Dataset:
    """The fixed per-epoch validation batches (squashed images, or a grid of native crops)."""
    if recipe.input_mode == "crops":
        images, labels = grid_crops(load_all(validation), recipe.image_size, recipe.validation_crops_per_image)
    else:
        images, labels = squashed_arrays(validation, recipe.image_size)
    return array_dataset(images, labels, recipe.batch_size, seed=None)


def calibration_batches(recipe: Recipe, train: list[Sample], seed: int) -> Iterator[np.ndarray]:
    """Un-augmented training inputs, as the deployed model will see them, for BatchNorm
    re-estimation (augmented colours would shift the statistics)."""
    if recipe.input_mode == "crops":
        crops = random_crops(load_all(train), recipe, seed, augment=False)
        while True:
            yield np.stack([next(crops)[0] for _ in range(recipe.batch_size)])
    images, _ = squashed_arrays(train, recipe.image_size)
    order = np.random.default_rng(seed).permutation(len(images))
    for start in range(0, len(order), recipe.batch_size):
        yield scale(images[order[start:start + recipe.batch_size]])
