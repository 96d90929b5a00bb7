# SPDX-License-Identifier: GPL-2.0-or-later
"""Vectorization of classified rasters from 1,000^2 to 20,000^2, against ``gdal_polygonize.py``.

Both tools run as child processes on the same GeoTIFF, so wall time and peak memory are
measured the same way. gdal_polygonize traces every value of the band, so ours is asked
for all six classes too; both use 4-connectedness (the default of each), so the polygon
count of every class must be equal. The rasters:

- dense: smooth random blobs about 60 pixels across (like a model's output) with 0.05 %
  speckle (like its noise) and a nodata margin, which neither tool may turn into polygons;
- sparse: 20,000^2 of nodata except a band of 1,000 rows of such blobs (a scene clipped
  to a strip);
- fragmented: 4,000^2 of blurred noise, about 1.25 million 4-connected regions (what an
  undertrained model or a noisy scene gives).

Peak memory must stay flat with the raster's area (it follows the regions still open,
not the pixels). It is measured by ``benchmarks.common.measure_command`` (a fresh
launcher process, so the figure is the command's own). The rasters are made a strip at
a time in a child process, so neither the benchmark nor the generator holds a 20,000^2
array.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import measure_command

LAYER = "land_cover"
CLASS_IDS = (0, 1, 2, 3, 4, 5)  # every class of DUBAI_CLASSES
_MODULE = "benchmarks.bench_vectorize"
_STRIP = 512  # rows generated at a time (the GeoTIFF's block height)
_BLOB = 60  # pixels between the control points of the smooth random fields
_SPARSE_ROWS = 1000
_FRAGMENTED_SIGMA = 1.4  # Gaussian blur of the noise: about 1.25 M regions in 4,000^2

#: (name, kind, size) of each row; quick runs the small ones.
CASES_FULL = (
    ("dense", "dense", 1000),
    ("dense", "dense", 5000),
    ("dense", "dense", 20000),
    ("sparse", "sparse", 20000),
    ("fragmented", "fragmented", 4000),
)
CASES_QUICK = (("dense", "dense", 1000), ("dense", "dense", 2000), ("fragmented", "fragmented", 1000))


def make_classified_raster(path: Path, kind: str, size: int, seed: int = 0) -> Path:
    """A size x size classified GeoTIFF (uint8, nodata 255, tiled, deflate) written like ours."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from dubai_segmenter.engine.classes import NODATA_CLASS

    rng = np.random.default_rng(seed)
    profile = dict(
        driver="GTiff", width=size, height=size, count=1, dtype="uint8", nodata=NODATA_CLASS, crs="EPSG:32640",
        transform=from_origin(300_000.0, 2_800_000.0, 0.5, 0.5), tiled=True, blockxsize=512, blockysize=512,
        compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as dataset:
        if kind == "fragmented":
            dataset.write(_fragmented(rng, size), 1)
            return path
        coarse = rng.random((len(CLASS_IDS), size // _BLOB + 2, size // _BLOB + 2), np.float32)
        band = range((size - _SPARSE_ROWS) // 2, (size + _SPARSE_ROWS) // 2) if kind == "sparse" else range(size)
        for row0 in range(0, size, _STRIP):
            rows = np.arange(row0, min(row0 + _STRIP, size))
            values = np.full((len(rows), size), NODATA_CLASS, np.uint8)
            inside = (rows >= band.start) & (rows < band.stop)
            if inside.any():
                blobs = _blobs(coarse, rows[inside], size)
                speckle = rng.random(blobs.shape) < 0.0005
                blobs[speckle] = rng.integers(0, len(CLASS_IDS), int(speckle.sum()))
                blobs[:, : size // 50] = NODATA_CLASS
                values[inside] = blobs
            dataset.write(values, 1, window=Window(0, row0, size, len(rows)))
    return path


def _blobs(coarse, rows, size: int):
    """Argmax over classes of smooth random fields (bilinear between control points) at ``rows``.

    Computed row by row from the control points, so strips join without a seam."""
    import numpy as np

    scale = (coarse.shape[1] - 1) / (size - 1)
    y, x = rows * scale, np.arange(size) * scale
    y0, x0 = np.minimum(y.astype(int), coarse.shape[1] - 2), np.minimum(x.astype(int), coarse.shape[2] - 2)
    fy, fx = (y - y0)[:, None].astype(np.float32), (x - x0)[None, :].astype(np.float32)
    best = np.full((len(rows), size), -np.inf, np.float32)
    values = np.zeros((len(rows), size), np.uint8)
    for class_id, field in zip(CLASS_IDS, coarse):
        top = field[y0][:, x0] * (1 - fx) + field[y0][:, x0 + 1] * fx
        bottom = field[y0 + 1][:, x0] * (1 - fx) + field[y0 + 1][:, x0 + 1] * fx
        level = top * (1 - fy) + bottom * fy
        wins = level > best
        values[wins] = class_id
        best[wins] = level[wins]
    return values


def _fragmented(rng, size: int):
    """Argmax over classes of blurred white noise: regions of a dozen pixels on average."""
    import cv2
    import numpy as np

    best = np.full((size, size), -np.inf, np.float32)
    values = np.zeros((size, size), np.uint8)
    for class_id in CLASS_IDS:
        level = cv2.GaussianBlur(rng.random((size, size), np.float32), (0, 0), _FRAGMENTED_SIGMA)
        wins = level > best
        values[wins] = class_id
        best[wins] = level[wins]
    return values


def _count_per_class(gpkg: Path) -> dict[int, int]:
    from osgeo import ogr

    dataset = ogr.Open(str(gpkg))
    counts_layer = dataset.ExecuteSQL(f"SELECT class_id, COUNT(*) AS n FROM {LAYER} GROUP BY class_id")
    counts = {int(f["class_id"]): int(f["n"]) for f in counts_layer}
    dataset.ReleaseResultSet(counts_layer)
    return counts


def _row(name: str, kind: str, size: int, polygonize: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-vectorize-") as folder:
        work = Path(folder)
        raster = work / "classes.tif"
        subprocess.run([sys.executable, "-m", _MODULE, "make", str(raster), kind, str(size)], check=True)
        ours_run = measure_command([sys.executable, "-m", _MODULE, "vectorize", str(raster), str(work / "ours.gpkg")])
        ours = {int(k): v for k, v in json.loads(ours_run.stdout)["polygon_counts"].items() if v}
        (work / "ours.gpkg").unlink()
        gdal_run = measure_command(
            [sys.executable, polygonize, "-q", str(raster), "-b", "1", "-f", "GPKG", str(work / "gdal.gpkg"),
             LAYER, "class_id"]
        )
        reference = _count_per_class(work / "gdal.gpkg")
    return {
        "benchmark": f"vectorize {name} {size}x{size}, all 6 classes",
        "polygons_ours": sum(ours.values()),
        "polygons_gdal": sum(reference.values()),
        "same_count_every_class": ours == reference,
        "ours_s": round(ours_run.seconds, 1),
        "gdal_polygonize_s": round(gdal_run.seconds, 1),
        "time_ratio_ours_over_gdal": round(ours_run.seconds / gdal_run.seconds, 2),
        "peak_rss_mb_ours": round(ours_run.peak_rss_mb),
        "peak_rss_mb_gdal": round(gdal_run.peak_rss_mb),
    }


def run(quick: bool) -> list[dict]:
    """One row per raster comparing our vectorization with gdal_polygonize.py."""
    polygonize = shutil.which("gdal_polygonize.py")
    if polygonize is None:
        return [{"benchmark": "vectorize", "note": "gdal_polygonize.py not found: apt-get install gdal-bin"}]
    return [_row(name, kind, size, polygonize) for name, kind, size in (CASES_QUICK if quick else CASES_FULL)]


def _vectorize(raster: str, output: str) -> None:
    from dubai_segmenter.engine.vectorize import vectorize_classes

    result = vectorize_classes(raster, output, classes=CLASS_IDS, layer_name=LAYER)
    print(json.dumps({"polygon_counts": result.polygon_counts}))


if __name__ == "__main__":
    task, arguments = sys.argv[1], sys.argv[2:]
    if task == "make":
        make_classified_raster(Path(arguments[0]), arguments[1], int(arguments[2]))
    elif task == "vectorize":
        _vectorize(*arguments)
    else:
        sys.exit(f"unknown task {task!r}: use make or vectorize")
