# SPDX-License-Identifier: GPL-2.0-or-later
"""The client's side of a cluster run: plan scenes, submit chunks, save parts, assemble outputs.

For every scene the client plans once (``plan.py``), submits one task per chunk that has
no finished part yet (``client.map``; all scenes at once, so small scenes keep every
worker busy), and saves each finished part under a temporary name, renamed when
complete, in a hidden folder beside the output. A rerun of the same command (same
input, model and options) reuses those parts: a crashed or killed run resumes. When a
scene's last part is in, a VRT of its parts is streamed through the same
``ClassifiedRasterWriter`` as a single-process run (colour table, class names,
overviews), and the parts are deleted. A scene that fails is reported and the others
go on. Cancelling cancels every future and leaves no output and no parts.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
from rasterio.windows import Window

from dubai_segmenter.engine.atomic_file import written_atomically
from dubai_segmenter.engine.distributed.chunk_task import ChunkResult, segment_chunk
from dubai_segmenter.engine.distributed.cluster import check_workers, threads_by_host
from dubai_segmenter.engine.distributed.plan import DEFAULT_CHUNK, Chunk, ScenePlan, chunk_side
from dubai_segmenter.engine.distributed.worker import ModelPlugin, worker_predictor
from dubai_segmenter.engine.errors import Cancelled
from dubai_segmenter.engine.geotiff_output import BLOCK_SIZE, ClassifiedRasterWriter, check_output_path
from dubai_segmenter.engine.model_file import ModelMetadata
from dubai_segmenter.engine.onnx_file import file_sha256
from dubai_segmenter.engine.predictors import Predictor, open_predictor
from dubai_segmenter.engine.progress import CancelCheck, ProgressCallback, check_cancelled, report
from dubai_segmenter.engine.raster_input import choose_bands, compute_scaling, open_raster, resampled
from dubai_segmenter.engine.segment import (  # _resample_back: the local run's way back to the input grid
    SegmentOptions,
    SegmentResult,
    _resample_back,
    check_predictor,
    run_details,
)
from dubai_segmenter.engine.tiling import TileGrid

#: Seconds between checks for finished chunks (and for a cancel request).
POLL_SECONDS = 0.2


def cluster_model(path: str | Path, tile_size: int | None = None) -> tuple[Path, Predictor]:
    """The ONNX file workers run for model ``path`` (itself, or the current export beside a
    model file) and a predictor on it to check options against; ValueError with the export
    command when there is none. Workers run ONNX Runtime only."""
    path = Path(path)
    predictor = open_predictor(path, tile_size, backend="onnx", threads=1)
    return (path if path.suffix.lower() == ".onnx" else path.with_suffix(".onnx")), predictor


@dataclass
class Scene:
    """One input and where its classes go; after the run, how it went."""

    input_path: Path
    output_path: Path
    result: SegmentResult | None = None
    error: str | None = None
    reused_parts: int = 0
    worker_pids: set[int] = field(default_factory=set)
    tile_runs: int = 0  # tiles run by this run's tasks (seam tiles twice; reused parts not counted)
    skipped_runs: int = 0  # of those, tiles without a valid pixel
    # Run state on the client.
    plan: ScenePlan | None = None
    key: str = ""  # the plan's key (ScenePlan.key), shortened
    parts: Path | None = None
    missing: set[str] = field(default_factory=set)
    started: float = 0.0


def _plan(
    scene: Scene, metadata: ModelMetadata, sha256: str, options: SegmentOptions, tile: int, overlap: int, side: int,
) -> None:
    scene.started = time.perf_counter()
    scene.output_path = check_output_path(scene.output_path, scene.input_path)
    with open_raster(scene.input_path) as source:
        bands = choose_bands(source, options.bands, metadata.input_bands)
        scaling = compute_scaling(source, bands, metadata.input_scale)
        with contextlib.ExitStack() as stack:
            processing = source if options.resolution is None else stack.enter_context(
                resampled(source, options.resolution))
            grid = TileGrid.for_raster(processing.height, processing.width, tile, overlap)
    scene.plan = ScenePlan(
        str(scene.input_path), bands, scaling, grid, side, options.batch_size, options.confidence, sha256,
        options.resolution,
    )
    scene.key = scene.plan.key()[:16]
    scene.parts = scene.output_path.with_name(f".{scene.output_path.name}.parts-{scene.key}")
    scene.parts.mkdir(exist_ok=True)
    chunks = {chunk.name for chunk in scene.plan.chunks}
    scene.missing = {name for name in chunks if not (scene.parts / f"{name}.tif").is_file()}
    scene.reused_parts = len(chunks) - len(scene.missing)


def _run_chunk(plan: ScenePlan, chunk: Chunk) -> ChunkResult:
    """The task: the chunk through the model this worker holds."""
    return segment_chunk(plan, chunk, worker_predictor(plan.model_sha256, plan.grid.tile_size))


def _save_part(scene: Scene, result: ChunkResult) -> None:
    with written_atomically(scene.parts / f"{result.chunk.name}.tif") as temporary:
        temporary.write_bytes(result.part)
    scene.missing.discard(result.chunk.name)
    scene.worker_pids.add(result.worker_pid)
    scene.tile_runs += result.tiles
    scene.skipped_runs += result.skipped


def _assemble(
    scene: Scene, metadata: ModelMetadata, options: SegmentOptions, tile: int, overlap: int, cancel: CancelCheck | None
) -> None:
    """Stream a VRT of the scene's parts into the classified GeoTIFF, then delete the parts."""
    from osgeo import gdal

    plan = scene.plan
    details = run_details(plan.bands, plan.scaling, tile, overlap, options)
    details["cluster"] = (
        f"{len(plan.chunks)} chunks of {plan.chunk_side} px, {len(plan.chunks) - scene.reused_parts} made by "
        f"{len(scene.worker_pids)} workers ({scene.tile_runs} tile runs), {scene.reused_parts} reused"
    )
    parts = [str(scene.parts / f"{chunk.name}.tif") for chunk in plan.chunks]
    with tempfile.TemporaryDirectory(dir=scene.output_path.parent, prefix=f".{scene.output_path.name}.") as scratch:
        vrt_path = str(Path(scratch) / "parts.vrt")
        if gdal.BuildVRT(vrt_path, parts) is None:
            raise OSError(f"could not join the parts in {scene.parts}")  # BuildVRT closes on dereference
        with rasterio.open(scene.input_path) as source:
            writer = ClassifiedRasterWriter(
                scene.output_path, width=source.width, height=source.height, crs=source.crs,
                transform=source.transform, classes=metadata.classes, confidence=options.confidence,
                tags={"SEGMENTATION": json.dumps({**details, "model": metadata.architecture})},
            )
            with writer:
                if options.resolution is None:
                    _copy_rows(vrt_path, writer, cancel)
                else:  # classes on the processing grid, then back to the input grid as a local run does
                    with resampled(source, options.resolution) as processing, ClassifiedRasterWriter(
                        Path(scratch) / "processing-grid.tif", width=processing.width, height=processing.height,
                        crs=processing.crs, transform=processing.transform, classes=metadata.classes,
                        confidence=options.confidence, overviews=False,
                    ) as processed:
                        _copy_rows(vrt_path, processed, cancel)
                        classified = processed.finish()
                    _resample_back(classified, source, plan.bands, writer, None, cancel)
                writer.finish()
    shutil.rmtree(scene.parts, ignore_errors=True)
    counts = {c.id: int(writer.class_counts[c.id]) for c in metadata.classes}
    scene.result = SegmentResult(
        scene.output_path, counts, plan.grid.width, plan.grid.height, time.perf_counter() - scene.started,
        plan.grid.tile_count, scene.skipped_runs, details,
    )


def _copy_rows(vrt_path: str, writer: ClassifiedRasterWriter, cancel: CancelCheck | None) -> None:
    """Stream the joined parts into ``writer``, one block row at a time."""
    with rasterio.open(vrt_path) as joined:
        for top in range(0, joined.height, BLOCK_SIZE):
            check_cancelled(cancel)
            layers = joined.read(window=Window(0, top, joined.width, min(BLOCK_SIZE, joined.height - top)))
            writer.write_rows(top, layers[0], layers[1] if writer.has_confidence else None)


def segment_scenes(
    client,
    scenes: Sequence[Scene],
    model_path: str | Path,
    options: SegmentOptions = SegmentOptions(),
    chunk: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> Sequence[Scene]:
    """Segment every scene on the cluster behind ``client``; each scene ends with a result or an error.

    Raises ValueError (before any work) for a model the workers cannot run, Cancelled when
    ``cancel`` said stop (every future cancelled, no output left).
    """
    from distributed import as_completed

    onnx_path, predictor = cluster_model(model_path, options.tile_size)
    metadata = predictor.metadata
    tile, overlap = check_predictor(predictor, options.tile_size, options.overlap)
    del predictor  # the client only needed its metadata
    sha256 = file_sha256(onnx_path)
    side = chunk_side(tile, overlap, chunk)
    check_workers(client)
    report(progress, 0.0, "uploading the model to the workers")
    client.register_plugin(ModelPlugin(onnx_path, tile, threads_by_host(client)))

    owner: dict[str, Scene] = {}  # future key -> its scene
    futures = []
    for scene in scenes:
        try:
            _plan(scene, metadata, sha256, options, tile, overlap, side)
        except Exception as error:  # reported with the scene; the others go on
            scene.error = str(error)
            continue
        todo = [c for c in scene.plan.chunks if c.name in scene.missing]
        keys = [f"dubai-segmenter-{scene.key}-{c.name}" for c in todo]
        for future in client.map(_run_chunk, [scene.plan] * len(todo), todo, key=keys):
            owner[future.key] = scene
            futures.append(future)
    total = sum(len(s.plan.chunks) for s in scenes if s.plan is not None) or 1
    done = sum(s.reused_parts for s in scenes)
    report(progress, done / total, f"chunk {done}/{total}")
    try:
        for scene in scenes:  # scenes whose parts were all there already
            if scene.plan is not None and not scene.missing:
                _finish(scene, metadata, options, tile, overlap, cancel)
        pending = as_completed(futures, with_results=False)
        while not pending.is_empty():
            check_cancelled(cancel)
            finished = pending.next_batch(block=False)
            if not finished:
                time.sleep(POLL_SECONDS)
                continue
            for future in finished:
                scene = owner[future.key]
                if future.status not in ("finished", "error", "cancelled"):
                    pending.add(future)  # its result was lost with a worker after it finished: wait again
                    continue
                if future.status == "error" and scene.error is None:
                    scene.error = f"{type(future.exception()).__name__}: {future.exception()}"
                    client.cancel([f for f in futures if owner[f.key] is scene])
                elif future.status == "finished" and scene.error is None:
                    _save_part(scene, future.result())
                    if not scene.missing:
                        _finish(scene, metadata, options, tile, overlap, cancel)
                future.release()
                done += 1
                report(progress, done / total, f"chunk {done}/{total}")
        for scene in scenes:
            if scene.plan is not None and scene.result is None and scene.error is None:
                scene.error = f"{len(scene.missing)} chunks did not finish"  # never silently incomplete
    except BaseException as error:
        client.cancel(futures)
        if isinstance(error, (Cancelled, KeyboardInterrupt)):  # asked to stop: leave nothing
            for scene in scenes:
                if scene.parts is not None and scene.result is None:
                    shutil.rmtree(scene.parts, ignore_errors=True)
        raise  # any other failure keeps finished parts for a rerun to resume from
    return scenes


def _finish(
    scene: Scene, metadata: ModelMetadata, options: SegmentOptions, tile: int, overlap: int, cancel: CancelCheck | None
) -> None:
    try:
        _assemble(scene, metadata, options, tile, overlap, cancel)
    except (Cancelled, KeyboardInterrupt):
        raise
    except Exception as error:
        scene.error = f"{type(error).__name__}: {error}"
