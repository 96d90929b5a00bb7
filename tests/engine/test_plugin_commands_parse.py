# SPDX-License-Identifier: GPL-2.0-or-later
"""Every command line the plugin builds (child_process/engine_command.py) is one the engine's own
parser accepts, with the values the plugin meant: the two sides are written separately, so a
renamed flag or a lost 0 would otherwise only show in QGIS. The Processing side (parameters ->
these requests) is checked the same way in tests/qgis/test_plugin_commands_parse.py."""
from __future__ import annotations

import dataclasses
import os

import pytest

from dubai_segmenter.child_process.engine_command import (
    SegmentRequest,
    VectorizeOptions,
    VectorizeRequest,
    info_arguments,
)
from dubai_segmenter.engine.classes import DUBAI_CLASSES
from dubai_segmenter.engine.cli import build_parser, parse_classes
from dubai_segmenter.engine.raster_input import parse_band_list


def parse(arguments: list[str]):
    """What ``python -m dubai_segmenter ...`` would make of ``arguments`` (argparse errors exit 2)."""
    assert arguments[:2] == ["-m", "dubai_segmenter"]
    return build_parser().parse_args(arguments[2:])


FULL = SegmentRequest(
    input_path="in put; x.tif", model_path="/models/m.safetensors", out_raster="out/classes.tif",
    out_vector="out/polygons.gpkg",
    vectorize=VectorizeOptions(classes=("building", "4"), min_area=12.5, simplify=0.25),
    bands=(4, 3, 2), tile_size=256, overlap=0, batch_size=3, resolution=0.3, scheduler="tcp://10.0.0.5:8786",
    tta="flips",
)

#: SegmentRequest field -> the engine's view of it after parsing (and the engine's own conversions).
MEANT = {
    "input_path": lambda a: a.inputs == [os.path.abspath("in put; x.tif")],
    "model_path": lambda a: a.model == "/models/m.safetensors",
    "out_raster": lambda a: a.out_raster == os.path.abspath("out/classes.tif"),
    "out_vector": lambda a: a.out_vector == os.path.abspath("out/polygons.gpkg"),
    "vectorize": lambda a: (parse_classes(a.classes, DUBAI_CLASSES), a.min_area, a.simplify) == ([0, 4], 12.5, 0.25),
    "bands": lambda a: parse_band_list(a.bands) == (4, 3, 2),
    "tile_size": lambda a: a.tile == 256,
    "overlap": lambda a: a.overlap == 0,
    "batch_size": lambda a: a.batch == 3,
    "resolution": lambda a: a.resolution == 0.3,
    "scheduler": lambda a: a.scheduler == "tcp://10.0.0.5:8786" and a.cluster is None,
    "tta": lambda a: a.tta == "flips",
}


def test_every_field_of_a_segment_request_reaches_the_engine_as_meant():
    args = parse(FULL.arguments())
    assert (args.command, args.progress) == ("segment", "lines")
    wrong = [name for name, meant in MEANT.items() if not meant(args)]
    assert not wrong, f"parsed differently from what the plugin meant: {wrong} in {args}"


def test_no_field_of_a_segment_request_goes_unchecked():
    """A field added to SegmentRequest (say a backend or TTA choice) needs its line in MEANT."""
    assert {f.name for f in dataclasses.fields(SegmentRequest)} == set(MEANT)


def test_a_request_with_nothing_set_leaves_every_choice_to_the_engine():
    args = parse(SegmentRequest("/a.tif", "/m.onnx", "/o.tif").arguments())
    defaults = build_parser().parse_args(["segment", "/a.tif", "--model", "/m.onnx", "--out-raster", "/o.tif"])
    assert vars(args) == vars(defaults) | {"progress": "lines"}
    assert args.overlap is None and args.tile is None  # None = the model's own, unlike an overlap of 0


@pytest.mark.parametrize("value, text", [(0, "0"), (2.0, "2"), (0.1, "0.1"), (1e-7, "1e-07"), (123456.75, "123456.75")])
def test_numbers_keep_their_value_through_the_command_line(value, text):
    options = VectorizeOptions(min_area=value, simplify=value)
    args = parse(VectorizeRequest("/c.tif", "/v.gpkg", options).arguments())
    assert (args.min_area, args.simplify) == (value, value)
    args = parse(SegmentRequest("/a.tif", "/m.onnx", "/o.tif", resolution=value or 1.0).arguments())
    assert args.resolution == (value or 1.0)


def test_vectorize_and_info_commands_parse_as_meant():
    args = parse(VectorizeRequest("c.tif", "v.gpkg", VectorizeOptions(classes=("road",))).arguments())
    assert (args.command, args.classified, args.out_vector, args.classes, args.progress) == (
        "vectorize", os.path.abspath("c.tif"), os.path.abspath("v.gpkg"), "road", "lines")
    assert (args.min_area, args.simplify) == (0.0, 0.0)  # the engine's defaults when not given
    args = parse(info_arguments("m.safetensors"))
    assert (args.command, args.model, args.json) == ("info", os.path.abspath("m.safetensors"), True)
