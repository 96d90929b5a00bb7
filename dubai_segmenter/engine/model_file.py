# SPDX-License-Identifier: GPL-2.0-or-later
"""The model file: a safetensors file holding a network's weights and its metadata.

Why safetensors: a model file is data that users download and share, so opening one must
never run code. A safetensors file is a JSON header plus raw tensor bytes; there is no
pickle and no serialized architecture. The network is rebuilt in code from the metadata
(``architectures.build_model``) and the weights are set in ``model.weights`` order.

Layout:
- tensors: one per weight, keyed ``"<index:05d>:<weight path>"`` so the order is
  recoverable (safetensors sorts its header) and a mismatch can name the weight. Stored as
  float16 (halves the file: the reference network is 36.8 M weights, 74 MB), except a
  tensor whose values float16 cannot represent (beyond +-65504), which stays float32.
  Weights are always computed in float32: they are cast on load.
- header metadata: ``format`` (FORMAT_NAME), ``format_version`` and ``metadata`` (the
  ``ModelMetadata`` JSON).

Reading the metadata or the weights needs only numpy and safetensors, not TensorFlow, so
the QGIS plugin and the ONNX backend can open a model file without it.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from dubai_segmenter.engine.atomic_file import written_atomically
from dubai_segmenter.engine.classes import ClassInfo
from dubai_segmenter.engine.errors import MetadataError, ModelFileError
from dubai_segmenter.engine.metadata_checks import check_metadata, weight_count

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

FORMAT_NAME = "dubai-segmenter-model"
FORMAT_VERSION = 1
_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass
class ModelMetadata:
    """Everything needed to run a model and to tell a user what it is."""

    architecture: str
    architecture_params: dict[str, Any]
    classes: tuple[ClassInfo, ...]
    input_bands: int
    input_scale: float
    tile_size: int
    overlap: int
    resolution: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.classes = tuple(self.classes)
        self.validate()

    def validate(self) -> None:
        """Raise ModelFileError naming the first field that cannot be right (``metadata_checks``).

        Checked in the JSON form, so what is checked is exactly what a file would hold.
        """
        try:
            check_metadata(json.loads(self.to_json()))
        except MetadataError as exc:
            raise ModelFileError(str(exc)) from None
        except (TypeError, ValueError) as exc:  # not representable as JSON at all
            raise ModelFileError(f"model metadata cannot be stored: {exc}") from None

    def to_json(self) -> str:
        data = asdict(self)
        data["classes"] = [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str | os.PathLike | None = None) -> ModelMetadata:
        """Metadata from its JSON text, every field checked first; errors name ``source`` (the file)."""
        where = f"{source}: " if source is not None else ""
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise ModelFileError(f"{where}model metadata is not valid JSON ({exc}); the file is damaged") from None
        try:
            check_metadata(data)
        except MetadataError as exc:
            raise ModelFileError(f"{where}{exc}") from None
        classes = tuple(ClassInfo(c["id"], c["name"], tuple(c["color"])) for c in data.pop("classes"))
        return cls(classes=classes, **data)


def save_model(path: str | os.PathLike, model: keras.Model, metadata: ModelMetadata) -> None:
    """Write ``model``'s weights and ``metadata`` to ``path`` atomically.

    The file is written under a temporary name in the same folder and renamed, so an
    interrupted save never leaves a truncated file under the final name.
    """
    metadata.validate()
    tensors: dict[str, np.ndarray] = {}
    for index, weight in enumerate(model.weights):
        value = np.asarray(weight.numpy(), dtype=np.float32)
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"weight {weight.path} holds NaN or infinity: the model is broken, not saving it")
        keep_float32 = value.size > 0 and float(np.abs(value).max()) > _FLOAT16_MAX
        tensors[f"{index:05d}:{weight.path}"] = value if keep_float32 else value.astype(np.float16)
    header = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "metadata": metadata.to_json()}
    with written_atomically(path) as temporary:
        save_file(tensors, str(temporary), metadata=header)


def _open(path: str | os.PathLike):  # -> safetensors safe_open handle
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        return safe_open(str(path), framework="numpy")
    except (SafetensorError, OSError, ValueError) as exc:
        if "not fully covered" in str(exc):  # the header promises more bytes than there are
            raise ModelFileError(
                f"{path} is truncated (shorter than its header says): copy or download it again"
            ) from exc
        raise ModelFileError(
            f"{path} is not a dubai_segmenter model file (not a safetensors file: {exc}); "
            "choose the .safetensors file written by dubai_segmenter's training"
        ) from exc


def _metadata_from(handle: Any, path: str | os.PathLike) -> ModelMetadata:
    header = handle.metadata() or {}
    if header.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{path} is a safetensors file but not a dubai_segmenter model (no {FORMAT_NAME!r} header); "
            "train or convert a model with dubai_segmenter's training tools"
        )
    try:
        version = int(header.get("format_version", ""))
    except ValueError:
        raise ModelFileError(f"{path}: model format version {header.get('format_version')!r} is not a number") from None
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses model format version {version}, this dubai_segmenter reads up to "
            f"{FORMAT_VERSION}: update dubai_segmenter"
        )
    if "metadata" not in header:
        raise ModelFileError(f"{path} has no model metadata; the file is damaged")
    metadata = ModelMetadata.from_json(header["metadata"], path)
    _check_weight_total(handle, metadata, path)
    return metadata


def _check_weight_total(handle: Any, metadata: ModelMetadata, path: str | os.PathLike) -> None:
    """The stored weight values must add up to what the claimed network needs (header only).

    So a crafted file can never make the engine build a bigger network than the weights it
    carries, and a mismatch is refused before TensorFlow is even imported.
    """
    stored = sum(int(np.prod(handle.get_slice(k).get_shape(), dtype=np.int64)) for k in handle.keys())  # noqa: SIM118 (safe_open is not iterable)
    needed = weight_count(
        metadata.architecture, metadata.architecture_params, len(metadata.classes), metadata.input_bands)
    if stored != needed:
        raise ModelFileError(
            f"{path}: holds {stored:,} weight values but a {metadata.architecture} with this metadata "
            f"needs {needed:,}; the metadata does not match the weights (field architecture_params, "
            "classes or input_bands is wrong, or the file is damaged)"
        )


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The metadata of a model file, reading only its header."""
    with _open(path) as handle:
        return _metadata_from(handle, path)


def _ordered_keys(handle: Any, path: str | os.PathLike) -> list[str]:
    keys = list(handle.keys())
    try:
        ordered = sorted(keys, key=lambda k: int(k.split(":", 1)[0]))
    except ValueError:
        raise ModelFileError(f"{path}: weight names are not '<index>:<name>'; the file is damaged") from None
    if [int(k.split(":", 1)[0]) for k in ordered] != list(range(len(ordered))):
        raise ModelFileError(f"{path}: weights are not numbered 0..{len(ordered) - 1}; the file is damaged")
    return ordered


def load_weights(path: str | os.PathLike) -> tuple[ModelMetadata, list[np.ndarray]]:
    """Metadata and float32 weights in ``model.weights`` order; needs no TensorFlow."""
    with _open(path) as handle:
        metadata = _metadata_from(handle, path)
        try:
            weights = [handle.get_tensor(k).astype(np.float32) for k in _ordered_keys(handle, path)]
        except SafetensorError as exc:
            raise ModelFileError(f"{path}: cannot read the weights ({exc}); the file is damaged") from exc
    return metadata, weights


def weight_names(path: str | os.PathLike) -> list[str]:
    """The weight paths stored in the file, in order (for error messages and exports)."""
    with _open(path) as handle:
        _metadata_from(handle, path)
        return [k.split(":", 1)[1] for k in _ordered_keys(handle, path)]


def parameter_count(path: str | os.PathLike) -> int:
    """Number of stored weight values, read from the header only."""
    with _open(path) as handle:
        return sum(int(np.prod(handle.get_slice(k).get_shape())) for k in handle.keys())  # noqa: SIM118 (safe_open is not iterable)


def load_keras_model(path: str | os.PathLike, tile_size: int | None = None) -> keras.Model:
    """Rebuild the file's network in code (at ``tile_size``, default the model's) and set its weights."""
    from dubai_segmenter.engine.architectures import build_model

    metadata, weights = load_weights(path)
    names = weight_names(path)
    tile = metadata.tile_size if tile_size is None else tile_size
    model = build_model(
        metadata.architecture, metadata.architecture_params, len(metadata.classes), metadata.input_bands, tile
    )
    expected = model.weights
    if len(expected) != len(weights):
        raise ModelFileError(
            f"{path}: holds {len(weights)} weight tensors but a {metadata.architecture} with these "
            f"parameters has {len(expected)}; the metadata does not match the weights"
        )
    for name, value, variable in zip(names, weights, expected):
        kind, expected_kind = name.rsplit("/", 1)[-1], variable.path.rsplit("/", 1)[-1]
        if tuple(value.shape) != tuple(variable.shape) or kind != expected_kind:
            raise ModelFileError(
                f"{path}: weight {name} {tuple(value.shape)} does not fit {variable.path} "
                f"{tuple(variable.shape)} of a {metadata.architecture}; the metadata does not match the weights"
            )
    model.set_weights(weights)
    return model


def describe_model(metadata: ModelMetadata, path: str | os.PathLike | None = None) -> str:
    """A human summary of a model (what ``info`` prints); with ``path`` also size and weights."""
    lines = [f"Architecture: {metadata.architecture}"]
    if metadata.architecture_params:
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in sorted(metadata.architecture_params.items())))
    lines.append(f"Classes ({len(metadata.classes)}):")
    for c in metadata.classes:
        r, g, b = c.color
        lines.append(f"  {c.id}  {c.name}  #{r:02X}{g:02X}{b:02X} ({c.key})")
    lines.append(f"Input bands: {metadata.input_bands}")
    lines.append(f"Input scaling: pixel value x {metadata.input_scale:.6g} (8-bit range)")
    lines.append(f"Tile size: {metadata.tile_size} px, overlap {metadata.overlap} px")
    resolution = "unknown" if metadata.resolution is None else f"{metadata.resolution:g} m/pixel"
    lines.append(f"Training resolution: {resolution}")
    if path is not None:
        size = Path(path).stat().st_size
        lines.append(f"File: {path} ({size / 1e6:.1f} MB)")
        if Path(path).suffix.lower() != ".onnx":  # an ONNX export holds folded, not stored, weights
            lines.append(f"Parameters: {parameter_count(path):,}")
    if metadata.provenance:
        lines.append("Provenance:")
        for key, value in sorted(metadata.provenance.items()):
            if isinstance(value, dict):
                lines.append(f"  {key}:")
                lines.extend(f"    {k}: {_fmt(v)}" for k, v in sorted(value.items()))
            else:
                lines.append(f"  {key}: {_fmt(value)}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)
