# SPDX-License-Identifier: GPL-2.0-or-later
"""The ONNX Runtime backend: same answers as TensorFlow, our metadata inside, no TensorFlow needed."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.model_file import describe_model, read_metadata
from dubai_segmenter.engine.onnx_file import export_onnx, open_onnx_session, read_onnx_metadata
from dubai_segmenter.engine.predictors import open_predictor, read_model_metadata
from tests.engine.helpers import paint, run_without_tensorflow, save_colour_model, save_small_unet


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Colour model and small U-Net, each with its ONNX export beside it (own folder, so
    the shared fixtures' backend choice is not changed)."""
    folder = tmp_path_factory.mktemp("exported")
    files = {}
    for name, save in (("colour", save_colour_model), ("unet", save_small_unet)):
        model = save(folder / f"{name}.safetensors")
        files[name] = (model, export_onnx(model, folder / f"{name}.onnx"))
    return files


def test_both_backends_give_the_same_classes(exported):
    model, _ = exported["unet"]
    tf_predictor = open_predictor(model, backend="tf")
    onnx_predictor = open_predictor(model, backend="auto")  # a current export sits beside it
    assert (tf_predictor.backend, onnx_predictor.backend) == ("tf", "onnx")
    batch = np.random.default_rng(5).random((3, 64, 64, 3), dtype=np.float32)
    expected, got = tf_predictor.predict(batch), onnx_predictor.predict(batch)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert (got.argmax(-1) == expected.argmax(-1)).mean() > 0.999


def test_onnx_colour_model_is_exact(exported):
    _, onnx_path = exported["colour"]
    predictor = open_predictor(onnx_path)
    ids = np.random.default_rng(2).integers(0, 6, (2, 64, 64))
    probabilities = predictor.predict(paint(ids) * predictor.metadata.input_scale)
    np.testing.assert_array_equal(probabilities.argmax(-1), ids)


def test_export_carries_our_metadata_and_deepness_keys(exported):
    model, onnx_path = exported["unet"]
    session = open_onnx_session(onnx_path)
    metadata, tile, _ = read_onnx_metadata(session, onnx_path)
    assert metadata == read_metadata(model) == read_model_metadata(onnx_path) and tile == 64
    assert "Classes (6)" in describe_model(metadata, onnx_path)
    # What Deepness reads: channels-first input and output, square tiles, its metadata keys.
    assert session.get_inputs()[0].shape[1:] == [3, 64, 64]
    assert session.get_outputs()[0].shape[1:] == [6, 64, 64]
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["model_type"]) == "Segmentor"
    assert json.loads(props["class_names"]) == {str(c.id): c.name for c in metadata.classes}
    assert json.loads(props["tile_size"]) == 64 and json.loads(props["tiles_overlap"]) == 25  # 16 of 64 px
    # Deepness divides by 255 then standardizes: with these the network sees x * input_scale.
    scale = 1 / (255 * np.array(json.loads(props["standardization_std"])))
    np.testing.assert_allclose(scale, metadata.input_scale, rtol=1e-9)
    assert json.loads(props["standardization_mean"]) == [0.0, 0.0, 0.0]


def test_large_weights_are_stored_as_float16(exported):
    _, onnx_path = exported["unet"]
    graph = onnx.load(str(onnx_path)).graph
    halves = [i for i in graph.initializer if i.data_type == TensorProto.FLOAT16]
    assert halves and all(i.name.endswith("_fp16") for i in halves)
    casts = {n.input[0] for n in graph.node if n.op_type == "Cast"}
    assert {i.name for i in halves} <= casts


def test_auto_falls_back_to_tensorflow_when_the_export_is_not_current(exported, tmp_path):
    model, onnx_path = exported["unet"]
    copy = shutil.copy(model, tmp_path / "unet.safetensors")
    shutil.copy(onnx_path, tmp_path / "unet.onnx")
    assert open_predictor(copy).backend == "onnx"
    assert open_predictor(copy, tile_size=128).backend == "tf"  # exported for 64 only
    save_small_unet(tmp_path / "unet.safetensors", seed=1)  # the model changed: export is stale
    assert open_predictor(copy).backend == "tf"
    with pytest.raises(ValueError, match="exported from another version.*export-onnx"):
        open_predictor(copy, backend="onnx")


def test_bad_backend_requests_are_refused_clearly(exported, colour_model_file):
    _, onnx_path = exported["colour"]
    with pytest.raises(ValueError, match="ONNX export: it runs with backend 'onnx'"):
        open_predictor(onnx_path, backend="tf")
    with pytest.raises(ValueError, match="exported for 64-pixel tiles, not 128: use --tile 64"):
        open_predictor(onnx_path, tile_size=128)
    with pytest.raises(ValueError, match="no export colour.onnx beside the model.*export-onnx"):
        open_predictor(colour_model_file, backend="onnx")


def test_onnx_files_that_are_not_ours_are_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    with pytest.raises(ModelFileError, match="ONNX model but not a dubai_segmenter export.*export-onnx"):
        open_predictor(foreign)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        open_predictor(garbage)


def test_onnx_backend_runs_without_tensorflow(exported):
    model, onnx_path = exported["colour"]
    done = run_without_tensorflow(
        "import numpy as np\n"
        "from dubai_segmenter.engine.predictors import open_predictor, read_model_metadata\n"
        "from tests.engine.helpers import PALETTE\n"
        f"for path in ({str(onnx_path)!r}, {str(model)!r}):\n"
        "    predictor = open_predictor(path)\n"
        "    ids = np.arange(64 * 64).reshape(1, 64, 64) % 6\n"
        "    out = predictor.predict(PALETTE[ids] / 255.0)\n"
        "    print(predictor.backend, bool((out.argmax(-1) == ids).all()))\n"
        "import sys\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
        "try:\n"
        f"    open_predictor({str(model)!r}, tile_size=32)\n"
        "except ValueError as exc:\n"
        "    print('refused:', exc)\n"
    )
    lines = done.stdout.splitlines()
    assert lines[:3] == ["onnx True", "onnx True", "[]"], done.stdout + done.stderr
    assert "refused:" in lines[3] and "TensorFlow, the other backend, is not installed" in lines[3]


def test_the_shipped_network_exported_to_onnx_agrees_with_tensorflow(tmp_path, irv2_model_256):
    """The InceptionResNetV2 U-Net itself (tile 256, random weights), not only the tiny test
    networks: exported, run by ONNX Runtime and compared with TensorFlow on the same tiles."""
    _, model_file = irv2_model_256
    exported = export_onnx(model_file, tmp_path / "irv2.onnx")
    tf_predictor = open_predictor(model_file, backend="tf")
    onnx_predictor = open_predictor(exported)
    assert (tf_predictor.backend, onnx_predictor.backend, onnx_predictor.tile_size) == ("tf", "onnx", 256)
    rng = np.random.default_rng(11)
    batch = np.concatenate([rng.random((1, 256, 256, 3), dtype=np.float32),  # noise and a painted scene
                            paint(rng.integers(0, 6, (1, 32, 32)).repeat(8, 1).repeat(8, 2)) / np.float32(255)])
    expected, got = tf_predictor.predict(batch), onnx_predictor.predict(batch)
    assert got.shape == expected.shape == (2, 256, 256, 6)
    same_class = (got.argmax(-1) == expected.argmax(-1)).mean()
    print(f"IRV2 U-Net ONNX vs TensorFlow: max |difference| {np.abs(got - expected).max():.2g}, "
          f"same class {same_class:.5%}")
    np.testing.assert_allclose(got, expected, atol=5e-3)
    assert same_class > 0.999


def test_a_run_on_an_onnx_file_opens_it_once(exported, tmp_path, monkeypatch):
    """The session made to check the file before the run is the one the run uses."""
    import onnxruntime

    from dubai_segmenter.engine.cli import main
    from tests.engine.rasters import write_painted

    _, onnx_path = exported["colour"]
    opened = []
    real = onnxruntime.InferenceSession

    def counting(path, *args, **kwargs):
        opened.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting)
    ids = np.random.default_rng(3).integers(0, 6, (80, 90))
    scene = write_painted(tmp_path / "scene.tif", ids)
    code = main(["segment", str(scene), "--model", str(onnx_path), "--out-raster", str(tmp_path / "c.tif"),
                 "--progress", "none"])
    assert code == 0 and opened == [str(onnx_path)]
    # a changed file is not served from the kept session
    read_model_metadata(onnx_path)
    onnx_path.touch()
    open_predictor(onnx_path)
    assert len(opened) == 3
