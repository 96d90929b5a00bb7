# SPDX-License-Identifier: GPL-2.0-or-later
"""A model file's metadata for the dock, read by the engine in a child process.

The engine's ``info MODEL --json`` prints the metadata the model file carries (classes,
tile size, overlap, resolution, provenance with validation metrics). Reading it through
the engine, not by parsing the file here, keeps one reader of the model format.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from ..child_process.engine_command import info_arguments
from ..child_process.runner import run_engine
from ..engine.classes import ClassInfo


@dataclass(frozen=True)
class ModelInfo:
    """The parts of a model's metadata the dock uses for defaults and its summary."""

    path: str
    architecture: str
    classes: tuple[ClassInfo, ...]
    input_bands: int
    tile_size: int
    overlap: int
    resolution: float | None
    provenance: dict[str, Any]

    @classmethod
    def from_json(cls, path: str, text: str) -> ModelInfo:
        data = json.loads(text)
        classes = tuple(ClassInfo(int(c["id"]), str(c["name"]), tuple(c["color"])) for c in data["classes"])
        return cls(path, data["architecture"], classes, int(data["input_bands"]), int(data["tile_size"]),
                   int(data["overlap"]), data.get("resolution"), data.get("provenance") or {})


def read_model_info(python: str, path: str) -> ModelInfo:
    """Ask the engine for ``path``'s metadata (raises EngineError with its message if it is not a model)."""
    lines = run_engine(python, info_arguments(path))
    return ModelInfo.from_json(path, "\n".join(lines))


def _metrics(provenance: dict[str, Any]) -> dict[str, Any]:
    metrics = provenance.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def summary_html(info: ModelInfo) -> str:
    """Short HTML summary: architecture, classes as colour swatches, tiling, metrics."""
    swatches = " ".join(
        f'<span style="background-color: rgb{c.color}">&nbsp;&nbsp;&nbsp;</span>&nbsp;{html.escape(c.name)}'
        for c in info.classes
    )
    resolution = "unknown" if info.resolution is None else f"{info.resolution:g} m/pixel"
    lines = [
        f"<b>{html.escape(info.architecture)}</b>, {info.input_bands} input bands",
        f"Classes: {swatches}",
        f"Tile {info.tile_size} px, overlap {info.overlap} px; training resolution {resolution}",
    ]
    metrics = _metrics(info.provenance)
    if metrics:
        shown = ", ".join(
            f"{html.escape(str(k))} {v:.3f}" if isinstance(v, float) else f"{html.escape(str(k))} {html.escape(str(v))}"
            for k, v in sorted(metrics.items()) if not isinstance(v, (dict, list))
        )
        lines.append(f"Validation: {shown}")
    for key in ("dataset", "created"):
        if key in info.provenance and not isinstance(info.provenance[key], (dict, list)):
            lines.append(f"{key.capitalize()}: {html.escape(str(info.provenance[key]))}")
    return "<br>".join(lines)
