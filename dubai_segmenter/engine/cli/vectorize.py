# SPDX-License-Identifier: GPL-2.0-or-later
"""``vectorize``: polygons of chosen classes of a classified GeoTIFF, in a GeoPackage."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from dubai_segmenter.engine.cli.helpers import Progress
from dubai_segmenter.engine.cli.options import add_progress_option, add_vector_options, parse_classes
from dubai_segmenter.engine.contract import EXIT_OK
from dubai_segmenter.engine.errors import UsageError


def add_vectorize_parser(commands: argparse._SubParsersAction) -> None:
    """The ``vectorize`` command and its options."""
    vectorize = commands.add_parser(
        "vectorize",
        help="turn chosen classes of a classified GeoTIFF into polygons",
        description="Write polygons (class id, name, area, perimeter) of chosen classes of a classified "
        "GeoTIFF to a GeoPackage, in the raster's CRS.",
    )
    vectorize.add_argument("classified", metavar="CLASSIFIED", help="classified GeoTIFF (e.g. from 'segment')")
    vectorize.add_argument("--out-vector", required=True, metavar="V.gpkg", help="GeoPackage to write")
    add_vector_options(vectorize)
    add_progress_option(vectorize)


def run_vectorize(args: argparse.Namespace, progress: Progress, cancel: Callable[[], bool]) -> int:
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
