# SPDX-License-Identifier: GPL-2.0-or-later
"""Where model files live on this machine, and which one a name means.

A first run should need no browsing: the CLI, ``make demo``, Processing and the dock look
in the same folders, in this order:
1. the folders in ``DUBAI_SEGMENTER_MODELS`` (``os.pathsep``-separated), then the QGIS
   profile's model folder when the caller passes it (the plugin does; downloads go there);
2. ``models/`` of a checkout (where the released model is tracked in git);
3. ``../shared/models/`` beside the checkout (``SHARED_MODELS_DIR`` overrides it).

A model's *name* is its file name without suffix (``dubai-native-v1.onnx`` is
``dubai-native-v1``), or its folder's name for a file called ``model.*`` (so
``../shared/models/dubai-native-v1/model.safetensors`` is ``dubai-native-v1`` too). A name
matches the catalogue's entry names. When both files of a name are present the
``.safetensors`` is the model (``open_predictor`` runs its ONNX export beside it when that
is current); an ``.onnx`` on its own is used as is.

Only file headers are read here, with the standard library alone (no safetensors, no
TensorFlow, no onnxruntime): the QGIS process calls this, and QGIS's Python has none of them.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
CHECKOUT_MODELS = PACKAGE_DIR.parent / "models"
MODELS_ENV = "DUBAI_SEGMENTER_MODELS"
SHARED_MODELS_ENV = "SHARED_MODELS_DIR"
MODEL_SUFFIXES = (".safetensors", ".onnx")
#: model_file.FORMAT_NAME (a test keeps them equal): model_file imports safetensors, which
#: the QGIS process does not have.
MODEL_FORMAT = "dubai-segmenter-model"
MAX_HEADER_BYTES = 100_000_000  # a safetensors header larger than this is not a sane file


@dataclass(frozen=True)
class InstalledModel:
    """One model on disk: its name, the file to run, and when it arrived."""

    name: str
    path: Path
    modified: float  # st_mtime of the file: "newest" means the most recently installed

    @property
    def kind(self) -> str:
        return self.path.suffix.lstrip(".").lower()


def model_folders(profile_folder: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for models, first match first (see the module docstring)."""
    folders = [Path(p) for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p.strip()]
    if profile_folder:
        folders.append(Path(profile_folder))
    folders.append(CHECKOUT_MODELS)
    folders.append(Path(os.environ.get(SHARED_MODELS_ENV) or PACKAGE_DIR.parent.parent / "shared" / "models"))
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def model_name(path: Path) -> str:
    """The name a model file answers to (see the module docstring)."""
    return path.parent.name if path.stem == "model" else path.stem


def _usable(path: Path) -> bool:
    """A .safetensors must say it is one of ours in its header; an .onnx is checked when opened.

    A safetensors file starts with the header's length (8 bytes, little-endian) and the
    header as JSON, whose ``__metadata__`` holds our ``format``. The full check of the
    metadata (``model_file.read_metadata``) happens in the engine, before a run.
    """
    if path.name.startswith(".") or not path.is_file():  # downloads and exports in progress
        return False
    if path.suffix.lower() == ".onnx":
        return True
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > MAX_HEADER_BYTES:
                return False
            header = json.loads(f.read(length))
        return header.get("__metadata__", {}).get("format") == MODEL_FORMAT
    except (OSError, ValueError, struct.error, AttributeError):
        return False


def installed_models(folders: list[Path] | None = None) -> list[InstalledModel]:
    """Every usable model in ``folders`` (default ``model_folders()``), one per name, newest first.

    A name found in an earlier folder hides the same name in later ones; within a folder the
    ``.safetensors`` wins over the ``.onnx`` of the same name.
    """
    found: dict[str, InstalledModel] = {}
    for folder in model_folders() if folders is None else folders:
        if not folder.is_dir():
            continue
        in_folder: dict[str, Path] = {}
        for suffix in reversed(MODEL_SUFFIXES):  # .onnx first, so .safetensors replaces it
            for path in sorted(folder.glob(f"*{suffix}")) + sorted(folder.glob(f"*/model{suffix}")):
                if _usable(path):
                    in_folder[model_name(path)] = path
        for name, path in in_folder.items():
            found.setdefault(name, InstalledModel(name, path, path.stat().st_mtime))
    return sorted(found.values(), key=lambda m: m.modified, reverse=True)


def resolve_model(text: str, folders: list[Path] | None = None) -> Path:
    """A model file path for ``text``: an existing file as given, else an installed model's name.

    Raises FileNotFoundError saying where it looked and how to get the model.
    """
    path = Path(text).expanduser()
    if path.is_file() or path.suffix.lower() in MODEL_SUFFIXES or os.sep in text:
        return path  # a path: its own checks report a missing or bad file
    searched = model_folders() if folders is None else folders
    for model in installed_models(searched):
        if model.name == text:
            return model.path
    names = ", ".join(m.name for m in installed_models(searched)) or "none"
    raise FileNotFoundError(
        f"no model file or installed model named {text!r} (installed: {names}; looked in "
        f"{', '.join(str(f) for f in searched)}): get it with `python -m dubai_segmenter models get {text}` "
        "or give the path of a model file"
    )
