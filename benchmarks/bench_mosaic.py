# SPDX-License-Identifier: GPL-2.0-or-later
"""End to end on a realistic 16 MP mosaic: float32 against int8, and the overlap, in one run.

The mosaic is built here from the Dubai images (``DATA_DIR``): a 5 x 5 grid of 800 x 800
centre crops of 25 images large enough for it, written as a georeferenced, tiled,
deflate-compressed RGB GeoTIFF (4000 x 4000). Each row is one fresh process
(``common.measure_command``: its own wall time and peak RSS) that opens the model file,
segments the mosaic and vectorizes every class into a GeoPackage, as a user's
``segment --out-vector V.gpkg --classes <all>`` run does.

Model files come from ``MODEL_DIR`` (default: the released model beside the checkout,
``../shared/models/dubai-native-v1``): ``model.onnx`` (float32) and, if ``make int8`` made
it there, ``model.int8.onnx``. Rows: float32 at the model's overlap (the baseline of every
ratio), int8 at overlaps 128, 96, 64 and 32. Reported per row:
- wall time end to end (process start to polygons written) and its ratio to float32;
- the model's seconds per tile (time inside ``predict``, in the model thread);
- the share of wall time outside the model in the sliding window (segment time minus model
  time: reading, blending, writing, overviews, class counts on the critical path; target
  5 % or less), polygon time, and start-up (imports, opening the model);
- peak RSS and the share of pixels whose class matches the float32 run.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import measure_command

MOSAIC_CELLS, CELL = 5, 800  # 5 x 5 cells of 800 px: 4000 x 4000 = 16 MP
QUICK_CELLS = 2  # 1600 x 1600
INT8_OVERLAPS = (128, 96, 64, 32)
QUICK_INT8_OVERLAPS = (128, 64)
_MODULE = "benchmarks.bench_mosaic"
_REPO = Path(__file__).resolve().parents[1]


def model_dir() -> Path:
    return Path(os.environ.get("MODEL_DIR") or _REPO.parent / "shared" / "models" / "dubai-native-v1")


def build_mosaic(path: Path, cells: int, data_root: Path | None = None) -> Path:
    """A cells x cells grid of CELL x CELL centre crops of the dataset's images, as a GeoTIFF."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from training.dataset import data_dir, list_samples

    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    large = []
    for sample in list_samples(data_root or data_dir()):
        with rasterio.open(sample.image_path) as image:
            if image.width >= CELL and image.height >= CELL:
                large.append(sample.image_path)
    if len(large) < cells * cells:
        raise RuntimeError(f"only {len(large)} dataset images are at least {CELL} px; need {cells * cells}")
    picks = [large[i] for i in np.linspace(0, len(large) - 1, cells * cells).round().astype(int)]
    size = cells * CELL
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32640",
        transform=from_origin(300_000.0, 2_800_000.0, 0.5, 0.5), tiled=True, blockxsize=512, blockysize=512,
        compress="deflate",
    ) as mosaic:
        for index, image_path in enumerate(picks):
            with rasterio.open(image_path) as image:
                top, left = (image.height - CELL) // 2, (image.width - CELL) // 2
                pixels = image.read([1, 2, 3], window=Window(left, top, CELL, CELL))
            row, col = divmod(index, cells)
            mosaic.write(pixels, window=Window(col * CELL, row * CELL, CELL, CELL))
    return path


def run(quick: bool) -> list[dict[str, object]]:
    folder = model_dir()
    fp32, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    title = "16 MP mosaic end to end" if not quick else "2.6 MP mosaic end to end (quick)"
    if not fp32.is_file():
        return [{"benchmark": title, "note": f"no {fp32}: set MODEL_DIR to a folder with model.onnx"}]
    variants = [("fp32", fp32, None)]
    if int8.is_file():
        variants += [("int8", int8, overlap) for overlap in (QUICK_INT8_OVERLAPS if quick else INT8_OVERLAPS)]
    with tempfile.TemporaryDirectory(prefix="bench-mosaic-") as scratch:
        scratch = Path(scratch)
        mosaic = build_mosaic(scratch / "mosaic.tif", QUICK_CELLS if quick else MOSAIC_CELLS)
        rows, baseline, reference = [], None, None
        for name, model, overlap in variants:
            out = scratch / f"{name}-{overlap}"
            measured = measure_command([sys.executable, "-m", _MODULE, str(mosaic), str(model), str(out),
                                        str(overlap or "")])
            child = json.loads(measured.stdout.strip().splitlines()[-1])
            classes = _read_classes(out.with_suffix(".tif"))
            reference = classes if reference is None else reference
            baseline = measured.seconds if baseline is None else baseline
            rows.append({
                "benchmark": f"{title}, tile {child['tile']}, all classes vectorized",
                "variant": name,
                "overlap": child["overlap"],
                "tiles": child["tiles"],
                "wall_s": round(measured.seconds, 1),
                "speed_vs_fp32": round(baseline / measured.seconds, 2),
                "model_s_per_tile": round(child["model_s"] / child["tiles"], 2),
                "outside_model_pct": round(100 * (child["segment_s"] - child["model_s"]) / measured.seconds, 1),
                "polygons_s": round(child["polygons_s"], 1),
                "startup_s": round(measured.seconds - child["segment_s"] - child["polygons_s"], 1),
                "peak_rss_mb": round(measured.peak_rss_mb),
                "same_class_as_fp32": round(float((classes == reference).mean()), 4),
                "polygons": child["polygons"],
            })
            print(rows[-1], flush=True)
            for leftover in out.parent.glob(f"{out.name}.*"):
                leftover.unlink()
        return rows


def _read_classes(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as dataset:
        return dataset.read(1)


def _child(mosaic: str, model: str, out: str, overlap: str) -> None:
    """One end-to-end run: open, segment (model time counted), vectorize every class; JSON on stdout."""
    from benchmarks.bench_segment import _TimedPredictor
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.segment import SegmentOptions, segment_raster
    from dubai_segmenter.engine.vectorize import vectorize_classes

    predictor = _TimedPredictor(open_predictor(model))
    options = SegmentOptions(overlap=int(overlap) if overlap else None)
    started = time.perf_counter()
    result = segment_raster(mosaic, predictor, f"{out}.tif", options)
    segment_s = time.perf_counter() - started
    classes = [c.id for c in predictor.metadata.classes]
    polygons = vectorize_classes(f"{out}.tif", f"{out}.gpkg", classes=classes)
    print(json.dumps({
        "tile": predictor.tile_size, "overlap": options.overlap or predictor.metadata.overlap, "tiles": result.tiles,
        "segment_s": segment_s, "model_s": predictor.seconds, "polygons_s": time.perf_counter() - started - segment_s,
        "polygons": sum(polygons.polygon_counts.values()),
    }), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(f"usage: python -m {_MODULE} MOSAIC MODEL OUT_PREFIX OVERLAP")
    _child(*sys.argv[1:])
