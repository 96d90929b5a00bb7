# SPDX-License-Identifier: GPL-2.0-or-later
"""Segmentation speed with the full model, and memory on growing rasters with a tiny model.

1. The reference network (InceptionResNetV2 U-Net, random weights, saved to a model file
   and opened like a user's) segments a synthetic RGB raster at tile 512 with overlap
   0/64/128 and batch 1/2/4. Reported: megapixels per second, the share of wall time spent
   outside the model (reading, tiling, blending, writing; target < 5 %), and the model's
   achieved FLOP/s against the matmul peak measured in the same run. The model's FLOPs
   are counted from its convolution layers (2 x multiply-adds), not estimated.
   On a raster this small the tiles at the edges weigh a lot: overlap O costs about
   (T / (T - O))^2 more tiles on a large raster, more here.
2. A tiny model (pixel_linear, tile 512, overlap 128, so blending, I/O and bookkeeping
   dominate) segments 1,000^2, 5,000^2 and 20,000^2 rasters, each in a fresh child process
   (argument list) whose own peak RSS is measured. The working set must depend on the
   raster's width only: target < 200 MB growth from the smallest to the largest. A wide
   (20,000 x 1,000) and a tall (1,000 x 20,000) raster separate the two: the tall one
   must cost no more than the smallest, the wide one shows what width costs.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import matmul_peak_flops, measure_command

FULL_SIZE = 1024
FULL_TILE = 512
FULL_OVERLAPS, FULL_BATCHES = (0, 64, 128), (1, 2, 4)
QUICK_OVERLAPS, QUICK_BATCHES = (0, 128), (1, 4)
MEMORY_SHAPES = ((1_000, 1_000), (5_000, 5_000), (20_000, 20_000), (20_000, 1_000), (1_000, 20_000))
QUICK_MEMORY_SHAPES = ((1_000, 1_000), (5_000, 5_000), (1_000, 10_000))
TINY_TILE, TINY_OVERLAP = 512, 128
WARM_UP_CALLS = 60
STRIP_ROWS = 512  # rows per write when making the synthetic rasters
_MODULE = "benchmarks.bench_segment"


def write_synthetic_raster(path: Path, size: int, seed: int = 0, height: int | None = None) -> Path:
    """A size x height (default square) RGB uint8 GeoTIFF of class-coloured 16-pixel blocks with
    noise, written in strips."""
    import rasterio
    from rasterio.transform import from_origin

    from dubai_segmenter.engine.classes import DUBAI_CLASSES

    palette = np.array([c.color for c in DUBAI_CLASSES], dtype=np.int16)
    rng = np.random.default_rng(seed)
    height = size if height is None else height
    columns = np.arange(size) // 16
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=height, count=3, dtype="uint8", crs="EPSG:32640",
        transform=from_origin(300_000.0, 2_800_000.0, 0.3, 0.3), tiled=True, blockxsize=512, blockysize=512,
        compress="deflate", bigtiff="if_safer",
    ) as dataset:
        for top in range(0, height, STRIP_ROWS):
            rows = np.arange(top, min(top + STRIP_ROWS, height)) // 16
            classes = (rows[:, None] * 7 + columns[None, :] * 13 + (rows[:, None] * columns[None, :]) % 5) % 6
            pixels = palette[classes] + rng.integers(-8, 9, classes.shape + (3,), dtype=np.int16)
            window = rasterio.windows.Window(0, top, size, len(rows))
            dataset.write(np.moveaxis(np.clip(pixels, 0, 255).astype(np.uint8), -1, 0), window=window)
    return path


def save_random_model(path: Path, architecture: str, tile: int, overlap: int) -> Path:
    """A model file of ``architecture`` with Keras's random initial weights (speed does not care)."""
    import keras

    from dubai_segmenter.engine.architectures import build_model
    from dubai_segmenter.engine.classes import DUBAI_CLASSES
    from dubai_segmenter.engine.model_file import ModelMetadata, save_model

    model = build_model(architecture, None, len(DUBAI_CLASSES), 3, tile)
    metadata = ModelMetadata(
        architecture=architecture, architecture_params={}, classes=DUBAI_CLASSES, input_bands=3,
        input_scale=1 / 255, tile_size=tile, overlap=overlap, resolution=None,
        provenance={"recipe": "random initial weights (benchmark)"},
    )
    save_model(path, model, metadata)
    del model
    keras.backend.clear_session()
    return path


def _layers(layer) -> list:
    """Every leaf layer of a (possibly nested) Keras model."""
    children = getattr(layer, "layers", None)
    return [leaf for child in children for leaf in _layers(child)] if children else [layer]


def convolution_flops(model) -> float:
    """FLOPs of one forward pass: 2 x multiply-adds of every Conv2D, Conv2DTranspose and Dense."""
    import keras

    total = 0.0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, _, c_in = layer.kernel.shape  # (kh, kw, filters, input channels)
            _, h, w, _ = layer.input.shape
            total += 2.0 * kh * kw * c_in * layer.filters * h * w
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2.0 * kh * kw * c_in * c_out * h * w
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * np.prod(layer.kernel.shape) * np.prod(layer.output.shape[1:-1])
    return total


class _TimedPredictor:
    """Wraps a predictor and adds up the wall time spent inside ``predict`` (the model)."""

    def __init__(self, inner) -> None:
        self.inner, self.metadata, self.tile_size, self.backend = inner, inner.metadata, inner.tile_size, inner.backend
        self.seconds, self.tiles = 0.0, 0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        result = self.inner.predict(batch)
        self.seconds += time.perf_counter() - started
        self.tiles += len(batch)
        return result


def full_model_rows(quick: bool, folder: Path) -> list[dict]:
    from dubai_segmenter.engine.architectures import IRV2_UNET
    from dubai_segmenter.engine.model_file import load_keras_model
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.segment import SegmentOptions, segment_raster

    raster = write_synthetic_raster(folder / "full.tif", FULL_SIZE)
    model_path = save_random_model(folder / "irv2_unet.safetensors", IRV2_UNET, FULL_TILE, 128)
    flops_per_tile = convolution_flops(load_keras_model(model_path, FULL_TILE))
    predictor = open_predictor(model_path, backend="tf")
    peak = matmul_peak_flops()
    overlaps, batches = (QUICK_OVERLAPS, QUICK_BATCHES) if quick else (FULL_OVERLAPS, FULL_BATCHES)
    for batch in batches:  # warm-up: tracing and per-shape kernels are not what we measure
        predictor.predict(np.zeros((batch, FULL_TILE, FULL_TILE, 3), np.float32))
    # One untimed run pays the once-per-process costs (GDAL drivers, first file writes) that
    # would otherwise land on whichever configuration happens to be measured first.
    segment_raster(raster, predictor, folder / "warm_up.tif", SegmentOptions(overlap=0, batch_size=1))
    rows = []
    for overlap in overlaps:
        for batch in batches:
            timed = _TimedPredictor(predictor)
            started = time.perf_counter()
            result = segment_raster(
                raster, timed, folder / "full_classes.tif", SegmentOptions(overlap=overlap, batch_size=batch)
            )
            wall = time.perf_counter() - started
            model_flops = timed.tiles * flops_per_tile / timed.seconds
            rows.append({
                "benchmark": f"IRV2 U-Net {FULL_SIZE}^2 raster, tile {FULL_TILE} "
                             f"({flops_per_tile / 1e9:.0f} GFLOP/tile)",
                "overlap": overlap,
                "batch": batch,
                "tiles": result.tiles,
                "wall_s": round(wall, 1),
                "MP_per_s": round(FULL_SIZE**2 / 1e6 / wall, 3),
                "model_s_per_tile": round(timed.seconds / timed.tiles, 2),
                "outside_model_pct": round(100 * (wall - timed.seconds) / wall, 1),
                "model_GFLOP_per_s": round(model_flops / 1e9, 1),
                "of_matmul_peak_pct": round(100 * model_flops / peak, 1),
            })
    return rows


def memory_rows(quick: bool, folder: Path) -> list[dict]:
    from dubai_segmenter.engine.architectures import PIXEL_LINEAR

    model_path = save_random_model(folder / "tiny.safetensors", PIXEL_LINEAR, TINY_TILE, TINY_OVERLAP)
    rows, smallest = [], None
    for width, height in QUICK_MEMORY_SHAPES if quick else MEMORY_SHAPES:
        raster = write_synthetic_raster(folder / f"memory_{width}x{height}.tif", width, height=height)
        output = folder / f"memory_{width}x{height}_classes.tif"
        measured = measure_command(
            [sys.executable, "-m", _MODULE, "segment", str(raster), str(model_path), str(output)])
        child = json.loads(measured.stdout)
        smallest = measured.peak_rss_mb if smallest is None else smallest
        rows.append({
            "benchmark": f"tiny model (pixel_linear), tile {TINY_TILE}, overlap {TINY_OVERLAP}, own process",
            "raster": f"{width}x{height}",
            "tiles": child["tiles"],
            "segment_s": round(child["seconds"], 1),
            "MP_per_s": round(width * height / 1e6 / child["seconds"], 2),
            "peak_rss_mb": round(measured.peak_rss_mb),
            "growth_from_smallest_mb": round(measured.peak_rss_mb - smallest),
        })
        raster.unlink()
        output.unlink()
    return rows


def run(quick: bool) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-segment-") as scratch:
        folder = Path(scratch)
        return full_model_rows(quick, folder) + memory_rows(quick, folder)


def _segment_child(raster: str, model: str, output: str) -> None:
    """Child process of the memory benchmark: segment and print what happened as JSON.

    The model first runs WARM_UP_CALLS times: TensorFlow's allocator and kernel caches grow
    by 70-130 MB over the first ~40 calls and then stay flat (measured here), so without it
    the smallest raster (9 tiles) would hide that fixed cost and inflate the growth.
    """
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.segment import segment_raster

    predictor = open_predictor(model, backend="tf")
    for _ in range(WARM_UP_CALLS):
        predictor.predict(np.zeros((1, TINY_TILE, TINY_TILE, 3), np.float32))
    result = segment_raster(raster, predictor, output)
    print(json.dumps({"seconds": result.seconds, "tiles": result.tiles}))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "segment":
        sys.exit(f"usage: python -m {_MODULE} segment RASTER MODEL OUTPUT")
    _segment_child(*sys.argv[2:])
