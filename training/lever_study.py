# SPDX-License-Identifier: GPL-2.0-or-later
"""The lever study of issue 11: short continuations of one model, one knob changed each.

    python -m training.lever_study --init-from models/dubai-native-v1.safetensors --out ../runs/levers
    python -m training.lever_study ... --only bf16-s42-ema rot90 --steps 300

Every experiment starts from the same model file with the same seed (42) and step budget,
so differences come from its knob; `bf16-s7-ema` repeats the baseline with another seed
for the noise floor. `fp32-s42` against `bf16-s42-ema` (its last weights) is the bfloat16
check: same steps, same crops, two arithmetics. The EMA runs also export their last
weights, which makes them the baseline rows and the weight-averaging measurement at once.
Each experiment is a run folder under --out; a finished one is skipped, an interrupted one
resumes. The table at the end comes from training.compare.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import keras

from training.compare import markdown, rows
from training.config import NATIVE
from training.train import train

BF16 = {"precision": "mixed_bfloat16"}
#: name -> recipe knobs changed from `native`, in the order they run (most informative first).
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "fp32-s42": {"precision": "float32"},
    "bf16-s42-ema": {**BF16, "ema_momentum": 0.99},
    "bf16-s7-ema": {**BF16, "ema_momentum": 0.99, "seed": 7},
    "classaware": {**BF16, "class_aware_crops": 0.5, "class_weight_power": 0.25},
    "rot90": {**BF16, "rotation": "rot90"},
    "lovasz": {**BF16, "lovasz_weight": 0.5, "lovasz_from": 0.5},
    "dropout0": {**BF16, "architecture_params": {**NATIVE.architecture_params, "dropout": 0.0}},
    "progressive": {**BF16, "final_crop_size": 384},
}


def run_study(init_from: Path, out: Path, steps: int, only: list[str] | None = None,
              base: dict[str, Any] | None = None, data_root: Path | None = None) -> str:
    """Train (or resume, or skip) each experiment and return the comparison table."""
    names = only or list(EXPERIMENTS)
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(EXPERIMENTS)}")
    for name in names:
        if not (out / name / "evaluation" / "metrics.json").is_file():
            recipe = NATIVE.with_overrides(**{**(base or {}), **EXPERIMENTS[name]})
            train(recipe, out / name, steps=steps, data_root=data_root, init_from=init_from)
            keras.backend.clear_session()  # the next experiment builds its networks afresh
    return markdown([row for name in names for row in rows(out / name)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.lever_study", description=__doc__.splitlines()[0])
    parser.add_argument("--init-from", type=Path, required=True, metavar="MODEL.safetensors")
    parser.add_argument("--out", type=Path, required=True, help="folder of the experiments' run folders")
    parser.add_argument("--steps", type=int, default=300, help="steps per experiment (default 300)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"experiments to run, of: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--data", type=Path, help="dataset folder (default: $DATA_DIR)")
    args = parser.parse_args(argv)
    if not args.init_from.is_file():
        parser.error(f"--init-from: {args.init_from} does not exist")
    try:
        print(run_study(args.init_from, args.out, args.steps, args.only, data_root=args.data))
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    main()
