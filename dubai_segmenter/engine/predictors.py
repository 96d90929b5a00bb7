# SPDX-License-Identifier: GPL-2.0-or-later
"""Predictors: run a model file on batches of tiles, whatever computes it.

The tiling code (``segment.py``) only needs "tiles in, probabilities out"; the
``Predictor`` protocol is that contract, so the computing backend (TensorFlow or ONNX
Runtime) can change without touching tiling, blending or I/O. Each backend's library is
imported only when a predictor of that backend is opened: importing this module needs
neither, and the ONNX path works where TensorFlow is not installed.

How ``open_predictor`` chooses (backend="auto"):
- an ``.onnx`` file (see ``onnx_file.py``) runs with ONNX Runtime;
- a ``.safetensors`` model file runs with ONNX Runtime when an export of that very file
  sits beside it (same name, ``.onnx``; its recorded sha256 matches the model file and
  its tile size the requested one) and onnxruntime is installed: ONNX Runtime is the
  faster backend on a CPU (``benchmarks/bench_backends.py``). Otherwise TensorFlow.
  Before that float32 export, an int8 export beside it (``NAME.int8.onnx``, see
  ``int8_export.py``) is chosen when it is current, its recorded accuracy gate passed and
  this CPU multiplies int8 natively (``cpu_features.py``); otherwise the reason it was not
  is logged and float32 runs.
The chosen backend is the predictor's ``backend`` (its ``precision`` says fp32 or int8)
and ``open_predictor`` logs why. An ``.onnx`` file given directly runs as it is.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dubai_segmenter.engine.architectures import check_tile_size
from dubai_segmenter.engine.contract import BACKENDS
from dubai_segmenter.engine.cpu_features import int8_support
from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.int8_export import int8_path_for, read_precision
from dubai_segmenter.engine.model_file import ModelMetadata, load_keras_model, read_metadata
from dubai_segmenter.engine.onnx_file import file_sha256, open_onnx_session, read_onnx_metadata

EXPORT_HINT = "python -m dubai_segmenter export-onnx {model} {onnx}"
log = logging.getLogger(__name__)


@runtime_checkable
class Predictor(Protocol):
    """A model ready to run on tiles of one size."""

    metadata: ModelMetadata
    tile_size: int
    backend: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, tile, tile, input_bands) float32 already scaled -> (N, tile, tile, C) float32 probabilities"""
        ...


def check_batch(batch: np.ndarray, tile_size: int, input_bands: int) -> np.ndarray:
    """The batch as contiguous float32, or ValueError saying which dimension is wrong."""
    batch = np.asarray(batch)
    expected = ("N", tile_size, tile_size, input_bands)
    if batch.ndim != 4 or batch.shape[1:] != expected[1:] or batch.shape[0] < 1:
        raise ValueError(f"batch shape {batch.shape} does not fit this model: expected {expected}")
    return np.ascontiguousarray(batch, dtype=np.float32)


class TensorFlowPredictor:
    """A Keras model rebuilt from a model file, called through one traced ``tf.function``.

    The fixed input signature (any batch size, fixed tile) means one trace for the whole
    run instead of a retrace per batch shape, and ``training=False`` makes BatchNorm use
    its moving statistics and Dropout do nothing.
    """

    backend = "tf"

    def __init__(self, path: str | os.PathLike, metadata: ModelMetadata, tile_size: int) -> None:
        import tensorflow as tf

        self.metadata = metadata
        self.tile_size = tile_size
        self._model = load_keras_model(path, tile_size)
        spec = tf.TensorSpec((None, tile_size, tile_size, metadata.input_bands), tf.float32)
        self._call = tf.function(lambda x: self._model(x, training=False), input_signature=[spec])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self.tile_size, self.metadata.input_bands)
        return self._call(batch).numpy().astype(np.float32, copy=False)


class OnnxPredictor:
    """An exported model run by ONNX Runtime (no TensorFlow needed).

    The graph is channels-first (see ``onnx_file.py``); the transposes here cost a few
    milliseconds per 512 tile against about two seconds of network.
    """

    backend = "onnx"

    def __init__(self, session, metadata: ModelMetadata, tile_size: int) -> None:
        self.metadata = metadata
        self.tile_size = tile_size
        self._session = session
        self._input = session.get_inputs()[0].name
        self.precision, self.accuracy_gate = read_precision(session.get_modelmeta().custom_metadata_map)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self.tile_size, self.metadata.input_bands)
        (out,) = self._session.run(None, {self._input: np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1), dtype=np.float32)


def _installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (TensorFlow takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a broken installation or an import hook refusing it
        return False


#: The session ``read_model_metadata`` opened on an ONNX file, kept (one) so that the run
#: which checked the file first does not open the same model a second time.
_checked_session: tuple[tuple, Any] | None = None


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _open_onnx(path: Path, tile_size: int | None, threads: int | None) -> OnnxPredictor:
    global _checked_session
    if threads is None and _checked_session is not None and _checked_session[0] == _file_key(path):
        session, _checked_session = _checked_session[1], None  # the run takes it over
    else:
        session = open_onnx_session(path, threads)
    metadata, exported_tile, _ = read_onnx_metadata(session, path)
    if tile_size is not None and tile_size != exported_tile:
        raise ValueError(
            f"{path} was exported for {exported_tile}-pixel tiles, not {tile_size}: use --tile "
            f"{exported_tile} or export again with --tile {tile_size}"
        )
    return OnnxPredictor(session, metadata, exported_tile)


def _current_export(
    model_path: Path, tile_size: int, threads: int | None, onnx_path: Path | None = None
) -> tuple[OnnxPredictor | None, str]:
    """A predictor on the ONNX export beside a model file (default ``NAME.onnx``) if that export
    is current, else (None, why not)."""
    onnx_path = model_path.with_suffix(".onnx") if onnx_path is None else onnx_path
    if not onnx_path.is_file():
        return None, f"no export {onnx_path.name} beside the model"
    if not _installed("onnxruntime"):
        return None, "onnxruntime is not installed"
    try:
        session = open_onnx_session(onnx_path, threads)
        metadata, exported_tile, source_sha256 = read_onnx_metadata(session, onnx_path)
    except ModelFileError as exc:
        return None, str(exc)
    if source_sha256 != file_sha256(model_path):
        return None, f"{onnx_path.name} was exported from another version of {model_path.name}"
    if exported_tile != tile_size:
        return None, f"{onnx_path.name} was exported for {exported_tile}-pixel tiles, not {tile_size}"
    return OnnxPredictor(session, metadata, exported_tile), f"{onnx_path.name} is a current export of the model"


def _current_int8(
    model_path: Path, tile_size: int, threads: int | None, check: bool,
) -> tuple[OnnxPredictor | None, str]:
    """A predictor on the int8 export beside a model file, else (None, why not).

    ``check``: also require this CPU's int8 instructions and a passed accuracy gate (auto).
    """
    int8_path = int8_path_for(model_path)
    if check:
        fast, why = int8_support()
        if not fast:
            return None, why
    predictor, why = _current_export(model_path, tile_size, threads, int8_path)
    if predictor is None:
        return None, why
    if predictor.precision != "int8":
        return None, f"{int8_path.name} is not an int8 export"
    gate = predictor.accuracy_gate
    if check and not (gate and gate.get("passed")):
        return None, f"{int8_path.name} has {'failed' if gate else 'not been through'} the accuracy gate (make int8)"
    reason = f"{int8_path.name} is a current int8 export"
    if check:
        reason += f", passed the accuracy gate and {int8_support()[1]}"
    return predictor, reason


def read_model_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The metadata of a model file or an ONNX export, without TensorFlow.

    For checks before a run (bands, tile size) and for ``info``. An ONNX file is opened
    with onnxruntime to read it (about a second for the reference network); that session is
    kept for the next ``open_predictor`` of the same unchanged file, so a run opens it once.
    """
    global _checked_session
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        session = open_onnx_session(path)  # the run's own thread count: open_predictor reuses it
        metadata = read_onnx_metadata(session, path)[0]
        _checked_session = (_file_key(path), session)
        return metadata
    return read_metadata(path)


def open_predictor(
    path: str | os.PathLike, tile_size: int | None = None, backend: str = "auto", threads: int | None = None,
    cache_export: bool = False,
) -> Predictor:
    """Open a model file (``.safetensors`` or exported ``.onnx``) for prediction.

    tile_size: default the model's own (for an ONNX file: the exported one).
    backend: "auto" (see the module docstring), "onnx" (float32 export), "int8" (the int8
    export, whatever the CPU and the gate say) or "tf".
    threads: ONNX Runtime intra-op threads (default: one per core).
    cache_export: with backend "auto" at the model's own tile size, make the ONNX export beside
    a model file that has no current one, when the exporter is installed (``onnx_cache.py``),
    and run that.
    Raises ModelFileError for a file that is not a usable model and ValueError for an
    unknown backend, a backend that cannot run this file, or a tile size the model cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if backend == "tf":
            raise ValueError(
                f"{path} is an ONNX export: it runs with backend 'onnx' (or 'auto'); for TensorFlow "
                "open the .safetensors model file it was exported from"
            )
        predictor = _open_onnx(path, tile_size, threads)
        log.info("backend onnx %s: %s is an ONNX file", predictor.precision, path.name)
        if predictor.precision == "int8" and not int8_support()[0]:
            log.warning("note: %s, so this int8 file may run slower than float32", int8_support()[1])
        return predictor
    metadata = read_metadata(path)
    tile = metadata.tile_size if tile_size is None else tile_size
    check_tile_size(metadata.architecture, tile, metadata.architecture_params)
    if backend in ("auto", "int8"):
        predictor, why = _current_int8(path, tile, threads, check=backend == "auto")
        if predictor is not None:
            log.info("backend onnx int8: %s", why)
            return predictor
        if backend == "int8":
            raise ValueError(f"cannot run {path.name} in int8: {why}. Make it with: make int8 MODEL={path}")
        log.info("int8 not used: %s", why)
    if backend in ("auto", "onnx"):
        predictor, why = _current_export(path, tile, threads)
        if predictor is None and cache_export and backend == "auto" and tile == metadata.tile_size:
            from dubai_segmenter.engine.onnx_cache import ensure_export

            if ensure_export(path, tile, why):
                predictor, why = _current_export(path, tile, threads)
        if predictor is not None:
            log.info("backend onnx: %s", why)
            return predictor
        if backend == "onnx" or not _installed("tensorflow"):
            raise ValueError(
                f"cannot run {path.name} with ONNX Runtime: {why}. Export it first: "
                + EXPORT_HINT.format(model=path, onnx=path.with_suffix(".onnx"))
                + ("" if backend == "onnx" else " (TensorFlow, the other backend, is not installed)")
            )
        log.info("backend tf: %s", why)
    return TensorFlowPredictor(path, metadata, tile)
