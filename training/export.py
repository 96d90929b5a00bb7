# SPDX-License-Identifier: GPL-2.0-or-later
"""Write a trained network as the engine's model file, with everything needed to trust it.

`python -m training.export RUN_DIR [--out FILE]` rebuilds the run's network in code, loads
its final weights (BatchNorm statistics already re-estimated by training.train) and writes
the model file with classes and colours, input scaling, tile size and overlap, the recipe,
the split, the validation metrics (when `evaluation/metrics.json` exists) and the code
version, plus its ONNX export beside it. training.train calls the same functions at the end of a run.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import keras

from dubai_segmenter.engine.architectures import build_model
from dubai_segmenter.engine.classes import DUBAI_CLASSES
from dubai_segmenter.engine.model_file import ModelMetadata, save_model
from dubai_segmenter.engine.onnx_file import export_onnx
from training.config import Recipe
from training.dataset import NUM_CLASSES
from training.inputs import INPUT_SCALE
from training.lineage import run_lineage, total

_REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_FILE = "model.safetensors"
FINAL_WEIGHTS = "final.weights.h5"


def code_version() -> str:
    """`git describe --always --dirty` of the repository, or "unknown" outside a checkout."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=_REPO_ROOT,
                              capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_network(recipe: Recipe, tile_size: int, encoder_weights: str | None = None) -> keras.Model:
    """The recipe's network from the engine's architectures (never a copy of them)."""
    return build_model(recipe.architecture, recipe.architecture_params, NUM_CLASSES, 3, tile_size,
                       encoder_weights=encoder_weights)


def model_metadata(recipe: Recipe, run: dict[str, Any], metrics: dict[str, Any] | None) -> ModelMetadata:
    """Metadata of the engine's model file for a run (`run` = the run's run.json)."""
    lineage = run_lineage(run)
    provenance = {
        "dataset": "Humans in the Loop / MBRSC 'Semantic segmentation of aerial imagery' (Dubai), CC0",
        "recipe": recipe.to_dict(),
        "split": run["split"],
        "training": run.get("training", {}),
        "lineage": lineage,
        "total_training_hours": total(lineage, "hours"),
        "total_cpu_hours": total(lineage, "cpu_hours"),
        "validation_metrics": metrics,
        "code_version": code_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return ModelMetadata(
        architecture=recipe.architecture,
        architecture_params=dict(recipe.architecture_params),
        classes=DUBAI_CLASSES,
        input_bands=3,
        input_scale=INPUT_SCALE,
        tile_size=recipe.tile_size,
        overlap=recipe.overlap,
        resolution=None,  # the dataset does not state its ground resolution
        provenance=provenance,
    )


def export_model(model: keras.Model, recipe: Recipe, run: dict[str, Any], path: Path,
                 metrics: dict[str, Any] | None = None) -> Path:
    """Write `model` as the engine's model file at `path` (atomically, by save_model), and its
    ONNX export beside it (same name, .onnx): the engine's `--backend auto` then runs the
    model on ONNX Runtime, the faster backend here, and an analyst needs no TensorFlow."""
    save_model(path, model, model_metadata(recipe, run, metrics))
    export_onnx(path, Path(path).with_suffix(".onnx"))
    return Path(path)


def export_run(run_dir: Path, out: Path | None = None) -> Path:
    """Model file of a finished run, from its final weights and (if any) its evaluation."""
    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    recipe = Recipe.from_dict(run["recipe"])
    weights = run_dir / FINAL_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist: the run has not finished "
                                f"(resume it with python -m training.train --out {run_dir})")
    model = build_network(recipe, recipe.image_size)
    model.load_weights(weights)
    metrics_path = run_dir / "evaluation" / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    return export_model(model, recipe, run, out or run_dir / MODEL_FILE, summary_metrics(metrics))


def summary_metrics(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The headline numbers of an evaluation (the model file is no place for per-image data)."""
    if metrics is None:
        return None
    keep = ("pixel_accuracy", "mean_iou", "soft_dice", "per_class", "tile_size", "overlap")
    return {protocol: {k: v for k, v in metrics[protocol].items() if k in keep}
            for protocol in ("sliding_window", "reference_protocol") if protocol in metrics}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a training run folder (runs/NAME)")
    parser.add_argument("--out", type=Path, help=f"model file to write (default RUN_DIR/{MODEL_FILE})")
    args = parser.parse_args(argv)
    print(export_run(args.run_dir, args.out))


if __name__ == "__main__":
    main()
