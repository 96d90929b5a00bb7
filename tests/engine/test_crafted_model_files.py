# SPDX-License-Identifier: GPL-2.0-or-later
"""Crafted model files (right keys, wrong types or absurd values) are refused from the header alone.

Each is refused with exit code 2 and one line naming the file and the field, by ``info``
and ``segment`` alike, before any network is built; the weight values the file stores must
add up to what the architecture it claims needs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from dubai_segmenter.engine.architectures import IRV2_UNET, PIXEL_LINEAR, UNET_SMALL, build_model
from dubai_segmenter.engine.cli import EXIT_BAD_INPUT, main
from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.metadata_checks import weight_count
from dubai_segmenter.engine.model_file import read_metadata
from dubai_segmenter.engine.onnx_file import export_onnx
from dubai_segmenter.engine.predictors import read_model_metadata
from tests.engine.helpers import run_without_tensorflow
from tests.engine.rasters import block_classes, write_painted


def _header(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())  # noqa: SIM118 (safe_open is not iterable)


def _crafted(source: Path, target: Path, change) -> Path:
    """Copy of a model file whose metadata JSON object went through ``change`` (in place)."""
    tensors, header = _header(source)
    data = json.loads(header["metadata"])
    change(data)
    header["metadata"] = json.dumps(data)
    save_file(tensors, str(target), metadata=header)
    return target


def _set(**fields):
    return lambda data: data.update(fields)


def _set_param(name, value):
    return lambda data: data["architecture_params"].__setitem__(name, value)


def _drop(field):
    return lambda data: data.pop(field)


def _class_entry(index, key, value):
    return lambda data: data["classes"][index].__setitem__(key, value)


CASES = {  # name: (change, field named in the message, words of what was expected)
    "bands_float": (_set(input_bands=3.0), "input_bands", "integer from 1 to 64"),
    "bands_zero": (_set(input_bands=0), "input_bands", "integer from 1 to 64"),
    "bands_huge": (_set(input_bands=100000), "input_bands", "integer from 1 to 64"),
    "bands_text": (_set(input_bands="3"), "input_bands", "integer"),
    "bands_bool": (_set(input_bands=True), "input_bands", "integer"),
    "overlap_float": (_set(overlap=100.5), "overlap", "whole number"),
    "overlap_half": (_set(overlap=32), "overlap", "less than half the tile"),
    "overlap_negative": (_set(overlap=-1), "overlap", "whole number >= 0"),
    "overlap_text": (_set(overlap="16"), "overlap", "whole number"),
    "tile_text": (_set(tile_size="64"), "tile_size", "integer"),
    "tile_float": (_set(tile_size=64.0), "tile_size", "integer"),
    "tile_huge": (_set(tile_size=1 << 40), "tile_size", "up to 4096"),
    "tile_zero": (_set(tile_size=0), "tile_size", "of at least 1"),
    "scale_text": (_set(input_scale="1/255"), "input_scale", "number greater than 0"),
    "scale_negative": (_set(input_scale=-1.0), "input_scale", "number greater than 0"),
    "scale_nan": (_set(input_scale=math.nan), "input_scale", "number greater than 0"),
    "resolution_zero": (_set(resolution=0), "resolution", "greater than 0"),
    "resolution_text": (_set(resolution="0.3 m"), "resolution", "greater than 0"),
    "provenance_list": (_set(provenance=[1, 2]), "provenance", "JSON object"),
    "architecture_number": (_set(architecture=5), "architecture", "unknown architecture"),
    "architecture_unknown": (_set(architecture="segformer"), "architecture", "unknown architecture 'segformer'"),
    "params_list": (_set(architecture_params=[1]), "architecture_params", "JSON object"),
    "params_unknown": (_set_param("depth", 3), "architecture_params", "unknown parameter(s) depth"),
    "classes_one": (lambda d: d.update(classes=d["classes"][:1]), "classes", "2 to 255 classes"),
    "classes_many": (
        lambda d: d.update(classes=[{"id": i, "name": f"c{i}", "color": [0, 0, 0]} for i in range(300)]),
        "classes", "2 to 255 classes",
    ),
    "class_id_text": (_class_entry(1, "id", "1"), "classes", "class ids must be 0..C-1"),
    "class_colour_300": (_class_entry(2, "color", [300, 0, 0]), "classes", "3 integers 0..255"),
    "class_colour_float": (_class_entry(2, "color", [1.5, 0, 0]), "classes", "3 integers 0..255"),
    "class_name_empty": (_class_entry(0, "name", " "), "classes", "text of 1 to 200 characters"),
    "class_name_number": (_class_entry(0, "name", 7), "classes", "text of 1 to 200 characters"),
    "class_extra_key": (_class_entry(0, "weight", 2), "classes", "object with id, name and color"),
    "missing_tile": (_drop("tile_size"), "tile_size", "is missing"),
    "unknown_field": (_set(channels_first=True), "channels_first", "not a field of this model format"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_metadata_is_refused_naming_file_and_field(tmp_path, colour_model_file, case, capsys):
    change, field, expected = CASES[case]
    path = _crafted(colour_model_file, tmp_path / f"{case}.safetensors", change)
    with pytest.raises(ModelFileError) as refused:
        read_metadata(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: model metadata field '{field}'"), message
    assert expected in message and "\n" not in message, message
    # info and segment refuse it the same way: exit 2, one line, no traceback.
    scene = write_painted(tmp_path / "scene.tif", block_classes(40, 40))
    for argv in (["info", path], ["segment", scene, "--model", path, "--out-raster", tmp_path / "c.tif"]):
        assert main([str(a) for a in argv]) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [f"ERROR: {message}"], err
    assert not (tmp_path / "c.tif").exists()


def test_unet_small_filter_lists_are_checked(tmp_path, small_unet_model_file):
    for value, expected in (([], "list of 2 to 8 values"), ([8, 16.0, 32], "filter count 16.0"),
                            ([8, 200000], "filter count 200000"), ("8,16", "list of 2 to 8 values")):
        path = _crafted(small_unet_model_file, tmp_path / "u.safetensors", _set_param("filters", value))
        with pytest.raises(ModelFileError, match=rf"field 'architecture_params.filters'.*{expected}"):
            read_metadata(path)
    for name, value in (("dropout", 1.0), ("dropout", "0.3"), ("bn_momentum", -0.1)):
        path = _crafted(small_unet_model_file, tmp_path / "u.safetensors", _set_param(name, value))
        with pytest.raises(ModelFileError, match=rf"field 'architecture_params.{name}'"):
            read_metadata(path)


@pytest.mark.parametrize(
    "architecture, params",
    [(PIXEL_LINEAR, {}), (UNET_SMALL, {}), (UNET_SMALL, {"filters": [4, 8, 16, 24]}),
     (UNET_SMALL, {"filters": [5, 3]})],
)
@pytest.mark.parametrize("classes, bands", [(6, 3), (2, 5)])
def test_weight_count_from_the_header_matches_the_built_network(architecture, params, classes, bands):
    model = build_model(architecture, params, classes, bands, 32)
    assert weight_count(architecture, params, classes, bands) == sum(int(np.prod(w.shape)) for w in model.weights)


def test_weight_count_of_the_reference_network(irv2_model_256):
    model, path = irv2_model_256
    assert weight_count(IRV2_UNET, {}, 6, 3) == sum(int(np.prod(w.shape)) for w in model.weights)
    params = {"decoder_filters": [64, 32, 16, 8]}
    other = build_model(IRV2_UNET, params, 3, 4, 320)  # another tile, band and class count
    assert weight_count(IRV2_UNET, params, 3, 4) == sum(int(np.prod(w.shape)) for w in other.weights)
    assert read_metadata(path).architecture == IRV2_UNET  # a real file passes the total check


def test_metadata_that_claims_another_network_is_refused_from_the_header(tmp_path, colour_model_file):
    # Every field is valid on its own, but the stored weights are a 3-band, 6-class pixel_linear.
    for change in (_set(input_bands=4), lambda d: d.update(classes=d["classes"][:5]),
                   _set(architecture=UNET_SMALL)):
        path = _crafted(colour_model_file, tmp_path / "other.safetensors", change)
        with pytest.raises(ModelFileError,
                           match=r"holds 24 weight values but a .* needs [\d,]+; the metadata does not match"):
            read_metadata(path)


def test_a_huge_decoder_is_refused_without_building_anything(tmp_path, colour_model_file):
    """200000 decoder filters: refused by range; 4096 (in range): refused by the weight total.

    In a process where TensorFlow cannot even be imported, and its peak memory (VmHWM: the
    process's own, unlike ru_maxrss, which a forked child inherits from this TensorFlow-laden
    pytest) stays that of reading a header, far below the gigabytes such a network would take."""
    scene = write_painted(tmp_path / "scene.tif", block_classes(40, 40))
    files = {}
    for name, filters in (("huge", [200000, 256, 128, 64]), ("big", [4096, 4096, 4096, 4096])):
        files[name] = _crafted(colour_model_file, tmp_path / f"{name}.safetensors", lambda d, f=filters: d.update(
            architecture=IRV2_UNET, architecture_params={"decoder_filters": f}, tile_size=256, overlap=32))
    done = run_without_tensorflow(
        "from dubai_segmenter.engine.cli import main\n"
        f"for model in ({str(files['huge'])!r}, {str(files['big'])!r}):\n"
        f"    print(main(['segment', {str(scene)!r}, '--model', model, '--out-raster', {str(tmp_path / 'c.tif')!r}]))\n"
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024)\n"
    )
    lines = done.stdout.split()
    assert lines[:2] == ["2", "2"], done.stdout + done.stderr
    assert int(lines[2]) < 400, f"peak {lines[2]} MB"
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2, done.stderr
    assert "field 'architecture_params.decoder_filters': filter count 200000 is not allowed" in errors[0]
    assert str(files["huge"]) in errors[0]
    assert "the metadata does not match the weights" in errors[1] and str(files["big"]) in errors[1]
    assert not (tmp_path / "c.tif").exists()


def test_onnx_metadata_is_checked_too(tmp_path, colour_model_file, capsys):
    exported = export_onnx(colour_model_file, tmp_path / "colour.onnx")
    proto = onnx.load(str(exported))
    for entry in proto.metadata_props:
        if entry.key == "metadata":
            data = json.loads(entry.value)
            data["overlap"] = 100.5
            entry.value = json.dumps(data)
    crafted = tmp_path / "crafted.onnx"
    onnx.save(proto, str(crafted))
    with pytest.raises(ModelFileError, match=rf"^{crafted}: model metadata field 'overlap': overlap 100.5 must be"):
        read_model_metadata(crafted)
    assert main(["info", str(crafted)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.count("\n") == 1
