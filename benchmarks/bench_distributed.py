# SPDX-License-Identifier: GPL-2.0-or-later
"""The same raster on one process and on a Dask LocalCluster, and what 1e5 x 1e5 would take.

The released model (``$MODEL_DIR/model.onnx``, default /work/shared/models/dubai-native-v1)
segments one synthetic RGB raster twice on this machine's cores:
1. one process, ONNX Runtime with 2 threads (``segment`` as a user runs it; its own peak RSS);
2. a LocalCluster of 2 worker processes x 1 thread (ONNX Runtime 1 thread each), chunks
   of two tile strides, so the raster is 2 x 2 chunks and tiles along the seams run twice.
Reported: wall time, seconds per tile run per thread (the rate a worker core achieves),
peak RSS (per worker on the cluster), whether the two outputs are identical, and the
modelled time of a 100,000 x 100,000 mosaic (default 8192-px chunks; the duplicate tiles
counted exactly from the grid) on N workers at the measured per-worker rate.

Polygons: ``vectorize_classes`` of a fragmented classified raster (``bench_vectorize``'s
blurred noise, all classes), its strips traced in this process, then on the cluster's two
workers (``trace_on_cluster``; seams joined and the GeoPackage written here either way),
and whether the two GeoPackages hold the same features.
"""
from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_segment import write_synthetic_raster
from benchmarks.common import measure_command

FULL_SIZE, QUICK_SIZE = 1536, 1024
POLYGONS_FULL, POLYGONS_QUICK = 3000, 1000  # side of the fragmented classified raster
MOSAIC = 100_000
MODELLED_WORKERS = (1, 8, 32, 128)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tile_runs(height: int, width: int, tile: int, overlap: int, chunk: int) -> tuple[int, int]:
    """(tiles in the global grid, tile runs when every chunk runs every tile touching it)."""
    from dubai_segmenter.engine.distributed.plan import chunk_grid, chunk_side, split_into_chunks
    from dubai_segmenter.engine.tiling import TileGrid

    grid = TileGrid.for_raster(height, width, tile, overlap)
    side = chunk_side(tile, overlap, chunk)
    return grid.tile_count, sum(chunk_grid(grid, c).grid.tile_count for c in split_into_chunks(height, width, side))


def run(quick: bool) -> list[dict[str, object]]:
    model = Path(os.environ.get("MODEL_DIR", "/work/shared/models/dubai-native-v1")) / "model.onnx"
    if not model.is_file():
        return [{"benchmark": "distributed", "note": f"no {model}: set MODEL_DIR to a released model folder"}]
    import rasterio
    from distributed import Client, LocalCluster

    from dubai_segmenter.engine.distributed.plan import DEFAULT_CHUNK
    from dubai_segmenter.engine.distributed.run import Scene, segment_scenes
    from dubai_segmenter.engine.predictors import read_model_metadata

    metadata = read_model_metadata(model)
    tile, overlap = metadata.tile_size, metadata.overlap
    size = QUICK_SIZE if quick else FULL_SIZE
    chunk = 2 * (tile - overlap)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        raster = write_synthetic_raster(folder / "scene.tif", size)
        single = measure_command([sys.executable, "-m", "dubai_segmenter", "segment", str(raster),
                                  "--model", str(model), "--out-raster", str(folder / "single.tif"),
                                  "--progress", "none"])
        tiles, runs = tile_runs(size, size, tile, overlap, chunk)
        rows.append({
            "benchmark": f"1 process x 2 threads, {size}^2", "wall_s": round(single.seconds, 1),
            "tile_runs": tiles, "s_per_tile_per_thread": round(2 * single.seconds / tiles, 2),
            "peak_rss_mb_per_process": round(single.peak_rss_mb), "identical": "",
        })
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            started = time.perf_counter()
            (scene,) = segment_scenes(client, [Scene(raster, folder / "cluster.tif")], model, chunk=chunk)
            seconds = time.perf_counter() - started
            rss = client.run(_peak_rss_mb)
            polygons = polygon_rows(client, folder, POLYGONS_QUICK if quick else POLYGONS_FULL)
        if scene.error is not None:
            raise RuntimeError(scene.error)
        with rasterio.open(folder / "single.tif") as a, rasterio.open(folder / "cluster.tif") as b:
            identical = bool(np.array_equal(a.read(), b.read()))
        per_run = 2 * seconds / runs
        rows.append({
            "benchmark": f"LocalCluster 2 x 1 thread, {size}^2, chunk {chunk}", "wall_s": round(seconds, 1),
            "tile_runs": runs, "s_per_tile_per_thread": round(per_run, 2),
            "peak_rss_mb_per_process": "/".join(str(round(v)) for v in sorted(rss.values())),
            "identical": "yes" if identical else "NO",
        })
    mosaic_tiles, mosaic_runs = tile_runs(MOSAIC, MOSAIC, tile, overlap, DEFAULT_CHUNK)
    for workers in MODELLED_WORKERS:
        rows.append({
            "benchmark": f"modelled {MOSAIC}^2 on {workers} worker(s) x 1 thread",
            "wall_s": f"{mosaic_runs * per_run / workers / 3600:.1f} h",
            "tile_runs": f"{mosaic_runs} (+{100 * (mosaic_runs / mosaic_tiles - 1):.1f} % over {mosaic_tiles})",
            "s_per_tile_per_thread": round(per_run, 2), "peak_rss_mb_per_process": "", "identical": "",
        })
    return rows + polygons


def _features(gpkg: Path) -> list[tuple]:
    """Every feature's fields and WKB geometry, sorted (read in bulk through OGR's Arrow stream)."""
    from osgeo import ogr

    dataset = ogr.Open(str(gpkg))
    layer = dataset.GetLayer(0)
    features = []
    for batch in layer.GetArrowStreamAsNumPy(options=["USE_MASKED_ARRAYS=NO"]):
        features += zip(batch["class_id"].tolist(), batch["area"].tolist(), batch["perimeter"].tolist(),
                        (bytes(g) for g in batch[layer.GetGeometryColumn()]))
    return sorted(features)


def polygon_rows(client, folder: Path, size: int) -> list[dict[str, object]]:
    """The polygons of one fragmented raster with strips traced here, then on the workers."""
    from benchmarks.bench_vectorize import CLASS_IDS, make_classified_raster
    from dubai_segmenter.engine.distributed.polygons import trace_on_cluster
    from dubai_segmenter.engine.vectorize import vectorize_classes

    raster = make_classified_raster(folder / "fragmented.tif", "fragmented", size)
    local = vectorize_classes(raster, folder / "local.gpkg", classes=CLASS_IDS)
    cluster = vectorize_classes(raster, folder / "cluster.gpkg", classes=CLASS_IDS, tracer=trace_on_cluster(client))
    same = _features(local.output_path) == _features(cluster.output_path)
    return [
        {"benchmark": f"polygons {size}^2 fragmented, {where}", "wall_s": round(result.seconds, 1),
         "polygons": sum(result.polygon_counts.values()), "same_features": "" if result is local else
         ("yes" if same else "NO")}
        for where, result in (("strips traced here", local), ("strips traced on 2 workers", cluster))
    ]
