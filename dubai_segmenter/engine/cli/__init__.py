# SPDX-License-Identifier: GPL-2.0-or-later
"""The command line: ``python -m dubai_segmenter segment | vectorize | info | export-onnx | models``.

Made for two readers: a person at a terminal (progress bar, a summary, one clear error
line) and a parent process such as the QGIS plugin (``--progress lines``: flushed
``PROGRESS <percent> <message>`` lines on stdout; ``ERROR: <message>`` on stderr; exit
codes in ``engine/contract.py``). Everything that can be checked without the model (paths,
bands, classes, tile size) is checked before TensorFlow is even imported, so bad input fails
in a second. SIGTERM and SIGINT cancel at the next tile and leave no output files.

One module per command (``segment.py``, ``vectorize.py``, ``info.py``, ``export_onnx.py``;
``models`` is ``engine/model_commands.py``), the argument types they share in ``options.py``
and the progress, cancel and cleanup in ``helpers.py``. This module builds the parser and
turns what a command raises into the one ERROR line and the exit code.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence

from dubai_segmenter.engine.cli.export_onnx import add_export_onnx_parser, run_export_onnx
from dubai_segmenter.engine.cli.helpers import CancelOnSignal, Progress
from dubai_segmenter.engine.cli.info import add_info_parser, run_info
from dubai_segmenter.engine.cli.options import Parser, parse_classes
from dubai_segmenter.engine.cli.segment import add_segment_parser, run_segment
from dubai_segmenter.engine.cli.vectorize import add_vectorize_parser, run_vectorize
from dubai_segmenter.engine.contract import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from dubai_segmenter.engine.errors import UsageError

__all__ = ["EXIT_BAD_INPUT", "EXIT_CANCELLED", "EXIT_FAILED", "EXIT_OK", "build_parser", "main", "parse_classes"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m dubai_segmenter",
        description="Segment aerial/satellite rasters into land-cover classes (building, land, road, "
        "vegetation, water, unlabeled) with a dubai_segmenter model file.",
        epilog=f"Exit codes: {EXIT_OK} success, {EXIT_FAILED} failure while running, {EXIT_BAD_INPUT} bad input "
        f"or usage, {EXIT_CANCELLED} cancelled (SIGINT/SIGTERM). Errors are one 'ERROR: ...' line on stderr; "
        "--debug (anywhere on the line) or DUBAI_SEGMENTER_DEBUG=1 also prints the traceback before it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    add_segment_parser(commands)
    add_vectorize_parser(commands)
    add_info_parser(commands)
    add_export_onnx_parser(commands)
    from dubai_segmenter.engine.model_commands import add_models_parser

    add_models_parser(commands)
    return parser


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
            with CancelOnSignal() as cancel:
                return run_models_command(args, cancel)
        except CatalogueError as error:
            return _fail(EXIT_BAD_INPUT, str(error))
        except DownloadCancelled as error:
            return _fail(EXIT_CANCELLED, str(error))
        except DownloadError as error:
            return _fail(EXIT_FAILED, str(error))
    if args.command in ("info", "export-onnx"):
        try:
            return run_info(args) if args.command == "info" else run_export_onnx(args)
        except (UsageError, ModelFileError, OutputPathError) as error:
            return _fail(EXIT_BAD_INPUT, str(error), debug=debug)
        except Exception as error:
            return _fail(EXIT_FAILED, f"{type(error).__name__}: {error}", debug=debug)
    progress = Progress(args.progress)
    args.writing = None
    try:
        with CancelOnSignal() as cancel, contextlib.ExitStack() as held:
            args.hold = held.enter_context
            run = run_segment if args.command == "segment" else run_vectorize
            return run(args, progress, cancel)
    except Cancelled as error:
        from dubai_segmenter.engine.errors import ScenesCancelled  # says which scenes were kept

        said = str(error) if isinstance(error, ScenesCancelled) else "cancelled: no output was written"
        return _fail(EXIT_CANCELLED, said, progress, debug)
    except (UsageError, RasterInputError, OutputPathError, ModelFileError, OutputBusyError) as error:
        return _fail(EXIT_BAD_INPUT, str(error), progress, debug)
    except MemoryError:
        return _fail(EXIT_FAILED, "out of memory: try a smaller --tile or --batch", progress, debug)
    except Exception as error:  # a bug or an I/O failure: the traceback only with --debug
        message = disk_full(error, args.writing) or f"{type(error).__name__}: {error}"
        return _fail(EXIT_FAILED, message, progress, debug)


def _fail(code: int, message: str, progress: Progress | None = None, debug: bool = False) -> int:
    """The one ERROR line, last on stderr; with ``debug`` a failure's traceback before it."""
    if progress is not None:
        progress.close()
    if debug and code == EXIT_FAILED and sys.exc_info()[0] is not None:  # bad input: the sentence says it all
        traceback.print_exc(file=sys.stderr)
    print(f"ERROR: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code
