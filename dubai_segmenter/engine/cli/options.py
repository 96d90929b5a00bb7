# SPDX-License-Identifier: GPL-2.0-or-later
"""Argument types and options that several commands share, and the parser of the contract.

One place for what a flag accepts, so ``segment`` and ``vectorize`` cannot drift apart and
the plugin's commands (``child_process/engine_command.py``) are checked against one parser.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from dubai_segmenter.engine.classes import DEFAULT_VECTOR_KEYS, ClassInfo
from dubai_segmenter.engine.contract import EXIT_BAD_INPUT
from dubai_segmenter.engine.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse with the ``ERROR: <message>`` line and exit code 2 of the contract."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"ERROR: {message}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_INPUT)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=("bar", "lines", "none"),
        default=None,
        help="how to show progress: 'bar' = a progress bar on stderr (default on a terminal); "
        "'lines' = 'PROGRESS <percent 0-100> <message>' lines on stdout, flushed, for a parent "
        "process to read; 'none' = silent (default when stderr is not a terminal)",
    )


def add_vector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--classes",
        metavar="LIST",
        help="classes to turn into polygons, by name or id, comma-separated "
        f"(default: {','.join(DEFAULT_VECTOR_KEYS)} when the model has them, else all but catch-alls). "
        "Names are the first word of the class name in lower case",
    )
    parser.add_argument(
        "--min-area",
        type=non_negative_float,
        default=0.0,
        metavar="A",
        help="drop polygons smaller than A square map units (CRS units, e.g. m^2; default 0 = keep all)",
    )
    parser.add_argument(
        "--simplify",
        type=non_negative_float,
        default=0.0,
        metavar="T",
        help="simplify polygon outlines with a tolerance of T map units, keeping them valid "
        "(default 0 = exact pixel edges)",
    )


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
