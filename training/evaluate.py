# SPDX-License-Identifier: GPL-2.0-or-later
"""Measure a model file the way the plugin runs it, beside the reference's own protocol.

`python -m training.evaluate MODEL [--out DIR] [--tta none|flips] [--split validation|training]`

- sliding window: the engine's `segment_array` (the plugin's tiling and blending code) on
  every validation image at its own resolution; pixel accuracy, per-class IoU and F1, mean
  IoU over the five real classes, pooled soft dice, confusion matrix; the same scores
  away from class boundaries, with the share of errors near them;
- reference protocol: the whole image squashed to 512x512 and scored there, as the
  reference reported its 0.81 dice / 0.86 accuracy.

Unannotated (black) pixels are left out everywhere. `--split training` scores the images
the model trained on instead: the gap between the two says whether more data or more
fitting would help. Writes metrics.json, metrics.md,
figures/ (image | true mask | predicted mask per validation image) and activations/
(feature maps of a few layers for one image).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from dubai_segmenter.engine.model_file import load_keras_model
from dubai_segmenter.engine.predictors import open_predictor, read_model_metadata
from dubai_segmenter.engine.segment import segment_array
from dubai_segmenter.engine.tta import TTA_MODES, with_tta
from training.dataset import REAL_CLASS_IDS, data_dir, load_sample
from training.inputs import squash
from training.metrics import AwayFromBoundaries, ScoreAccumulator, TemperatureScan
from training.plots import activation_grid, prediction_panel
from training.splits import training_split

REFERENCE_SIZE = 512
#: Half-widths (pixels) of the bands around class boundaries scored apart.
BOUNDARY_WIDTHS = (2, 8)
SPLITS = ("validation", "training")
#: What the reference project reported on the same 16 validation images (its README).
REFERENCE_PUBLISHED = {"soft_dice": 0.8112, "pixel_accuracy": 0.8573, "loss": 0.4268}


def evaluate_model(model_path: Path, out_dir: Path, data_root: Path | None = None, tile_size: int | None = None,
                   overlap: int | None = None, batch_size: int = 1, activation_layers: int = 5,
                   tta: str = "none", split: str = "validation") -> dict[str, Any]:
    """Score `model_path` on the reference validation images; write the report to `out_dir`.

    `model_path` may also be an ONNX export (float32 or int8), scored as ONNX Runtime runs
    it; its activation maps are not drawn (they need the Keras model). `tta` ("none" or
    "flips", engine.tta) wraps the predictor of both protocols. `split="training"` scores the
    training images instead.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    started = time.monotonic()
    out_dir = Path(out_dir)
    metadata = read_model_metadata(model_path)
    if Path(model_path).suffix.lower() == ".onnx":
        activation_layers = 0
    predictor = with_tta(open_predictor(model_path, tile_size), tta)
    squashed_predictor = (predictor if predictor.tile_size == REFERENCE_SIZE
                          else with_tta(open_predictor(model_path, REFERENCE_SIZE), tta))
    tile = predictor.tile_size
    overlap = metadata.overlap if overlap is None else overlap
    root = Path(data_root) if data_root is not None else data_dir()
    training, validation, split_name = training_split(root)
    scored = validation if split == "validation" else training
    window, reference, per_image = ScoreAccumulator(), ScoreAccumulator(), []
    boundaries = [AwayFromBoundaries(width) for width in BOUNDARY_WIDTHS]
    temperature = TemperatureScan()
    for number, sample in enumerate(scored, start=1):
        image, labels = load_sample(sample)
        inputs = image.astype(np.float32) * np.float32(metadata.input_scale)
        probabilities = segment_array(inputs, predictor, tile, overlap, batch_size)
        own = window.add(labels, probabilities)
        for accumulator in (*boundaries, temperature):
            accumulator.add(labels, probabilities)
        small_image, small_labels = squash(image, labels, REFERENCE_SIZE)
        small_inputs = small_image.astype(np.float32)[None] * np.float32(metadata.input_scale)
        squashed = reference.add(small_labels, squashed_predictor.predict(small_inputs)[0])
        per_image.append({"image": sample.name, "width": labels.shape[1], "height": labels.shape[0],
                          "pixel_accuracy": own["pixel_accuracy"], "mean_iou": own["mean_iou"],
                          "soft_dice": own["soft_dice"],
                          "reference_protocol_pixel_accuracy": squashed["pixel_accuracy"]})
        prediction_panel(image, labels, probabilities.argmax(axis=-1), f"{sample.name}: pixel accuracy "
                         f"{own['pixel_accuracy']:.3f}, mean IoU {_fmt(own['mean_iou'])}",
                         out_dir / "figures" / f"{sample.name.replace('/', '_').replace(' ', '_')}.png")
        print(f"[{number}/{len(scored)}] {sample.name}: accuracy {own['pixel_accuracy']:.3f}", flush=True)
    if activation_layers:
        activation_maps(model_path, load_sample(scored[0])[0], metadata.input_scale, tile,
                        activation_layers, out_dir / "activations")
    result = {
        "model": str(model_path),
        "model_recipe": metadata.provenance.get("recipe"),
        "tta": tta,
        "data_dir": str(root),
        "split": {"name": split_name, "scored": split, split: [s.name for s in scored]},
        "sliding_window": {"tile_size": tile, "overlap": overlap, **window.result()},
        "away_from_boundaries": [band.result() for band in boundaries],
        "temperature_scan": temperature.result(),
        "reference_protocol": {"image_size": REFERENCE_SIZE, **reference.result()},
        "reference_published": REFERENCE_PUBLISHED,
        "per_image": per_image,
        "seconds": round(time.monotonic() - started, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=1))
    (out_dir / "metrics.md").write_text(markdown_report(result))
    return result


def activation_maps(model_path: Path, image: np.ndarray, input_scale: float, tile: int, count: int,
                    out_dir: Path) -> list[str]:
    """Feature maps of `count` ReLU layers spread from input to output, plus the softmax head,
    for the centre tile of one image (what the reference showed with keract)."""
    import keras

    model = load_keras_model(model_path, tile)
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)
             and layer.activation is keras.activations.relu]
    chosen = [relus[i] for i in np.linspace(0, len(relus) - 1, min(count, len(relus))).astype(int)]
    chosen.append(model.layers[-1])
    probe = keras.Model(model.input, [layer.output for layer in chosen])
    top, left = max(0, (image.shape[0] - tile) // 2), max(0, (image.shape[1] - tile) // 2)
    crop = np.zeros((tile, tile, image.shape[2]), dtype=np.float32)
    piece = image[top:top + tile, left:left + tile]
    crop[:piece.shape[0], :piece.shape[1]] = piece * np.float32(input_scale)
    outputs = probe(crop[None], training=False)
    for index, (layer, output) in enumerate(zip(chosen, outputs)):
        activation_grid(np.asarray(output)[0], layer.name, out_dir / f"{index:02d}_{layer.name}.png")
    return [layer.name for layer in chosen]


def markdown_report(result: dict[str, Any]) -> str:
    """Headline table (ours beside the reference's), per-class table, confusion matrix."""
    window, squashed, published = result["sliding_window"], result["reference_protocol"], result["reference_published"]
    lines = [
        f"# Evaluation of {Path(result['model']).name} ({len(result['per_image'])} "
        f"{result['split']['scored']} images, "
        f"test-time augmentation: {result['tta']}, {result['seconds']:.0f} s)",
        "",
        "| protocol | pixel accuracy | mean IoU (5 classes) | soft dice (reference formula) |",
        "|---|---|---|---|",
        f"| sliding window, own resolution (tile {window['tile_size']}, overlap {window['overlap']}) "
        f"| {window['pixel_accuracy']:.4f} | {_fmt(window['mean_iou'])} | {window['soft_dice']:.4f} |",
        f"| reference protocol (squashed to {squashed['image_size']}) | {squashed['pixel_accuracy']:.4f} "
        f"| {_fmt(squashed['mean_iou'])} | {squashed['soft_dice']:.4f} |",
        f"| reference project, published | {published['pixel_accuracy']:.4f} | n/a | {published['soft_dice']:.4f} |",
        "",
        "| class | IoU (window) | F1 (window) | IoU (squashed) | validation pixels |",
        "|---|---|---|---|---|",
    ]
    for c in DUBAI_CLASSES:
        w, s = window["per_class"][c.key], squashed["per_class"][c.key]
        note = "" if c.id in REAL_CLASS_IDS else " (not in mean IoU)"
        lines.append(f"| {c.name}{note} | {_fmt(w['iou'])} | {_fmt(w['f1'])} | {_fmt(s['iou'])} | {w['support']} |")
    lines += ["", "Confusion matrix (sliding window; rows = true class, columns = predicted):", "",
              "| true \\ predicted | " + " | ".join(c.key for c in DUBAI_CLASSES) + " |",
              "|---|" + "---|" * len(DUBAI_CLASSES)]
    for c, row in zip(DUBAI_CLASSES, window["confusion_matrix"]):
        lines.append(f"| {c.key} | " + " | ".join(str(v) for v in row) + " |")
    lines += boundary_table(result["away_from_boundaries"]) + temperature_table(result["temperature_scan"])
    return "\n".join(lines) + "\n"


def boundary_table(bands: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: the sliding-window scores outside each band around class boundaries."""
    real = [c for c in DUBAI_CLASSES if c.id in REAL_CLASS_IDS]
    lines = ["", "Away from class boundaries (sliding window; the band is every pixel within that many "
             "pixels of a change of class):", "",
             "| band half-width | share of pixels in band | share of errors in band | accuracy outside "
             "| mean IoU outside | " + " | ".join(f"{c.key} IoU outside" for c in real) + " |",
             "|---|---|---|---|---|" + "---|" * len(real)]
    for band in bands:
        outside = band["outside_band"]
        lines.append(f"| {band['width']} px | {band['band_pixel_share']:.3f} | {band['band_error_share']:.3f} "
                     f"| {outside['pixel_accuracy']:.4f} | {_fmt(outside['mean_iou'])} | "
                     + " | ".join(_fmt(outside["per_class"][c.key]["iou"]) for c in real) + " |")
    return lines


def temperature_table(scan: dict[str, Any]) -> list[str]:
    """Markdown lines: NLL and soft dice of the sliding window's probabilities at each temperature."""
    return ["", f"Temperature (probabilities as p ** (1 / T); no predicted class changes; least NLL at "
            f"T = {scan['least_nll_temperature']}):", "", "| T | NLL per pixel | soft dice |", "|---|---|---|",
            *(f"| {t} | {nll:.4f} | {dice:.4f} |"
              for t, nll, dice in zip(scan["temperatures"], scan["nll_per_pixel"], scan["soft_dice"]))]


def default_report_folder(model: Path, tta: str, split: str) -> Path:
    """evaluation/ beside the model, with -tta-flips and -training-images when those apply."""
    return model.parent / ("evaluation" + ("" if tta == "none" else f"-tta-{tta}")
                           + ("" if split == "validation" else f"-{split}-images"))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a model file (.safetensors) written by training.export, "
                        "or an ONNX export of one (float32 or int8)")
    parser.add_argument("--out", type=Path, help="report folder (default: evaluation/ beside the model, "
                                                 "evaluation-tta-flips/ with --tta flips, "
                                                 "evaluation-training-images/ with --split training)")
    parser.add_argument("--tta", choices=TTA_MODES, default="none",
                        help="test-time augmentation: none, or flips (mean over the tile and its 3 flips)")
    parser.add_argument("--tile", type=int, help="sliding-window tile size (default: the model's)")
    parser.add_argument("--overlap", type=int, help="sliding-window overlap (default: the model's)")
    parser.add_argument("--batch", type=int, default=1, help="tiles per prediction call")
    parser.add_argument("--split", choices=SPLITS, default="validation",
                        help="images to score: the validation images (default), or the training images, "
                             "whose gap to the validation scores measures overfitting")
    parser.add_argument("--data", type=Path, help="dataset folder (default: $DATA_DIR); GeoTIFF pairs in "
                                                  "DIR/images and DIR/masks are scored on their validation pairs")
    args = parser.parse_args(argv)
    out = args.out or default_report_folder(args.model, args.tta, args.split)
    result = evaluate_model(args.model, out, args.data, tile_size=args.tile, overlap=args.overlap,
                            batch_size=args.batch, tta=args.tta, split=args.split)
    print(markdown_report(result))
    print(f"Report written to {out}")


if __name__ == "__main__":
    main()
