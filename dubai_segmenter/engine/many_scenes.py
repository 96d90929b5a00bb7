# SPDX-License-Identifier: GPL-2.0-or-later
"""``segment`` on many scenes, or on a Dask cluster: inputs, output names, one line per scene.

An analyst with a folder of scenes gives the folder (or a glob, or several files) and an
output folder; every scene becomes ``OUT_DIR/<name>.tif``. The model is opened once (or
uploaded to the cluster once). A scene that fails is reported with its reason and the
others go on; the exit code says whether all of them succeeded. With ``--cluster`` or
``--scheduler`` the chunks of all scenes are spread over the workers
(``engine/distributed``); polygons (single scene only) are then made by the same
vectorizer as a local run, its strips of rows traced on the workers
(``distributed/polygons.py``) and the seams joined here.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable

from dubai_segmenter.engine.cli.helpers import Progress, summary_line
from dubai_segmenter.engine.cli.segment import (
    SEGMENT_SHARE_WITH_VECTORS,
    CheckedModel,
    check_model_args,
    check_segment_args,
)
from dubai_segmenter.engine.contract import EXIT_FAILED, EXIT_OK
from dubai_segmenter.engine.errors import Cancelled, ScenesCancelled, UsageError
from dubai_segmenter.engine.progress import sub_progress

#: What a folder given as input contributes: files with these suffixes (not hidden ones); the
#: outputs are GeoTIFFs (contract.RASTER_SUFFIXES).
INPUT_SUFFIXES = (".tif", ".tiff", ".jp2", ".img", ".vrt")


def expand_inputs(arguments: Sequence[str]) -> tuple[list[Path], bool]:
    """The scenes named by ``arguments`` (files, folders, glob patterns), in order, and whether
    they are "many" (more than one argument, or any folder or pattern)."""
    scenes: list[Path] = []
    many = len(arguments) > 1
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            many = True
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
                           and not p.name.startswith("."))
            if not found:
                raise UsageError(f"folder {path} holds no raster ({', '.join(INPUT_SUFFIXES)} files)")
            scenes += found
        elif not path.exists() and glob.has_magic(argument):
            many = True
            found = sorted(Path(p) for p in glob.glob(argument) if Path(p).is_file())
            if not found:
                raise UsageError(f"no file matches {argument}")
            scenes += found
        else:
            scenes.append(path)
    return scenes, many


def for_many_scenes_or_cluster(args: argparse.Namespace) -> bool:
    """Whether a ``segment`` run goes through this module rather than the single-scene path."""
    first = Path(args.inputs[0])
    return bool(
        len(args.inputs) > 1 or args.out_dir or args.cluster or args.scheduler or first.is_dir()
        or (not first.exists() and glob.has_magic(args.inputs[0]))
    )


def _outputs(scenes: Sequence[Path], out_dir: Path) -> list[Path]:
    outputs = [out_dir / f"{scene.stem}.tif" for scene in scenes]
    names = [o.name for o in outputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"several inputs would write {duplicates[0]} in --out-dir; give inputs with distinct names")
    if not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} does not exist; create it first")
    return outputs


def _check_model_args(args: argparse.Namespace) -> CheckedModel:
    """The checks of a run that do not depend on a scene (model, tile, overlap, band list)."""
    if args.classes or args.min_area or args.simplify:
        raise UsageError("polygons are made for one input at a time: run 'vectorize' on each output")
    try:
        return check_model_args(args)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error


#: (summary line, None) for a scene that succeeded, (None, the error) for one that failed.
Outcome = tuple["str | None", "BaseException | None"]


def _one_after_another(args, scenes, outputs, metadata, options, progress, cancel, kept) -> list[Outcome]:
    """Every scene through ``segment_raster`` in this process, with the model opened once
    (``kept`` receives each finished output, for a truthful message if the run is cancelled)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dubai_segmenter.engine.cli.helpers import backend_choice_on_stderr
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.segment import segment_raster

    progress(0.0, "loading the model")
    try:
        with backend_choice_on_stderr():
            predictor = open_predictor(args.model, tile_size=options.tile_size, backend=args.backend)
    except ValueError as error:
        raise UsageError(str(error)) from error
    outcomes: list[Outcome] = []
    for index, (scene, output) in enumerate(zip(scenes, outputs)):
        try:
            result = segment_raster(
                scene, predictor, output, options,
                sub_progress(progress, index / len(scenes), (index + 1) / len(scenes)), cancel,
            )
        except (Cancelled, KeyboardInterrupt, MemoryError):
            raise
        except Exception as error:  # this scene's problem; the next one may be fine
            outcomes.append((None, error))
            continue
        kept.append(result.output_path)
        summary = summary_line(result.output_path, result.class_pixel_counts, metadata.classes, result.seconds)
        outcomes.append((summary, None))
    return outcomes


@contextlib.contextmanager
def _cluster(args: argparse.Namespace, progress: Progress) -> Iterator:
    """The Dask client of a cluster run (``--cluster local[:N]`` or ``--scheduler ADDRESS``)."""
    from dubai_segmenter.engine.distributed.cluster import ClusterError, connect

    if args.backend not in ("auto", "onnx"):
        raise UsageError(f"on a cluster the workers run the ONNX export (ONNX Runtime); --backend {args.backend} "
                         "does not apply there: leave it out or use --backend onnx")
    progress(0.0, "starting the cluster" if args.cluster else f"connecting to {args.scheduler}")
    try:
        with connect(args.cluster, args.scheduler) as client:
            yield client
    except ClusterError as error:
        raise UsageError(str(error)) from error


def _on_cluster(client, args, scenes, outputs, metadata, options, progress, cancel, kept) -> list[Outcome]:
    """Every scene on the cluster behind ``client`` (``kept``: as ``_one_after_another``)."""
    from dubai_segmenter.engine.distributed.run import Scene, segment_scenes

    jobs = [Scene(scene, output) for scene, output in zip(scenes, outputs)]
    try:
        segment_scenes(client, jobs, args.model, options, args.chunk, progress, cancel)
    except Cancelled:  # scenes assembled before the cancel stay written
        kept += [job.output_path for job in jobs if job.result is not None]
        raise
    except ValueError as error:  # ClusterError, or a model the workers cannot run (no ONNX export)
        raise UsageError(str(error)) from error
    return [
        (summary_line(job.output_path, job.result.class_pixel_counts, metadata.classes, job.result.seconds), None)
        if job.error is None else (None, RuntimeError(job.error))
        for job in jobs
    ]


def segment_scenes_command(args: argparse.Namespace, progress: Progress, cancel: Callable[[], bool]) -> int:
    """``segment`` with several inputs (``--out-dir``) and/or on a cluster; returns the exit code."""
    from dubai_segmenter.engine.cli.helpers import remove_outputs
    from dubai_segmenter.engine.output_claim import claimed
    from dubai_segmenter.engine.segment import SegmentOptions

    scenes, many = expand_inputs(args.inputs)
    many = many or args.out_dir is not None  # one file with --out-dir: a batch of one
    if many:
        if args.out_raster or args.out_vector:
            raise UsageError(
                "with several inputs, a folder or a glob, give --out-dir instead of --out-raster/--out-vector")
        if args.out_dir is None:
            raise UsageError("several inputs: give an output folder with --out-dir")
        model = _check_model_args(args)
        bands, out_vector, classes = model.bands, None, None
        outputs = _outputs(scenes, Path(args.out_dir))
    else:
        if not args.out_raster:
            raise UsageError("give the output with --out-raster R.tif (or --out-dir DIR)")
        args.input = str(scenes[0])
        try:
            checked = check_segment_args(args)
        except (ValueError, FileNotFoundError) as error:
            raise UsageError(str(error)) from error
        model, bands, out_vector, classes = checked.model, checked.bands, checked.out_vector, checked.classes
        outputs = [checked.out_raster]
    options = SegmentOptions(
        bands=bands, tile_size=model.tile, overlap=model.overlap, batch_size=args.batch,
        resolution=args.resolution, confidence=args.confidence,
    )
    share = SEGMENT_SHARE_WITH_VECTORS if out_vector else 1.0
    args.hold(claimed([*outputs, out_vector]))  # one writer per output, as a single run (output_claim.py)
    on_cluster = bool(args.cluster or args.scheduler)
    kept: list[Path] = []
    with _cluster(args, progress) if on_cluster else contextlib.nullcontext() as client:
        segmenting = (args, scenes, outputs, model.metadata, options, sub_progress(progress, 0.0, share),
                      cancel, kept)
        try:
            outcomes = _on_cluster(client, *segmenting) if on_cluster else _one_after_another(*segmenting)
        except Cancelled as error:
            if many:
                raise ScenesCancelled.after(kept, len(scenes)) from error
            raise
        failed = [(scene, error) for scene, (_, error) in zip(scenes, outcomes) if error is not None]
        if not many and failed:
            raise failed[0][1]  # one scene: its error is the run's error, with the usual exit code
        polygons = None
        if out_vector is not None:
            from dubai_segmenter.engine.vectorize import vectorize_classes

            tracer = None
            if on_cluster:  # strips traced on the workers, seams joined here (distributed/polygons.py)
                from dubai_segmenter.engine.distributed.polygons import trace_on_cluster

                tracer = trace_on_cluster(client)
            try:
                polygons = vectorize_classes(
                    outputs[0], out_vector, classes=classes, min_area=args.min_area, simplify=args.simplify,
                    progress=sub_progress(progress, share, 1.0), cancel=cancel, tracer=tracer,
                )
            except BaseException:
                remove_outputs(outputs[0])
                raise
    progress.close()
    for summary, _ in outcomes:
        if summary is not None:
            print(summary, flush=True)
    if polygons is not None:
        print(f"Wrote {polygons.output_path}: {sum(polygons.polygon_counts.values())} polygons", flush=True)
    for scene, error in failed:
        print(f"FAILED {scene}: {error}", file=sys.stderr, flush=True)
    if failed:
        print(f"ERROR: {len(failed)} of {len(scenes)} scenes failed (listed above)", file=sys.stderr, flush=True)
        return EXIT_FAILED
    return EXIT_OK
