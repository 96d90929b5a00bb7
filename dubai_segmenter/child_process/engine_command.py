# SPDX-License-Identifier: GPL-2.0-or-later
"""Argument lists for the engine's command line (``python -m dubai_segmenter ...``).

Argument lists, never a shell string: paths with spaces, quotes or ``;`` reach the
engine unchanged and nothing is ever interpreted by a shell. Every path is made absolute
because the child runs in the plugin's parent folder, not the caller's.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

_MODULE = ("-m", "dubai_segmenter")
_PROGRESS = ("--progress", "lines")


def _path(value: str | os.PathLike) -> str:
    return os.path.abspath(os.fspath(value))


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass(frozen=True)
class VectorizeOptions:
    """Which classes become polygons and how they are cleaned (engine defaults when None)."""

    classes: Sequence[str] | None = None  # class keys: "building", "road", ...
    min_area: float | None = None  # CRS units squared
    simplify: float | None = None  # CRS units

    def arguments(self) -> list[str]:
        args: list[str] = []
        if self.classes is not None:
            if not self.classes:
                raise ValueError("choose at least one class to vectorize")
            args += ["--classes", ",".join(self.classes)]
        if self.min_area is not None:
            args += ["--min-area", _number(self.min_area)]
        if self.simplify is not None:
            args += ["--simplify", _number(self.simplify)]
        return args


@dataclass(frozen=True)
class SegmentRequest:
    """One ``segment`` run: input, model and outputs, tiling overrides (model's when None)."""

    input_path: str
    model_path: str
    out_raster: str
    out_vector: str | None = None
    vectorize: VectorizeOptions = VectorizeOptions()
    bands: Sequence[int] | None = None  # 1-based
    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    resolution: float | None = None
    scheduler: str | None = None  # a Dask scheduler address: run on that cluster (same result)
    tta: str | None = None  # test-time augmentation (contract.TTA_MODES); None = the engine's default

    def arguments(self) -> list[str]:
        args = [*_MODULE, "segment", _path(self.input_path), "--model", _path(self.model_path),
                "--out-raster", _path(self.out_raster)]
        if self.out_vector is not None:
            args += ["--out-vector", _path(self.out_vector), *self.vectorize.arguments()]
        if self.bands:
            args += ["--bands", ",".join(str(int(b)) for b in self.bands)]
        for flag, value in (("--tile", self.tile_size), ("--overlap", self.overlap), ("--batch", self.batch_size)):
            if value is not None:
                args += [flag, str(int(value))]
        if self.resolution is not None:
            args += ["--resolution", _number(self.resolution)]
        if self.scheduler:
            args += ["--scheduler", self.scheduler]
        if self.tta is not None:
            args += ["--tta", self.tta]
        return args + list(_PROGRESS)

    def outputs(self) -> list[str]:
        return [_path(p) for p in (self.out_raster, self.out_vector) if p is not None]


@dataclass(frozen=True)
class VectorizeRequest:
    """One ``vectorize`` run: polygons of some classes of a classified GeoTIFF."""

    classified_path: str
    out_vector: str
    options: VectorizeOptions = VectorizeOptions()

    def arguments(self) -> list[str]:
        return [*_MODULE, "vectorize", _path(self.classified_path), "--out-vector", _path(self.out_vector),
                *self.options.arguments(), *_PROGRESS]

    def outputs(self) -> list[str]:
        return [_path(self.out_vector)]


def info_arguments(model_path: str | os.PathLike) -> list[str]:
    """``info MODEL --json``: the model's metadata as JSON on stdout (no TensorFlow needed)."""
    return [*_MODULE, "info", _path(model_path), "--json"]
