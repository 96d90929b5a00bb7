# SPDX-License-Identifier: GPL-2.0-or-later
"""One markdown table of several training runs' sliding-window scores, for lever studies.

    python -m training.compare ../runs/levers/fp32-s42 ../runs/levers/bf16-s42-ema ...

Each run folder gives a row per evaluation it holds (`evaluation/` and, for an EMA run,
`evaluation-without-ema/`), with the recipe knobs in which it differs from its recipe's
defaults, so a table says what was changed without a separate key. Runs are read, never
changed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from training.config import Recipe, get_recipe
from training.dataset import REAL_CLASS_IDS

EVALUATIONS = {"evaluation": "", "evaluation-without-ema": " (last weights)"}


def changed_knobs(recipe: dict[str, Any]) -> dict[str, Any]:
    """The knobs of a run.json recipe that differ from the named recipe's defaults."""
    ours = Recipe.from_dict(recipe).to_dict()
    defaults = get_recipe(ours["name"]).to_dict()
    return {k: v for k, v in ours.items() if v != defaults.get(k)}


def rows(run_dir: Path) -> list[dict[str, Any]]:
    """The table rows of one run folder: one per evaluation folder with a metrics.json."""
    run = json.loads((run_dir / "run.json").read_text())
    training = run.get("training", {})
    found = []
    for folder, suffix in EVALUATIONS.items():
        metrics_path = run_dir / folder / "metrics.json"
        if not metrics_path.is_file():
            continue
        window = json.loads(metrics_path.read_text())["sliding_window"]
        knobs = changed_knobs(run["recipe"])
        if "architecture_params" in knobs:
            knobs["architecture_params"] = {k: v for k, v in knobs["architecture_params"].items()
                                            if v != get_recipe(run["recipe"]["name"]).architecture_params.get(k)}
        found.append({
            "run": run_dir.name + suffix,
            "changes": ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(knobs.items())) or "none",
            "precision": run.get("precision", {}).get("policy", "float32"),
            "steps": training.get("steps"),
            "cpu_hours": training.get("cpu_hours"),
            "accuracy": window["pixel_accuracy"], "mean_iou": window["mean_iou"], "soft_dice": window["soft_dice"],
            **{c.key: window["per_class"][c.key]["iou"] for c in DUBAI_CLASSES if c.id in REAL_CLASS_IDS},
        })
    return found


def markdown(table: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, scores to 3 decimals."""
    if not table:
        return "(no evaluated runs)"
    columns = list(table[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (with run.json and evaluation/)")
    args = parser.parse_args(argv)
    missing = [str(r) for r in args.runs if not (r / "run.json").is_file()]
    if missing:
        parser.error(f"not a run folder (no run.json): {', '.join(missing)}")
    print(markdown([row for run in args.runs for row in rows(run)]))


if __name__ == "__main__":
    main()
