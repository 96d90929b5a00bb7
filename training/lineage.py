# SPDX-License-Identifier: GPL-2.0-or-later
"""Starting a run from a model file (`--init-from`) and the chain of runs behind a model.

The weights come through the engine's safe loader (`load_keras_model`: safetensors, the
network rebuilt in code, every tensor's shape checked), so a shared model file never runs
code. Before that, the file's architecture, classes and input are checked against the
recipe, with an error that says what differs. The optimizer starts fresh (its state is not
in a model file) and the schedule starts a new cycle with a short warm-up
(training.schedule).

Every model file records its lineage: the runs it was trained in, oldest first, with their
steps and hours, so a model continued over several sessions shows its total training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from dubai_segmenter.engine.architectures import resolve_params
from dubai_segmenter.engine.classes import DUBAI_CLASSES
from dubai_segmenter.engine.model_file import ModelMetadata, load_keras_model, read_metadata
from dubai_segmenter.engine.onnx_file import file_sha256
from training.config import Recipe
from training.inputs import INPUT_SCALE

#: Architecture parameters that shape no weight: a run may change them from its starting model
#: (e.g. head dropout 0.3 -> 0).
WEIGHTLESS_PARAMS = ("dropout", "bn_momentum")


def check_compatible(metadata: ModelMetadata, recipe: Recipe, path: Path) -> None:
    """Raise ValueError naming the first thing in which the model file differs from the recipe."""
    theirs = (metadata.architecture, _weighted(metadata.architecture, metadata.architecture_params))
    ours = (recipe.architecture, _weighted(recipe.architecture, recipe.architecture_params))
    if theirs != ours:
        raise ValueError(f"{path}: its network is {theirs[0]} {theirs[1]} but recipe {recipe.name!r} builds "
                         f"{ours[0]} {ours[1]}; choose a model of this recipe or set the recipe's "
                         "architecture with --set")
    file_classes = [(c.id, c.name) for c in metadata.classes]
    recipe_classes = [(c.id, c.name) for c in DUBAI_CLASSES]
    if file_classes != recipe_classes:
        raise ValueError(f"{path}: its classes {file_classes} are not the training data's {recipe_classes}; "
                         "--init-from needs a model of the same classes")
    if metadata.input_bands != 3 or abs(metadata.input_scale - INPUT_SCALE) > 1e-12:
        raise ValueError(f"{path}: it takes {metadata.input_bands} bands scaled by {metadata.input_scale}, "
                         f"training feeds 3 bands scaled by {INPUT_SCALE}")


def _weighted(architecture: str, params: dict[str, Any]) -> dict[str, Any]:
    resolved = resolve_params(architecture, params)
    return {name: value for name, value in resolved.items() if name not in WEIGHTLESS_PARAMS}


def init_record(path: Path, recipe: Recipe) -> dict[str, Any]:
    """What run.json records about the model file a run starts from (checked against the recipe)."""
    path = Path(path)
    metadata = read_metadata(path)
    check_compatible(metadata, recipe, path)
    return {"path": str(path), "sha256": file_sha256(path), "lineage": model_lineage(metadata, path)}


def load_initial_weights(model: keras.Model, path: Path, recipe: Recipe) -> None:
    """Set `model`'s weights from the model file at `path` (checked first), optimizer untouched."""
    check_compatible(read_metadata(path), recipe, Path(path))
    source = load_keras_model(path, recipe.image_size)
    model.set_weights(source.get_weights())


def model_lineage(metadata: ModelMetadata, path: Path) -> list[dict[str, Any]]:
    """The runs behind a model file, oldest first; a file without a lineage is one run."""
    provenance = metadata.provenance
    if provenance.get("lineage"):
        return list(provenance["lineage"])
    training = provenance.get("training", {})
    return [{"model": Path(path).name, "steps": training.get("steps"), "hours": training.get("hours"),
             "cpu_hours": training.get("cpu_hours"), "code_version": provenance.get("code_version"),
             "created": provenance.get("created")}]


def run_lineage(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The lineage of a run's model (`run` = its run.json): its starting model's runs, then this run."""
    training = run.get("training", {})
    this = {"run": run.get("name"), "started": run.get("started"), "steps": training.get("steps"),
            "hours": training.get("hours"), "cpu_hours": training.get("cpu_hours")}
    if run.get("init_from"):
        this["init_from_sha256"] = run["init_from"]["sha256"]
        return [*run["init_from"]["lineage"], this]
    return [this]


def total(lineage: list[dict[str, Any]], key: str) -> float | None:
    """Sum of `key` (hours, cpu_hours) over the lineage; None when a run did not record it."""
    values = [entry.get(key) for entry in lineage]
    return None if any(v is None for v in values) else round(sum(values), 3)
