# SPDX-License-Identifier: GPL-2.0-or-later
"""Resumable checkpoints: model weights, optimizer state and the run's counters.

Each checkpoint is a folder `checkpoints/epoch-NNNN` written completely before the file
`checkpoints/latest` is switched to it (atomic rename), so a run killed mid-save resumes
from the previous complete checkpoint. Weights are Keras weight files; optimizer variables
Keras's weights file of a compiled model holds the optimizer variables too. Loading
restores values into a network rebuilt in code: nothing in a checkpoint is executed.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import keras

from dubai_segmenter.engine.atomic_file import written_atomically

_KEEP = 2


def save_checkpoint(run_dir: Path, model: keras.Model, state: dict[str, Any]) -> Path:
    """Write weights with optimizer variables and `state` (must hold "epoch"); keep the last two."""
    root = Path(run_dir) / "checkpoints"
    folder = root / f"epoch-{state['epoch']:04d}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.save_weights(folder / "model.weights.h5")
    (folder / "state.json").write_text(json.dumps(state, indent=1))
    with written_atomically(root / "latest") as latest:
        latest.write_text(folder.name)
    for old in sorted(root.glob("epoch-*"))[:-_KEEP]:
        shutil.rmtree(old)
    return folder


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The folder of the last complete checkpoint, or None for a fresh run."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    return pointer.parent / pointer.read_text().strip() if pointer.is_file() else None


def load_checkpoint(folder: Path, model: keras.Model) -> dict[str, Any]:
    """Restore weights and optimizer state into a compiled `model`; returns the saved state."""
    model.optimizer.build(model.trainable_variables)  # so its saved variables are loaded too
    with warnings.catch_warnings():
        # Keras only warns when saved variables do not fit (and keeps fresh values): refuse.
        warnings.simplefilter("error", UserWarning)
        try:
            model.load_weights(folder / "model.weights.h5")
        except (UserWarning, ValueError) as exc:
            raise ValueError(f"{folder}: the checkpoint does not fit this network and optimizer "
                             f"(another recipe?): {exc}") from exc
    return json.loads((folder / "state.json").read_text())
