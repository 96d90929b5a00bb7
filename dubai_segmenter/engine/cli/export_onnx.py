# SPDX-License-Identifier: GPL-2.0-or-later
"""``export-onnx``: a model file as ONNX (float32, or int8 calibrated on training images)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from dubai_segmenter.engine.cli.options import positive_int
from dubai_segmenter.engine.contract import EXIT_OK
from dubai_segmenter.engine.errors import UsageError


def add_export_onnx_parser(commands: argparse._SubParsersAction) -> None:
    """The ``export-onnx`` command and its options."""
    export = commands.add_parser(
        "export-onnx",
        help="export a model file to ONNX (faster on CPU with ONNX Runtime)",
        description="Export a dubai_segmenter model file to ONNX for one tile size. Saved beside the model "
        "with the same name, 'segment --backend auto' uses it automatically.",
    )
    export.add_argument("model", metavar="MODEL", help="dubai_segmenter model file (.safetensors)")
    export.add_argument("onnx", metavar="OUT.onnx", nargs="?", help="ONNX file to write (default: beside MODEL)")
    export.add_argument(
        "--tile", type=positive_int, metavar="PIXELS", help="tile size of the export (default: the model's)"
    )
    export.add_argument(
        "--precision", choices=("fp32", "int8"), default="fp32",
        help="fp32 (default) or int8: static quantization calibrated on training images "
        "(default output NAME.int8.onnx beside MODEL; `make int8` also runs the accuracy gate)",
    )
    export.add_argument("--calibration", metavar="DIR", help="int8: folder of training images (default: $DATA_DIR)")
    export.add_argument("--calibration-tiles", type=positive_int, default=16, metavar="N", help="int8: tiles (16)")


def run_export_onnx(args: argparse.Namespace) -> int:
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
