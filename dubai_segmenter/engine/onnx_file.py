# SPDX-License-Identifier: GPL-2.0-or-later
"""The ONNX model file: export from our model file, and read back without TensorFlow.

Why ONNX: ONNX Runtime runs the reference network faster than TensorFlow on a CPU
(``benchmarks/bench_backends.py``) and is a far smaller install, so the plugin's child
process can segment with onnxruntime + numpy + rasterio only.

What an exported file holds:
- the network at one tile size (the InceptionResNetV2 U-Net pads its skips by amounts
  that depend on the tile, so its graph is static; export again for another tile), any
  batch size, input ``image`` (N, bands, tile, tile) float32 already scaled, output
  ``probabilities`` (N, classes, tile, tile). Channels-first because ONNX Runtime computes
  convolutions channels-first (no layout transposes inside the graph) and because Deepness
  expects it;
- large weights stored as float16, each followed by a Cast to float32 that ONNX Runtime
  constant-folds when the session opens: the file is half the size (74 MB for the
  reference network instead of 147 MB) and computation stays float32;
- ``metadata_props``: our ``format``/``format_version``/``metadata`` (the ``ModelMetadata``
  JSON, exactly as in the safetensors file), ``source_sha256`` (the model file it came
  from, so ``open_predictor`` can tell a stale export from a current one), ``precision``
  ("fp32"; ``int8_export.py`` writes quantized files), and the keys
  the Deepness QGIS plugin reads (model_type, class_names, resolution in cm/pixel,
  tile_size and tiles_size, tiles_overlap in percent, standardization_mean/std chosen so
  that Deepness's own "divide by 255, then standardize" equals our ``input_scale``).

Reading (``read_onnx_metadata``) needs only onnxruntime; exporting needs TensorFlow,
tf2onnx and onnx, imported inside ``export_onnx``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dubai_segmenter.engine.atomic_file import written_atomically
from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.model_file import FORMAT_NAME, FORMAT_VERSION, ModelMetadata, read_metadata

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
#: ONNX operator set of the export: ONNX Runtime has run it since 1.12 (2022), so the file
#: also opens in the older onnxruntime a QGIS installation may carry.
OPSET = 17
#: Initializers with at least this many values are stored as float16 (the weights that
#: make up the file size); smaller constants stay exact float32.
FLOAT16_MIN_SIZE = 256


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata_props(metadata: ModelMetadata, tile_size: int, source_sha256: str) -> dict[str, str]:
    """The ``metadata_props`` of an export: ours, and the keys Deepness reads (JSON values)."""
    scale_as_std = 1.0 / (255.0 * metadata.input_scale)  # (x / 255 - 0) / std == x * input_scale
    props = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "metadata": metadata.to_json(),
        "source_sha256": source_sha256,
        "precision": "fp32",  # int8 exports say "int8" (int8_export.py)
        "model_type": json.dumps("Segmentor"),
        "class_names": json.dumps({str(c.id): c.name for c in metadata.classes}),
        "tile_size": json.dumps(tile_size),
        "tiles_size": json.dumps(tile_size),
        "tiles_overlap": json.dumps(int(round(100 * metadata.overlap / metadata.tile_size))),
        "standardization_mean": json.dumps([0.0] * metadata.input_bands),
        "standardization_std": json.dumps([scale_as_std] * metadata.input_bands),
    }
    if metadata.resolution is not None:
        props["resolution"] = json.dumps(metadata.resolution * 100)  # Deepness: cm/pixel
    return props


def read_onnx_metadata(session: Any, path: str | os.PathLike) -> tuple[ModelMetadata, int, str]:
    """(metadata, exported tile size, source sha256) of an open onnxruntime session.

    Raises ModelFileError when the file is ONNX but not a dubai_segmenter export.
    """
    props = session.get_modelmeta().custom_metadata_map
    if props.get("format") != FORMAT_NAME or "metadata" not in props:
        raise ModelFileError(
            f"{path} is an ONNX model but not a dubai_segmenter export (no {FORMAT_NAME!r} metadata): "
            "export one with `python -m dubai_segmenter export-onnx MODEL.safetensors OUT.onnx`"
        )
    version = props.get("format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: export format version {version!r} is not one this dubai_segmenter reads "
            f"(up to {FORMAT_VERSION}): update dubai_segmenter"
        )
    metadata = ModelMetadata.from_json(props["metadata"], path)
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or shape[1] != metadata.input_bands or shape[2] != shape[3] or not isinstance(shape[2], int):
        raise ModelFileError(f"{path}: input shape {shape} is not (N, {metadata.input_bands}, tile, tile)")
    return metadata, shape[2], props.get("source_sha256", "")


def open_onnx_session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An onnxruntime session on the CPU, or ModelFileError for a file ONNX Runtime cannot read."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if not Path(path).is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types per failure
        raise ModelFileError(
            f"{path} is not a readable ONNX model ({str(exc).splitlines()[0][:200]}); "
            "if it was copied or downloaded, fetch it again"
        ) from exc


def export_onnx(model_path: str | os.PathLike, onnx_path: str | os.PathLike, tile_size: int | None = None) -> Path:
    """Export a dubai_segmenter model file to ONNX at ``tile_size`` (default: the model's).

    Written under a temporary name and renamed, like the model file.
    """
    import onnx
    import tensorflow as tf
    import tf2onnx

    from dubai_segmenter.engine.architectures import check_tile_size
    from dubai_segmenter.engine.model_file import load_keras_model

    metadata = read_metadata(model_path)
    tile = metadata.tile_size if tile_size is None else tile_size
    check_tile_size(metadata.architecture, tile, metadata.architecture_params)
    model = load_keras_model(model_path, tile)
    spec = [tf.TensorSpec((None, tile, tile, metadata.input_bands), tf.float32, name=INPUT_NAME)]
    function = tf.function(lambda image: model(image, training=False))
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET, inputs_as_nchw=[INPUT_NAME])
    _channels_first_output(proto)
    _store_weights_as_float16(proto)
    for key, value in metadata_props(metadata, tile, file_sha256(model_path)).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "dubai_segmenter"
    onnx.checker.check_model(proto)
    with written_atomically(onnx_path) as temporary:
        onnx.save(proto, str(temporary))
    return Path(onnx_path)


def _channels_first_output(proto: Any) -> None:
    """End the graph with a transpose to (N, C, H, W) named OUTPUT_NAME, the layout Deepness reads.

    tf2onnx's ``outputs_as_nchw`` would do the same, but it matches outputs by their
    TensorFlow names, which a ``tf.function`` does not let us choose.
    """
    import onnx
    from onnx import helper

    output = proto.graph.output[0]
    channels_last = f"{OUTPUT_NAME}_nhwc"
    for node in proto.graph.node:
        node.output[:] = [channels_last if o == output.name else o for o in node.output]
        node.input[:] = [channels_last if i == output.name else i for i in node.input]
    proto.graph.node.append(helper.make_node("Transpose", [channels_last], [OUTPUT_NAME], perm=[0, 3, 1, 2]))
    n, h, w, c = (d.dim_value or d.dim_param or None for d in output.type.tensor_type.shape.dim)
    output.CopyFrom(helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, [n, c, h, w]))


def _store_weights_as_float16(proto: Any) -> None:
    """Replace each large float32 initializer W by float16 W_fp16 + Cast(W_fp16) -> W."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            kept.append(init)
            continue
        value = numpy_helper.to_array(init)
        if value.size < FLOAT16_MIN_SIZE or float(np.abs(value).max()) > float(np.finfo(np.float16).max):
            kept.append(init)
            continue
        half = numpy_helper.from_array(value.astype(np.float16), f"{init.name}_fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)  # casts first: the graph stays topologically sorted
