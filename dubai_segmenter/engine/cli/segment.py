# SPDX-License-Identifier: GPL-2.0-or-later
"""``segment``: classify a raster (or many scenes, or on a Dask cluster) and optionally vectorize.

Everything that can be checked without the model is checked before TensorFlow is imported.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dubai_segmenter.engine.cli.helpers import (
    CancelOnSignal,
    Progress,
    backend_choice_on_stderr,
    remove_outputs,
    summary_line,
)
from dubai_segmenter.engine.cli.options import (
    add_progress_option,
    add_vector_options,
    non_negative_int,
    parse_classes,
    positive_float,
    positive_int,
)
from dubai_segmenter.engine.contract import BACKENDS, EXIT_OK, POLYGON_SUFFIX, TTA_MODES
from dubai_segmenter.engine.errors import UsageError

if TYPE_CHECKING:
    from dubai_segmenter.engine.model_file import ModelMetadata

#: Share of the progress bar for inference when polygons follow (vectorizing is much faster).
SEGMENT_SHARE_WITH_VECTORS = 0.9


def add_segment_parser(commands: argparse._SubParsersAction) -> None:
    """The ``segment`` command and its options."""
    segment = commands.add_parser(
        "segment",
        help="classify every pixel of a raster into a GeoTIFF (and optionally polygons)",
        description="Classify every pixel of a georeferenced raster with a sliding window of overlapping, "
        "blended tiles. Writes a GeoTIFF of class ids (uint8, 255 = no data) on the input's grid, with "
        "the class colours and names, and optionally a GeoPackage of polygons for chosen classes. "
        "Outputs appear only when complete; the input is never modified.",
    )
    segment.add_argument(
        "inputs", nargs="+", metavar="INPUT",
        help="input raster (any GDAL format, with a CRS); several files, a folder or a glob ('scenes/*.tif') "
        "with --out-dir",
    )
    segment.add_argument("--model", required=True, metavar="M", help="dubai_segmenter model file, or the name of "
                         "an installed model (e.g. dubai-native-v1; see 'models list')")
    segment.add_argument("--out-raster", metavar="R.tif", help="classified GeoTIFF to write (one input)")
    segment.add_argument(
        "--out-dir", metavar="DIR",
        help="output folder for several inputs: each scene becomes DIR/<name>.tif; a failed scene is "
        "reported and the others go on",
    )
    segment.add_argument("--out-vector", metavar="V.gpkg", help="also write polygons to this GeoPackage")
    add_vector_options(segment)
    segment.add_argument(
        "--tile",
        type=positive_int,
        metavar="PIXELS",
        help="tile size the model runs on (default: the model's; a multiple of 32 from 256 to 1024 for "
        "the InceptionResNetV2 U-Net). Bigger tiles give more context and use more memory",
    )
    segment.add_argument(
        "--overlap",
        type=non_negative_int,
        metavar="PIXELS",
        help="overlap between neighbouring tiles, blended smoothly (default: the model's; at most half the tile)",
    )
    segment.add_argument(
        "--batch", type=positive_int, default=1, metavar="N", help="tiles per model call (default 1)"
    )
    segment.add_argument(
        "--bands",
        metavar="LIST",
        help="1-based input bands to use, comma-separated, e.g. 1,2,3 or 4,3,2 "
        "(default: the first bands, as many as the model takes; 1,1,1 repeats a grey band)",
    )
    segment.add_argument(
        "--resolution",
        type=positive_float,
        metavar="R",
        help="resample the input to R CRS units (e.g. metres) per pixel before inference, ideally the "
        "model's training resolution; classes are brought back to the input grid (default: no resampling)",
    )
    segment.add_argument(
        "--confidence",
        action="store_true",
        help="add a second band with the blended probability of the chosen class, in percent",
    )
    segment.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="what computes the model: auto (best available: int8 only where the CPU has VNNI/AMX-INT8 and "
        "the int8 export passed its accuracy gate), tf (TensorFlow), onnx (ONNX Runtime, float32), "
        "int8 (the int8 export beside the model)",
    )
    segment.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: none (fast), or flips (average the class probabilities over the "
        "tile and its 3 flips before blending; about 4x the time)",
    )
    from dubai_segmenter.engine.distributed.plan import DEFAULT_CHUNK  # no Dask import

    cluster = segment.add_mutually_exclusive_group()
    cluster.add_argument(
        "--cluster", metavar="local[:N]",
        help="run on a Dask LocalCluster of N single-threaded worker processes here (default N: one per "
        "core); same result, bit for bit. Needs the ONNX export of the model",
    )
    cluster.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT",
        help="run on an existing Dask cluster (dask scheduler / dask worker); workers must read the "
        "input at the same path. Same result as a local run, bit for bit",
    )
    segment.add_argument(
        "--chunk", type=positive_int, default=DEFAULT_CHUNK, metavar="PIXELS",
        help=f"on a cluster: side of the output square one task makes, rounded to whole tile strides "
        f"(default {DEFAULT_CHUNK})",
    )
    add_progress_option(segment)


@dataclass(frozen=True)
class CheckedModel:
    """The model and tiling of a run, checked once at the command line and passed inward as is."""

    metadata: ModelMetadata
    tile: int
    overlap: int  # the model's own unless --overlap (0 included) was given
    bands: tuple[int, ...] | None  # --bands as parsed; None = the model's first bands


@dataclass(frozen=True)
class CheckedSegment:
    """A one-raster ``segment`` run, checked: its model, the bands chosen on it, its outputs."""

    model: CheckedModel
    bands: tuple[int, ...]
    band_count: int
    out_raster: Path
    out_vector: Path | None
    classes: list[int] | None


def check_model_args(args: argparse.Namespace) -> CheckedModel:
    """The checks that do not depend on the raster: model metadata, tile, overlap, band list."""
    from dubai_segmenter.engine.architectures import check_tile_size
    from dubai_segmenter.engine.predictors import read_model_metadata
    from dubai_segmenter.engine.raster_input import parse_band_list
    from dubai_segmenter.engine.tiling import check_tiling

    metadata = read_model_metadata(args.model)
    tile = args.tile or metadata.tile_size
    overlap = metadata.overlap if args.overlap is None else args.overlap
    check_tile_size(metadata.architecture, tile, metadata.architecture_params)
    check_tiling(tile, overlap)
    return CheckedModel(metadata, tile, overlap, parse_band_list(args.bands) if args.bands else None)


def check_segment_args(args: argparse.Namespace) -> CheckedSegment:
    """Everything about a one-raster ``segment`` run that can be checked without TensorFlow."""
    from dubai_segmenter.engine.geotiff_output import check_output_path
    from dubai_segmenter.engine.raster_input import choose_bands, open_raster

    vector_only = [flag for flag, value in (("--classes", args.classes), ("--min-area", args.min_area),
                                             ("--simplify", args.simplify)) if value]
    if vector_only and not args.out_vector:
        raise UsageError(f"{', '.join(vector_only)} only apply to polygons: add --out-vector V.gpkg")
    model = check_model_args(args)
    metadata = model.metadata
    with open_raster(args.input) as dataset:
        bands = choose_bands(dataset, model.bands, metadata.input_bands)
        band_count = dataset.count
    out_raster = check_output_path(args.out_raster, args.input)
    out_vector, classes = None, None
    if args.out_vector:
        out_vector = check_output_path(args.out_vector, args.input)
        if out_vector.suffix.lower() != POLYGON_SUFFIX:
            raise UsageError(
                f"--out-vector {out_vector}: polygons are written as a GeoPackage, use a {POLYGON_SUFFIX} name")
        if out_vector.resolve() == out_raster.resolve():
            raise UsageError("--out-vector and --out-raster must be different files")
        classes = parse_classes(args.classes, metadata.classes) if args.classes else None
    return CheckedSegment(model, bands, band_count, out_raster, out_vector, classes)


def run_segment(args: argparse.Namespace, progress: Progress, cancel: CancelOnSignal) -> int:
    from dubai_segmenter.engine.atomic_file import apply_umask
    from dubai_segmenter.engine.many_scenes import for_many_scenes_or_cluster, segment_scenes_command
    from dubai_segmenter.engine.model_store import resolve_model
    from dubai_segmenter.engine.output_claim import claimed
    from dubai_segmenter.engine.progress import sub_progress

    named = args.model  # a catalogue name found in the model folders gets its ONNX export made once
    try:
        args.model = str(resolve_model(args.model))
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error
    if for_many_scenes_or_cluster(args):
        return segment_scenes_command(args, progress, cancel)
    args.input = args.inputs[0]
    if not args.out_raster:
        raise UsageError("give the output with --out-raster R.tif (or --out-dir DIR)")
    try:
        checked = check_segment_args(args)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error
    metadata, out_raster, out_vector = checked.model.metadata, checked.out_raster, checked.out_vector
    args.hold(claimed([out_raster, out_vector]))  # one writer per output (output_claim.py)
    args.writing = out_raster

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.raster_input import describe_input
    from dubai_segmenter.engine.segment import SegmentOptions, segment_raster
    from dubai_segmenter.engine.tta import with_tta

    progress(0.0, "loading the model")
    try:
        with backend_choice_on_stderr(), cancel.immediately():
            predictor = open_predictor(args.model, tile_size=checked.model.tile, backend=args.backend,
                                       cache_export=named != args.model)
        predictor = with_tta(predictor, args.tta)
    except ValueError as error:  # includes ModelFileError: weights that do not fit, unknown backend
        raise UsageError(str(error)) from error
    options = SegmentOptions(
        bands=checked.bands, tile_size=checked.model.tile, overlap=checked.model.overlap, batch_size=args.batch,
        resolution=args.resolution, confidence=args.confidence,
    )
    share = SEGMENT_SHARE_WITH_VECTORS if out_vector else 1.0
    result = segment_raster(args.input, predictor, out_raster, options, sub_progress(progress, 0.0, share), cancel)
    summary = summary_line(result.output_path, result.class_pixel_counts, metadata.classes, result.seconds)
    print(describe_input(checked.bands, checked.band_count, result.details["scaling"]),
          file=sys.stderr, flush=True)
    if out_vector is None:
        progress.close()
        print(summary, flush=True)
        return EXIT_OK
    from dubai_segmenter.engine.vectorize import vectorize_classes

    args.writing = out_vector
    try:
        polygons = vectorize_classes(
            out_raster, out_vector, classes=checked.classes, min_area=args.min_area, simplify=args.simplify,
            progress=sub_progress(progress, share, 1.0), cancel=cancel,
        )
    except BaseException:
        remove_outputs(out_raster)
        raise
    apply_umask(polygons.output_path)  # SQLite makes GeoPackages 0644 whatever the umask
    progress.close()
    print(summary, flush=True)
    print(f"Wrote {polygons.output_path}: {sum(polygons.polygon_counts.values())} polygons", flush=True)
    return EXIT_OK
