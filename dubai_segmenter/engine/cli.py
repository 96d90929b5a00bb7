# SPDX-License-Identifier: GPL-2.0-or-later
"""The command line: ``python -m dubai_segmenter segment | vectorize | info | export-onnx | models``.

Made for two readers: a person at a terminal (progress bar, a summary, one clear error
line) and a parent process such as the QGIS plugin (``--progress lines``: flushed
``PROGRESS <percent> <message>`` lines on stdout; ``ERROR: <message>`` on stderr; exit
codes below). Everything that can be checked without the model (paths, bands, classes,
tile size) is checked before TensorFlow is even imported, so bad input fails in a second.
SIGTERM and SIGINT cancel at the next tile and leave no output files.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable, NoReturn

from dubai_segmenter.engine.classes import DEFAULT_VECTOR_KEYS, ClassInfo
from dubai_segmenter.engine.contract import (
    BACKENDS,
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    POLYGON_SUFFIX,
    TTA_MODES,
)
from dubai_segmenter.engine.errors import UsageError

#: Share of the progress bar for inference when polygons follow (vectorizing is much faster).
SEGMENT_SHARE_WITH_VECTORS = 0.9
#: --progress lines: at most one line per this many seconds unless the percentage moved by 0.1.
LINE_INTERVAL = 2.0


class _Parser(argparse.ArgumentParser):
    """argparse with the ``ERROR: <message>`` line and exit code 2 of the contract."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"ERROR: {message}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_INPUT)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=("bar", "lines", "none"),
        default=None,
        help="how to show progress: 'bar' = a progress bar on stderr (default on a terminal); "
        "'lines' = 'PROGRESS <percent 0-100> <message>' lines on stdout, flushed, for a parent "
        "process to read; 'none' = silent (default when stderr is not a terminal)",
    )


def _add_vector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--classes",
        metavar="LIST",
        help="classes to turn into polygons, by name or id, comma-separated "
        f"(default: {','.join(DEFAULT_VECTOR_KEYS)} when the model has them, else all but catch-alls). "
        "Names are the first word of the class name in lower case",
    )
    parser.add_argument(
        "--min-area",
        type=_non_negative_float,
        default=0.0,
        metavar="A",
        help="drop polygons smaller than A square map units (CRS units, e.g. m^2; default 0 = keep all)",
    )
    parser.add_argument(
        "--simplify",
        type=_non_negative_float,
        default=0.0,
        metavar="T",
        help="simplify polygon outlines with a tolerance of T map units, keeping them valid "
        "(default 0 = exact pixel edges)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m dubai_segmenter",
        description="Segment aerial/satellite rasters into land-cover classes (building, land, road, "
        "vegetation, water, unlabeled) with a dubai_segmenter model file.",
        epilog=f"Exit codes: {EXIT_OK} success, {EXIT_FAILED} failure while running, {EXIT_BAD_INPUT} bad input "
        f"or usage, {EXIT_CANCELLED} cancelled (SIGINT/SIGTERM). Errors are one 'ERROR: ...' line on stderr; "
        "--debug (anywhere on the line) or DUBAI_SEGMENTER_DEBUG=1 also prints the traceback before it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

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
    _add_vector_options(segment)
    segment.add_argument(
        "--tile",
        type=_positive_int,
        metavar="PIXELS",
        help="tile size the model runs on (default: the model's; a multiple of 32 from 256 to 1024 for "
        "the InceptionResNetV2 U-Net). Bigger tiles give more context and use more memory",
    )
    segment.add_argument(
        "--overlap",
        type=_non_negative_int,
        metavar="PIXELS",
        help="overlap between neighbouring tiles, blended smoothly (default: the model's; at most half the tile)",
    )
    segment.add_argument(
        "--batch", type=_positive_int, default=1, metavar="N", help="tiles per model call (default 1)"
    )
    segment.add_argument(
        "--bands",
        metavar="LIST",
        help="1-based input bands to use, comma-separated, e.g. 1,2,3 or 4,3,2 "
        "(default: the first bands, as many as the model takes; 1,1,1 repeats a grey band)",
    )
    segment.add_argument(
        "--resolution",
        type=_positive_float,
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
        "--chunk", type=_positive_int, default=DEFAULT_CHUNK, metavar="PIXELS",
        help=f"on a cluster: side of the output square one task makes, rounded to whole tile strides "
        f"(default {DEFAULT_CHUNK})",
    )
    _add_progress_option(segment)

    vectorize = commands.add_parser(
        "vectorize",
        help="turn chosen classes of a classified GeoTIFF into polygons",
        description="Write polygons (class id, name, area, perimeter) of chosen classes of a classified "
        "GeoTIFF to a GeoPackage, in the raster's CRS.",
    )
    vectorize.add_argument("classified", metavar="CLASSIFIED", help="classified GeoTIFF (e.g. from 'segment')")
    vectorize.add_argument("--out-vector", required=True, metavar="V.gpkg", help="GeoPackage to write")
    _add_vector_options(vectorize)
    _add_progress_option(vectorize)

    info = commands.add_parser(
        "info", help="describe a model file", description="Print a model file's metadata (no TensorFlow needed)."
    )
    info.add_argument("model", metavar="MODEL", help="dubai_segmenter model file (.safetensors) or ONNX export")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON")

    export = commands.add_parser(
        "export-onnx",
        help="export a model file to ONNX (faster on CPU with ONNX Runtime)",
        description="Export a dubai_segmenter model file to ONNX for one tile size. Saved beside the model "
        "with the same name, 'segment --backend auto' uses it automatically.",
    )
    export.add_argument("model", metavar="MODEL", help="dubai_segmenter model file (.safetensors)")
    export.add_argument("onnx", metavar="OUT.onnx", nargs="?", help="ONNX file to write (default: beside MODEL)")
    export.add_argument(
        "--tile", type=_positive_int, metavar="PIXELS", help="tile size of the export (default: the model's)"
    )
    export.add_argument(
        "--precision", choices=("fp32", "int8"), default="fp32",
        help="fp32 (default) or int8: static quantization calibrated on training images "
        "(default output NAME.int8.onnx beside MODEL; `make int8` also runs the accuracy gate)",
    )
    export.add_argument("--calibration", metavar="DIR", help="int8: folder of training images (default: $DATA_DIR)")
    export.add_argument("--calibration-tiles", type=_positive_int, default=16, metavar="N", help="int8: tiles (16)")
    from dubai_segmenter.engine.model_commands import add_models_parser

    add_models_parser(commands)
    return parser


def parse_classes(text: str, classes: Sequence[ClassInfo]) -> list[int]:
    """'building,road' or '0,2' -> class ids, or UsageError listing the valid names."""
    by_name = {c.key: c.id for c in classes} | {str(c.id): c.id for c in classes}
    chosen = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part not in by_name:
            valid = ", ".join(f"{c.key} ({c.id})" for c in classes)
            raise UsageError(f"unknown class {part!r} in --classes; choose from: {valid}")
        chosen.append(by_name[part])
    return chosen


class _Progress:
    """The chosen progress display as a ProgressCallback."""

    def __init__(self, mode: str | None) -> None:
        self.mode = mode or ("bar" if sys.stderr.isatty() else "none")
        self._bar = None
        self._last = (-1.0, 0.0)
        self._last_step = ""
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=100, unit="%", file=sys.stderr,
                             bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]{postfix}")

    def __call__(self, fraction: float, message: str) -> None:
        percent = 100.0 * fraction
        if self._bar is not None:
            self._bar.n = percent
            self._bar.set_postfix_str(message, refresh=False)
            self._bar.refresh()
        elif self.mode == "lines":
            last_percent, last_time = self._last
            now = time.monotonic()
            new_step = message.split(" ", 1)[0] != self._last_step  # e.g. "writing overviews" after the tiles
            if percent - last_percent >= 0.1 or now - last_time >= LINE_INTERVAL or fraction >= 1.0 or new_step:
                print(f"PROGRESS {percent:.1f} {message}", flush=True)
                self._last = (percent, now)
                self._last_step = message.split(" ", 1)[0]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _CancelOnSignal:
    """SIGINT/SIGTERM set a flag the engine polls between tiles (calling this is a CancelCheck).

    Inside ``immediately()`` (loading the model: seconds of TensorFlow with nothing to poll
    and nothing written yet) the signal raises Cancelled at once instead.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, object] = {}
        self._immediate = False

    def __call__(self) -> bool:
        return self._event.is_set()

    def _handle(self, *_: object) -> None:
        self._event.set()
        if self._immediate:
            from dubai_segmenter.engine.errors import Cancelled

            self._immediate = False
            raise Cancelled("cancelled by the user")

    @contextlib.contextmanager
    def immediately(self) -> Iterator[None]:
        from dubai_segmenter.engine.progress import check_cancelled

        check_cancelled(self)
        self._immediate = True
        try:
            yield
        finally:
            self._immediate = False

    def __enter__(self) -> _CancelOnSignal:
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _remove_outputs(*paths: Path | None) -> None:
    """Delete outputs this run already published (a run is all or nothing)."""
    for path in paths:
        if path is not None:
            for leftover in (path, Path(f"{path}.aux.xml")):
                leftover.unlink(missing_ok=True)


def _summary(path: Path, counts: dict[int, int], classes: Sequence[ClassInfo], seconds: float) -> str:
    total = sum(counts.values()) or 1
    shares = ", ".join(f"{c.key} {100 * counts.get(c.id, 0) / total:.1f}%" for c in classes)
    return f"Wrote {path} in {seconds:.1f} s: {shares}"


def _check_segment_args(args: argparse.Namespace) -> dict:
    """Everything about a ``segment`` run that can be checked without TensorFlow."""
    from dubai_segmenter.engine.architectures import check_tile_size
    from dubai_segmenter.engine.geotiff_output import check_output_path
    from dubai_segmenter.engine.predictors import read_model_metadata
    from dubai_segmenter.engine.raster_input import choose_bands, open_raster, parse_band_list
    from dubai_segmenter.engine.tiling import check_tiling

    vector_only = [flag for flag, value in (("--classes", args.classes), ("--min-area", args.min_area),
                                             ("--simplify", args.simplify)) if value]
    if vector_only and not args.out_vector:
        raise UsageError(f"{', '.join(vector_only)} only apply to polygons: add --out-vector V.gpkg")
    metadata = read_model_metadata(args.model)
    tile = args.tile or metadata.tile_size
    check_tile_size(metadata.architecture, tile, metadata.architecture_params)
    check_tiling(tile, metadata.overlap if args.overlap is None else args.overlap)
    bands = parse_band_list(args.bands) if args.bands else None
    with open_raster(args.input) as dataset:
        bands = choose_bands(dataset, bands, metadata.input_bands)
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
    return dict(metadata=metadata, tile=tile, bands=bands, out_raster=out_raster, out_vector=out_vector,
                classes=classes, band_count=band_count)


@contextlib.contextmanager
def _backend_choice_on_stderr() -> Iterator[None]:
    """Show which backend runs the model and why ("backend onnx: ..."), as open_predictor logs it."""
    log = logging.getLogger("dubai_segmenter.engine.predictors")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)


def _segment(args: argparse.Namespace, progress: _Progress, cancel: _CancelOnSignal) -> int:
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
        checked = _check_segment_args(args)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error
    metadata, out_raster, out_vector = checked["metadata"], checked["out_raster"], checked["out_vector"]
    args.hold(claimed([out_raster, out_vector]))  # one writer per output (output_claim.py)
    args.writing = out_raster

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.raster_input import describe_input
    from dubai_segmenter.engine.segment import SegmentOptions, segment_raster
    from dubai_segmenter.engine.tta import with_tta

    progress(0.0, "loading the model")
    try:
        with _backend_choice_on_stderr(), cancel.immediately():
            predictor = open_predictor(args.model, tile_size=checked["tile"], backend=args.backend,
                                       cache_export=named != args.model)
        predictor = with_tta(predictor, args.tta)
    except ValueError as error:  # includes ModelFileError: weights that do not fit, unknown backend
        raise UsageError(str(error)) from error
    options = SegmentOptions(
        bands=checked["bands"], tile_size=checked["tile"], overlap=args.overlap, batch_size=args.batch,
        resolution=args.resolution, confidence=args.confidence,
    )
    share = SEGMENT_SHARE_WITH_VECTORS if out_vector else 1.0
    result = segment_raster(args.input, predictor, out_raster, options, sub_progress(progress, 0.0, share), cancel)
    summary = _summary(result.output_path, result.class_pixel_counts, metadata.classes, result.seconds)
    print(describe_input(checked["bands"], checked["band_count"], result.details["scaling"]),
          file=sys.stderr, flush=True)
    if out_vector is None:
        progress.close()
        print(summary, flush=True)
        return EXIT_OK
    from dubai_segmenter.engine.vectorize import vectorize_classes

    args.writing = out_vector
    try:
        polygons = vectorize_classes(
            out_raster, out_vector, classes=checked["classes"], min_area=args.min_area, simplify=args.simplify,
            progress=sub_progress(progress, share, 1.0), cancel=cancel,
        )
    except BaseException:
        _remove_outputs(out_raster)
        raise
    apply_umask(polygons.output_path)  # SQLite makes GeoPackages 0644 whatever the umask
    progress.close()
    print(summary, flush=True)
    print(f"Wrote {polygons.output_path}: {sum(polygons.polygon_counts.values())} polygons", flush=True)
    return EXIT_OK


def _vectorize(args: argparse.Namespace, progress: _Progress, cancel: Callable[[], bool]) -> int:
    from dubai_segmenter.engine.atomic_file import apply_umask
    from dubai_segmenter.engine.output_claim import claimed
    from dubai_segmenter.engine.raster_legend import raster_classes
    from dubai_segmenter.engine.vectorize import vectorize_classes

    classified = Path(args.classified)
    if not classified.is_file():
        raise UsageError(f"classified raster not found: {classified}")
    args.hold(claimed([args.out_vector]))  # one writer per output (output_claim.py)
    args.writing = args.out_vector
    try:
        classes = parse_classes(args.classes, raster_classes(classified)) if args.classes else None
        result = vectorize_classes(
            classified, args.out_vector, classes=classes, min_area=args.min_area, simplify=args.simplify,
            progress=progress, cancel=cancel,
        )
    except (ValueError, FileNotFoundError) as error:  # the vectorizer checks its input first
        raise UsageError(str(error)) from error
    apply_umask(result.output_path)  # SQLite makes GeoPackages 0644 whatever the umask
    progress.close()
    print(f"Wrote {result.output_path}: {sum(result.polygon_counts.values())} polygons", flush=True)
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from dubai_segmenter.engine.model_file import describe_model
    from dubai_segmenter.engine.predictors import read_model_metadata

    metadata = read_model_metadata(args.model)
    print(metadata.to_json() if args.json else describe_model(metadata, args.model), flush=True)
    return EXIT_OK


def _export_onnx(args: argparse.Namespace) -> int:
    from dubai_segmenter.engine.geotiff_output import check_output_path
    from dubai_segmenter.engine.int8_export import int8_path_for
    from dubai_segmenter.engine.model_file import read_metadata

    int8 = args.precision == "int8"
    calibration = args.calibration or os.environ.get("DATA_DIR")
    try:
        read_metadata(args.model)
        if int8 and not calibration:
            raise UsageError("--precision int8 needs training images to calibrate on: --calibration DIR (or DATA_DIR)")
        default = int8_path_for(args.model) if int8 else Path(args.model).with_suffix(".onnx")
        target = check_output_path(args.onnx or default, args.model)
        if target.suffix.lower() != ".onnx":
            raise UsageError(f"{target}: an ONNX export must end in .onnx")
    except ValueError as error:
        raise UsageError(str(error)) from error
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dubai_segmenter.engine.int8_export import export_int8_from_model
    from dubai_segmenter.engine.onnx_file import export_onnx

    try:
        if int8:
            written = export_int8_from_model(args.model, target, calibration, args.calibration_tiles, args.tile)
        else:
            written = export_onnx(args.model, target, args.tile)
    except ValueError as error:  # a tile size the architecture cannot run
        raise UsageError(str(error)) from error
    print(f"Wrote {written}", flush=True)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the contract's codes)."""
    from dubai_segmenter.engine.errors import (
        Cancelled,
        CatalogueError,
        DownloadCancelled,
        DownloadError,
        ModelFileError,
        OutputBusyError,
        OutputPathError,
        RasterInputError,
    )
    from dubai_segmenter.engine.failures import disk_full

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DUBAI_SEGMENTER_DEBUG", "") not in ("", "0")
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    if args.command == "models":
        from dubai_segmenter.engine.model_commands import run_models_command

        try:
            with _CancelOnSignal() as cancel:
                return run_models_command(args, cancel)
        except CatalogueError as error:
            return _fail(EXIT_BAD_INPUT, str(error))
        except DownloadCancelled as error:
            return _fail(EXIT_CANCELLED, str(error))
        except DownloadError as error:
            return _fail(EXIT_FAILED, str(error))
    if args.command in ("info", "export-onnx"):
        try:
            return _info(args) if args.command == "info" else _export_onnx(args)
        except (UsageError, ModelFileError, OutputPathError) as error:
            return _fail(EXIT_BAD_INPUT, str(error), debug=debug)
        except Exception as error:
            return _fail(EXIT_FAILED, f"{type(error).__name__}: {error}", debug=debug)
    progress = _Progress(args.progress)
    args.writing = None
    try:
        with _CancelOnSignal() as cancel, contextlib.ExitStack() as held:
            args.hold = held.enter_context
            run = _segment if args.command == "segment" else _vectorize
            return run(args, progress, cancel)
    except Cancelled as error:
        from dubai_segmenter.engine.many_scenes import ScenesCancelled  # says which scenes were kept

        said = str(error) if isinstance(error, ScenesCancelled) else "cancelled: no output was written"
        return _fail(EXIT_CANCELLED, said, progress, debug)
    except (UsageError, RasterInputError, OutputPathError, ModelFileError, OutputBusyError) as error:
        return _fail(EXIT_BAD_INPUT, str(error), progress, debug)
    except MemoryError:
        return _fail(EXIT_FAILED, "out of memory: try a smaller --tile or --batch", progress, debug)
    except Exception as error:  # a bug or an I/O failure: the traceback only with --debug
        message = disk_full(error, args.writing) or f"{type(error).__name__}: {error}"
        return _fail(EXIT_FAILED, message, progress, debug)


def _fail(code: int, message: str, progress: _Progress | None = None, debug: bool = False) -> int:
    """The one ERROR line, last on stderr; with ``debug`` a failure's traceback before it."""
    if progress is not None:
        progress.close()
    if debug and code == EXIT_FAILED and sys.exc_info()[0] is not None:  # bad input: the sentence says it all
        traceback.print_exc(file=sys.stderr)
    print(f"ERROR: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code
