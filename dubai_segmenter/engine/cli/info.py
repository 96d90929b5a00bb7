# SPDX-License-Identifier: GPL-2.0-or-later
"""``info``: a model file's metadata, read without TensorFlow."""
from __future__ import annotations

import argparse

from dubai_segmenter.engine.contract import EXIT_OK


def add_info_parser(commands: argparse._SubParsersAction) -> None:
    """The ``info`` command and its options."""
    info = commands.add_parser(
        "info", help="describe a model file", description="Print a model file's metadata (no TensorFlow needed)."
    )
    info.add_argument("model", metavar="MODEL", help="dubai_segmenter model file (.safetensors) or ONNX export")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON")


def run_info(args: argparse.Namespace) -> int:
    from dubai_segmenter.engine.model_file import describe_model
    from dubai_segmenter.engine.predictors import read_model_metadata

    metadata = read_model_metadata(args.model)
    print(metadata.to_json() if args.json else describe_model(metadata, args.model), flush=True)
    return EXIT_OK
