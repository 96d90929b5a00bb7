# SPDX-License-Identifier: GPL-2.0-or-later
"""``python -m dubai_segmenter models list | get NAME``: the catalogue on headless machines.

``list`` shows the catalogue's models with their metrics and sizes, and which are already
installed (``model_store``). ``get`` downloads a model's files with urllib into a model
folder, under a hidden temporary name, checks size and SHA-256 and only then renames them
(``model_catalogue.download``); Ctrl+C, SIGTERM or any failure leaves nothing behind.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dubai_segmenter.engine.errors import DownloadCancelled, DownloadError
from dubai_segmenter.engine.model_catalogue import FILE_KINDS, download, file_digest, read_catalogue
from dubai_segmenter.engine.model_store import CHECKOUT_MODELS, MODELS_ENV, installed_models, model_folders


def default_download_folder() -> Path:
    """The first folder of $DUBAI_SEGMENTER_MODELS, else ``models/`` of the checkout."""
    configured = [p for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p.strip()]
    return Path(configured[0]) if configured else CHECKOUT_MODELS


def add_models_parser(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser(
        "models", help="list the model catalogue or download a model from it",
        description="The model catalogue (dubai_segmenter/models.json, or $DUBAI_SEGMENTER_CATALOGUE, or "
        "--catalogue): list its models, or download one, checked by size and SHA-256.",
    )
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION",
                                    parser_class=commands._parser_class,
                                    help="'list' the catalogue, or 'get' a model from it")
    listing = actions.add_parser("list", help="show the catalogue and what is installed")
    get = actions.add_parser("get", help="download a model into a model folder")
    for action in (listing, get):
        action.add_argument("--catalogue", metavar="URL", help="catalogue URL or path (default: "
                            "$DUBAI_SEGMENTER_CATALOGUE, else the one shipped with the plugin)")
    get.add_argument("name", metavar="NAME", help="model name, e.g. dubai-native-v1")
    get.add_argument("--kind", choices=(*FILE_KINDS, "all"), default="onnx",
                     help="which file: onnx (what the plugin runs, with ONNX Runtime; default), "
                     "safetensors (for TensorFlow, fine-tuning and other tile sizes) or all")
    get.add_argument("--dir", type=Path, metavar="FOLDER",
                     help="folder to install into (default: the first of $DUBAI_SEGMENTER_MODELS, "
                     "else models/ of the checkout)")


def run_models_command(args: argparse.Namespace, cancel) -> int:
    """Run ``models list`` or ``models get``; returns the exit code.

    Raises CatalogueError (bad catalogue or name) or DownloadError (DownloadCancelled on a cancel).
    """
    catalogue = read_catalogue(args.catalogue)
    if args.models_command == "list":
        installed = {m.name: m.path for m in installed_models()}
        print(f"Catalogue: {catalogue.location}")
        for entry in catalogue.entries:
            sizes = ", ".join(f"{f.kind} {f.size / 1e6:.0f} MB" for f in entry.files)
            where = f"installed: {installed[entry.name]}" if entry.name in installed else "not installed"
            print(f"{entry.name}  (version {entry.version}, {entry.licence}; {entry.metrics_line()}; {sizes}; {where})")
            print(f"    {entry.description}")
        if catalogue.note:
            print(f"Note: {catalogue.note}")
        print(f"Model folders: {', '.join(str(f) for f in model_folders())}")
        return 0
    entry = catalogue.entry(args.name)
    files = entry.files if args.kind == "all" else (entry.file(args.kind),)
    folder = args.dir or default_download_folder()
    for model_file in files:
        installed = folder / model_file.name
        if installed.is_file() and installed.stat().st_size == model_file.size \
                and file_digest(installed) == model_file.sha256:
            print(f"{installed} is already installed (SHA-256 checked)", flush=True)
            continue
        print(f"Downloading {model_file.url} ({model_file.size / 1e6:.1f} MB)", file=sys.stderr, flush=True)
        try:
            path = download(model_file, folder, _percent_printer(), cancel)
        except DownloadCancelled:
            raise
        except DownloadError as exc:
            if catalogue.note:  # e.g. the shipped catalogue, whose files no public server hosts yet
                raise DownloadError(f"{exc}. {catalogue.note.split('. ')[0]} (see 'models list')") from exc
            raise
        print(f"Installed {path} (size and SHA-256 checked)", flush=True)
    return 0



def _percent_printer():
    """A download progress callback that prints each new whole percent on a terminal's stderr."""
    shown = -1

    def progress(done: int, total: int) -> None:
        nonlocal shown
        percent = int(100 * done / total)
        if percent != shown and sys.stderr.isatty():
            shown = percent
            print(f"\r{percent:3d}%", end="", file=sys.stderr, flush=True)

    return progress
