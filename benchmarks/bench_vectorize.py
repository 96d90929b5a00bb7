"""Vectorization of a large classified raster, against ``gdal_polygonize.py`` on the same file.

Both tools run as child processes on the same GeoTIFF, so wall time and peak memory are
measured the same way. gdal_polygonize traces every value of the band, so ours is asked
for all six classes too; both use 4-connectedness (the default of each), so the polygon
count of every class must be equal. The raster is made of smooth random blobs (like a
model's output) with 0.05 % speckle (like its noise) and a nodata margin, which neither
tool may turn into polygons.

Peak memory is measured by ``benchmarks.common.measure_command`` (a fresh launcher process,
so the figure is the command's own). The raster is made in a child process too, so the
benchmark process never holds its arrays.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import measure_command

SIZE_FULL, SIZE_QUICK = 8000, 2000
LAYER = "land_cover"
CLASS_IDS = (0, 1, 2, 3, 4, 5)  # every class of DUBAI_CLASSES
_MODULE = "benchmarks.bench_vectorize"


def make_classified_raster(path: Path, size: int, seed: int = 0) -> Path:
    """A size x size classified GeoTIFF of random blobs about 60 pixels across, written like ours."""
    import cv2
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from dubai_segmenter.engine.classes import NODATA_CLASS

    rng = np.random.default_rng(seed)
    coarse = size // 60 + 2
    best = np.full((size, size), -np.inf, np.float32)
    values = np.zeros((size, size), np.uint8)
    for class_id in CLASS_IDS:  # argmax of one smooth random field per class, a field at a time
        field = cv2.resize(rng.random((coarse, coarse), np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        wins = field > best
        values[wins] = class_id
        best[wins] = field[wins]
    del best, field, wins
    speckle = rng.random((size, size)) < 0.0005
    values[speckle] = rng.integers(0, len(CLASS_IDS), int(speckle.sum()))
    values[:, : size // 50] = NODATA_CLASS
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", nodata=NODATA_CLASS,
        crs="EPSG:32640", transform=from_origin(300_000.0, 2_800_000.0, 0.5, 0.5),
        tiled=True, blockxsize=512, blockysize=512, compress="deflate",
    ) as dataset:
        dataset.write(values, 1)
    return path


def _count_per_class(gpkg: Path) -> dict[int, int]:
    from osgeo import ogr

    dataset = ogr.Open(str(gpkg))
    counts_layer = dataset.ExecuteSQL(f"SELECT class_id, COUNT(*) AS n FROM {LAYER} GROUP BY class_id")
    counts = {int(f["class_id"]): int(f["n"]) for f in counts_layer}
    dataset.ReleaseResultSet(counts_layer)
    return counts


def run(quick: bool) -> list[dict]:
    """One row comparing our vectorization with gdal_polygonize.py on a synthetic raster."""
    polygonize = shutil.which("gdal_polygonize.py")
    size = SIZE_QUICK if quick else SIZE_FULL
    name = f"vectorize {size}x{size} classified raster, all 6 classes"
    if polygonize is None:
        return [{"benchmark": name, "note": "gdal_polygonize.py not found: apt-get install gdal-bin"}]
    with tempfile.TemporaryDirectory(prefix="bench-vectorize-") as folder:
        work = Path(folder)
        raster = work / "classes.tif"
        subprocess.run([sys.executable, "-m", _MODULE, "make", str(raster), str(size)], check=True)
        ours_run = measure_command([sys.executable, "-m", _MODULE, "vectorize", str(raster), str(work / "ours.gpkg")])
        ours = {int(k): v for k, v in json.loads(ours_run.stdout)["polygon_counts"].items() if v}
        gdal_run = measure_command(
            [sys.executable, polygonize, "-q", str(raster), "-b", "1", "-f", "GPKG", str(work / "gdal.gpkg"),
             LAYER, "class_id"]
        )
        reference = _count_per_class(work / "gdal.gpkg")
    return [
        {
            "benchmark": name,
            "ours_s": round(ours_run.seconds, 1),
            "gdal_polygonize_s": round(gdal_run.seconds, 1),
            "time_ratio_ours_over_gdal": round(ours_run.seconds / gdal_run.seconds, 2),
            "polygons_ours": sum(ours.values()),
            "polygons_gdal": sum(reference.values()),
            "same_count_every_class": ours == reference,
            "peak_rss_mb_ours": round(ours_run.peak_rss_mb),
            "peak_rss_mb_gdal": round(gdal_run.peak_rss_mb),
        }
    ]


def _vectorize(raster: str, output: str) -> None:
    from dubai_segmenter.engine.vectorize import vectorize_classes

    result = vectorize_classes(raster, output, classes=CLASS_IDS, layer_name=LAYER)
    print(json.dumps({"polygon_counts": result.polygon_counts}))


if __name__ == "__main__":
    task, arguments = sys.argv[1], sys.argv[2:]
    if task == "make":
        make_classified_raster(Path(arguments[0]), int(arguments[1]))
    elif task == "vectorize":
        _vectorize(*arguments)
    else:
        sys.exit(f"unknown task {task!r}: use make or vectorize")
