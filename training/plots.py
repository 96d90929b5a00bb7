# SPDX-License-Identifier: GPL-2.0-or-later
"""Figures of a run: learning curves, prediction panels, per-layer activation maps."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window (and never Qt next to QGIS)
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from training.dataset import colorize

#: Logged quantities drawn as curves, each with its val_ twin when present.
_CURVES = ("loss", "masked_accuracy", "soft_dice", "mean_iou")


def learning_curves(csv_path: Path, png_path: Path) -> None:
    """One panel per metric, training and validation against the epoch, plus the learning rate."""
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    names = [n for n in _CURVES if n in rows[0]] + (["learning_rate"] if "learning_rate" in rows[0] else [])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in rows[0]:  # validation runs every few epochs: the others hold nan
                points = [(e, float(r[key])) for e, r in zip(epochs, rows) if np.isfinite(float(r[key]))]
                ax.plot([e for e, _ in points], [v for _, v in points], style, marker=".", label=key)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if name == "learning_rate":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, png_path)


def prediction_panel(image: np.ndarray, labels: np.ndarray, predicted: np.ndarray, title: str,
                     png_path: Path, max_side: int = 900) -> None:
    """image | true mask | predicted mask in the class colours (black = not annotated)."""
    step = max(1, int(np.ceil(max(labels.shape) / max_side)))  # figures, not full-resolution copies
    panels = (image[::step, ::step], colorize(labels[::step, ::step]), colorize(predicted[::step, ::step]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    for ax, panel, name in zip(axes, panels, ("image", "true mask", "predicted mask")):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    handles = [Patch(color=np.array(c.color) / 255, label=c.name) for c in DUBAI_CLASSES]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    _save(fig, png_path)


def activation_grid(activation: np.ndarray, layer_name: str, png_path: Path, channels: int = 16) -> None:
    """The first `channels` feature maps of one layer's output for one image, as one mosaic
    (each map scaled to its own range; one image, not one axes per map, keeps it fast)."""
    count = min(channels, activation.shape[-1])
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    height, width = activation.shape[:2]
    mosaic = np.full((rows * (height + 2), cols * (width + 2)), np.nan, dtype=np.float32)
    for i in range(count):
        band = activation[..., i].astype(np.float32)
        span = float(band.max() - band.min())
        r, c = divmod(i, cols)
        mosaic[r * (height + 2):r * (height + 2) + height, c * (width + 2):c * (width + 2) + width] = \
            (band - band.min()) / span if span > 0 else 0.0
    fig, ax = plt.subplots(figsize=(8, 8 * mosaic.shape[0] / mosaic.shape[1] + 0.5))
    ax.imshow(mosaic, cmap="viridis", interpolation="nearest")
    ax.axis("off")
    ax.set_title(f"{layer_name} {tuple(activation.shape)}: first {count} channels", fontsize=9)
    _save(fig, png_path)


def _save(fig, png_path: Path) -> None:
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
