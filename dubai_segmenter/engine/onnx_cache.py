# SPDX-License-Identifier: GPL-2.0-or-later
"""Make a model file's ONNX export once, beside it, so later runs use ONNX Runtime.

The released model is tracked in git as ``.safetensors`` only (the export would double
the repository's size and is made from it in a minute or two), so a fresh clone has no
export. ``open_predictor(..., cache_export=True)`` calls ``ensure_export`` first: when
there is no current export beside the model and the exporter (TensorFlow, tf2onnx, onnx)
is installed, it writes ``NAME.onnx`` beside ``NAME.safetensors`` (written under a hidden
name and renamed; ignored by git). When it cannot (exporter missing, read-only folder, a
failure), the run goes on with TensorFlow, and the reason is logged: either way the user
is told which backend runs and why.
"""
from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

from dubai_segmenter.engine.onnx_file import export_onnx

EXPORTER_MODULES = ("tensorflow", "tf2onnx", "onnx", "onnxruntime")
log = logging.getLogger("dubai_segmenter.engine.predictors")  # shown with the backend choice


def _missing_exporter_modules() -> list[str]:
    return [name for name in EXPORTER_MODULES if importlib.util.find_spec(name) is None]


def ensure_export(model_path: Path, tile_size: int, why_not_current: str) -> bool:
    """Export ``model_path`` to ``model_path.with_suffix('.onnx')`` at ``tile_size``; True when written.

    ``why_not_current`` is the reason the existing export (if any) cannot be used, for the log.
    Never raises for a failed export: the caller falls back to TensorFlow.
    """
    target = model_path.with_suffix(".onnx")
    missing = _missing_exporter_modules()
    if missing:
        log.info("no ONNX export made (%s; %s not installed)", why_not_current, ", ".join(missing))
        return False
    log.info("making the ONNX export %s once (%s); later runs reuse it", target, why_not_current)
    started = time.monotonic()
    try:
        export_onnx(model_path, target, tile_size)
    except (OSError, ValueError) as exc:  # a read-only folder, a full disk, a model the exporter refuses
        log.info("no ONNX export made: %s", exc)
        return False
    log.info("exported %s in %.0f s", target.name, time.monotonic() - started)
    return True
