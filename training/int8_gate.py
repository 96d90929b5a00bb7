# SPDX-License-Identifier: GPL-2.0-or-later
"""The int8 accuracy gate: export int8, score it beside float32, record the verdict in the file.

`python -m training.int8_gate MODEL.safetensors [--calibration DIR] [--out DIR]` (`make int8`)

1. the float32 ONNX export beside the model (made if missing or stale) and the int8 export
   `MODEL.int8.onnx` beside it, calibrated on training images (`engine/int8_export.py`);
2. `training.evaluate` on both, sliding window over the 16 validation images, as the
   plugin runs them;
3. the gate: int8 passes when its mean IoU is at most MAX_MEAN_IOU_DROP below float32's and
   no real class's IoU is more than MAX_CLASS_IOU_DROP below (gains never fail it);
4. the verdict, with both sets of scores, written into the int8 file's metadata
   (`accuracy_gate`), where `--backend auto` reads it, and to `gate.json` / `gate.md`.

Run it again after any change to the model file: the int8 file records the model's hash.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from dubai_segmenter.engine.int8_export import (
    CALIBRATION_TILES,
    calibration_images,
    calibration_set,
    export_int8_from_model,
    int8_path_for,
    stamp_accuracy_gate,
)
from dubai_segmenter.engine.model_file import read_metadata
from dubai_segmenter.engine.onnx_file import export_onnx, file_sha256, open_onnx_session, read_onnx_metadata
from training.dataset import REAL_CLASS_IDS, data_dir
from training.evaluate import evaluate_model

MAX_MEAN_IOU_DROP = 0.01
MAX_CLASS_IOU_DROP = 0.02


def gate_verdict(fp32: dict[str, Any], int8: dict[str, Any]) -> dict[str, Any]:
    """Compare two `evaluate_model` results (sliding window): the gate's verdict and its evidence."""
    window32, window8 = fp32["sliding_window"], int8["sliding_window"]
    real = [c.key for c in DUBAI_CLASSES if c.id in REAL_CLASS_IDS]
    class_drop = {key: window32["per_class"][key]["iou"] - window8["per_class"][key]["iou"] for key in real}
    mean_drop = window32["mean_iou"] - window8["mean_iou"]
    worst = max(class_drop, key=class_drop.get)
    failures = ([f"mean IoU {mean_drop:+.4f} below float32 (limit {MAX_MEAN_IOU_DROP})"]
                if mean_drop > MAX_MEAN_IOU_DROP else [])
    failures += [f"{key} IoU {drop:+.4f} below float32 (limit {MAX_CLASS_IOU_DROP})"
                 for key, drop in class_drop.items() if drop > MAX_CLASS_IOU_DROP]
    return {
        "passed": not failures,
        "failures": failures,
        "limits": {"mean_iou_drop": MAX_MEAN_IOU_DROP, "class_iou_drop": MAX_CLASS_IOU_DROP},
        "protocol": {"tile_size": window8["tile_size"], "overlap": window8["overlap"],
                     "validation_images": len(int8["per_image"]), "data_dir": int8["data_dir"]},
        "fp32": {"pixel_accuracy": window32["pixel_accuracy"], "mean_iou": window32["mean_iou"],
                 "iou": {key: window32["per_class"][key]["iou"] for key in real}},
        "int8": {"pixel_accuracy": window8["pixel_accuracy"], "mean_iou": window8["mean_iou"],
                 "iou": {key: window8["per_class"][key]["iou"] for key in real}},
        "worst_class": {"name": worst, "iou_drop": class_drop[worst]},
        "seconds": {"fp32": fp32["seconds"], "int8": int8["seconds"]},
    }


def gate_markdown(gate: dict[str, Any]) -> str:
    protocol = gate["protocol"]
    lines = [f"# int8 accuracy gate: {'passed' if gate['passed'] else 'FAILED'}", "",
             f"Sliding window (tile {protocol['tile_size']}, overlap {protocol['overlap']}) on "
             f"{protocol['validation_images']} validation images; limits: mean IoU drop <= "
             f"{gate['limits']['mean_iou_drop']}, per-class IoU drop <= {gate['limits']['class_iou_drop']}.", "",
             "| export | pixel accuracy | mean IoU | " + " | ".join(gate["fp32"]["iou"]) + " | evaluation s |",
             "|---|---|---|" + "---|" * (len(gate["fp32"]["iou"]) + 1)]
    for name in ("fp32", "int8"):
        scores = gate[name]
        lines.append(f"| {name} | {scores['pixel_accuracy']:.4f} | {scores['mean_iou']:.4f} | "
                     + " | ".join(f"{v:.4f}" for v in scores["iou"].values()) + f" | {gate['seconds'][name]:.0f} |")
    if "fp32_scores_from" in protocol:
        lines += ["", f"float32 scores (and their time) reused from {protocol['fp32_scores_from']}."]
    worst = gate["worst_class"]
    lines += ["", f"Largest class drop: {worst['name']} {worst['iou_drop']:+.4f}."]
    lines += [f"- {failure}" for failure in gate["failures"]]
    return "\n".join(lines) + "\n"


def int8_is_current(model_path: Path, int8_path: Path, calibration: Path, tiles: int) -> bool:
    """Whether `int8_path` was quantized from this very model file with this very calibration set."""
    if not int8_path.is_file():
        return False
    props = open_onnx_session(int8_path, threads=1).get_modelmeta().custom_metadata_map
    metadata = read_metadata(model_path)
    recorded = json.loads(props.get("calibration", "{}"))
    wanted = calibration_set(calibration_images(calibration), metadata.tile_size, metadata.input_bands,
                             metadata.input_scale, tiles, recorded.get("seed", 0), root=Path(calibration))
    return props.get("source_sha256") == file_sha256(model_path) and recorded.get("sha256") == wanted.sha256


def run_gate(model_path: Path, out_dir: Path, calibration: Path, tiles: int = CALIBRATION_TILES,
             data_root: Path | None = None, fp32_metrics: Path | None = None) -> dict[str, Any]:
    """Export float32 (if needed) and int8 beside `model_path`, score both, stamp the verdict.

    `fp32_metrics`: a float32 `metrics.json` of the same protocol to reuse instead of
    evaluating float32 again (e.g. the one shipped with a released model).
    """
    fp32_path = model_path.with_suffix(".onnx")
    current = False
    if fp32_path.is_file():
        _, _, source = read_onnx_metadata(open_onnx_session(fp32_path, threads=1), fp32_path)
        current = source == file_sha256(model_path)
    if not current:
        print(f"exporting {fp32_path}", flush=True)
        export_onnx(model_path, fp32_path)
    int8_path = int8_path_for(model_path)
    if int8_is_current(model_path, int8_path, calibration, tiles):
        print(f"{int8_path} is current (same model and calibration set): not quantized again", flush=True)
    else:
        print(f"quantizing to {int8_path} with {tiles} calibration tiles from {calibration}", flush=True)
        export_int8_from_model(model_path, int8_path, calibration, tiles)
    results = {}
    if fp32_metrics is not None:
        results["fp32"] = json.loads(Path(fp32_metrics).read_text())
        print(f"float32 scores from {fp32_metrics}", flush=True)
    for name, path in (("fp32", fp32_path), ("int8", int8_path)):
        if name not in results:
            print(f"evaluating {name}: {path}", flush=True)
            results[name] = evaluate_model(path, out_dir / name, data_root=data_root)
    window32, window8 = results["fp32"]["sliding_window"], results["int8"]["sliding_window"]
    if (window32["tile_size"], window32["overlap"]) != (window8["tile_size"], window8["overlap"]):
        raise ValueError(f"{fp32_metrics} was measured with another tile size or overlap; evaluate float32 again")
    gate = gate_verdict(results["fp32"], results["int8"])
    if fp32_metrics is not None:
        gate["protocol"]["fp32_scores_from"] = str(fp32_metrics)
    stamp_accuracy_gate(int8_path, gate)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gate.json").write_text(json.dumps(gate, indent=1))
    (out_dir / "gate.md").write_text(gate_markdown(gate))
    return gate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.int8_gate", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="model file (.safetensors) in a writable folder")
    parser.add_argument("--calibration", type=Path, help="training images to calibrate on (default: DATA_DIR)")
    parser.add_argument("--tiles", type=int, default=CALIBRATION_TILES, help="calibration tiles")
    parser.add_argument("--out", type=Path, help="report folder (default: int8-gate/ beside the model)")
    parser.add_argument("--fp32-metrics", type=Path, help="reuse this float32 metrics.json (same protocol) "
                        "instead of evaluating float32 again")
    args = parser.parse_args(argv)
    gate = run_gate(args.model, args.out or args.model.parent / "int8-gate", args.calibration or data_dir(), args.tiles,
                    fp32_metrics=args.fp32_metrics)
    print(gate_markdown(gate))


if __name__ == "__main__":
    main()
