# SPDX-License-Identifier: GPL-2.0-or-later
"""The model catalogue: which models exist, where to download them, and how to trust a download.

plugins.qgis.org refuses plugin zips over 25 MB, so models do not ride in the plugin: the
plugin ships ``dubai_segmenter/models.json``, a catalogue whose entries give, per model,
its description, classes, tile size, validation metrics, licence and files (the ONNX
export the plugin runs, the ``.safetensors`` for fine-tuning and other tile sizes), each
with a URL, a size and a SHA-256.

Which catalogue is read, first match first: an explicit location (``--catalogue``, or the
plugin's setting), ``$DUBAI_SEGMENTER_CATALOGUE``, then the shipped file. A location is an
``http(s)://`` or ``file://`` URL or a path. File URLs in the catalogue may be relative: they
resolve against the catalogue's own location, so a folder holding ``models.json`` and the
files (``tools/mirror_catalogue.py`` builds one) can be served by any web server, e.g. on an
intranet.

A download is written under a hidden temporary name in the target folder, its size and
SHA-256 are checked, and only then is it renamed to its final name: a failure, a hash
mismatch or a cancel leaves nothing behind. This module uses urllib (the CLI on headless
machines); the plugin downloads through QGIS's network stack and calls ``finish_download``
for the same check.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dubai_segmenter.engine import temporary_names
from dubai_segmenter.engine.errors import CatalogueError, DownloadCancelled, DownloadError

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SHIPPED_CATALOGUE = PACKAGE_DIR / "models.json"
CATALOGUE_ENV = "DUBAI_SEGMENTER_CATALOGUE"
CATALOGUE_FORMAT = "dubai-segmenter-catalogue"
FILE_KINDS = ("onnx", "safetensors")
CHUNK = 1 << 16
TIMEOUT_SECONDS = 30  # per network operation, not for the whole download

ProgressCallback = Callable[[int, int], None]  # (bytes so far, total bytes)
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class ModelFile:
    """One downloadable file of a catalogue entry."""

    kind: str  # "onnx" or "safetensors"
    name: str  # file name once installed, e.g. dubai-native-v1.onnx
    url: str  # absolute
    size: int
    sha256: str


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    version: str
    description: str
    classes: tuple[str, ...]
    tile_size: int
    licence: str
    files: tuple[ModelFile, ...]
    resolution: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def file(self, kind: str) -> ModelFile:
        for candidate in self.files:
            if candidate.kind == kind:
                return candidate
        raise CatalogueError(f"{self.name} offers no {kind} file (it offers: {', '.join(f.kind for f in self.files)})")

    def metrics_line(self) -> str:
        """'pixel accuracy 0.851, mean IoU 0.643' (or '' without metrics)."""
        parts = []
        if "pixel_accuracy" in self.metrics:
            parts.append(f"pixel accuracy {self.metrics['pixel_accuracy']:.3f}")
        if "mean_iou" in self.metrics:
            parts.append(f"mean IoU {self.metrics['mean_iou']:.3f}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Catalogue:
    location: str  # the URL it was read from
    entries: tuple[CatalogueEntry, ...]
    note: str = ""

    def entry(self, name: str) -> CatalogueEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.entries) or "none"
        raise CatalogueError(f"the catalogue {self.location} has no model named {name!r} (it has: {known})")


def catalogue_location(explicit: str | None = None) -> str:
    """The catalogue to read: ``explicit``, else $DUBAI_SEGMENTER_CATALOGUE, else the shipped file (as a URL)."""
    return to_url(explicit or os.environ.get(CATALOGUE_ENV) or str(SHIPPED_CATALOGUE))


def to_url(location: str) -> str:
    """A URL for a URL or a local path."""
    if urllib.parse.urlsplit(location).scheme in ("http", "https", "file"):
        return location
    return Path(location).expanduser().resolve().as_uri()


def parse_catalogue(text: str | bytes, location: str) -> Catalogue:
    """A Catalogue from the JSON text read at ``location`` (relative file URLs resolved against it)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CatalogueError(f"the catalogue {location} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CATALOGUE_FORMAT:
        raise CatalogueError(f"{location} is not a dubai_segmenter model catalogue (no format {CATALOGUE_FORMAT!r})")
    entries = []
    for raw in data.get("models", []):
        try:
            files = tuple(
                ModelFile(
                    kind=str(f["kind"]), name=str(f["file"]), url=urllib.parse.urljoin(location, str(f["url"])),
                    size=int(f["size"]), sha256=str(f["sha256"]).lower(),
                )
                for f in raw["files"]
            )
            entry = CatalogueEntry(
                name=str(raw["name"]), version=str(raw["version"]), description=str(raw["description"]),
                classes=tuple(str(c) for c in raw["classes"]), tile_size=int(raw["tile_size"]),
                licence=str(raw["licence"]), files=files,
                resolution=None if raw.get("resolution") is None else float(raw["resolution"]),
                metrics=dict(raw.get("metrics") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogueError(f"the catalogue {location} has a bad entry {raw.get('name', '?')!r}: {exc!r}") from exc
        for f in files:
            if f.kind not in FILE_KINDS or len(f.sha256) != 64 or f.size <= 0 or Path(f.name).name != f.name:
                raise CatalogueError(f"the catalogue {location}: file {f.name!r} of {entry.name} has a bad "
                                     "kind, size, sha256 or name")
        entries.append(entry)
    return Catalogue(location, tuple(entries), str(data.get("note", "")))


def read_catalogue(location: str | None = None) -> Catalogue:
    """Read the catalogue (see ``catalogue_location``) with urllib."""
    url = catalogue_location(location)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return parse_catalogue(response.read(), url)
    except (urllib.error.URLError, OSError) as exc:
        raise CatalogueError(f"cannot read the model catalogue {url}: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)


def temporary_path(folder: Path, name: str) -> Path:
    """The hidden name a download is written under until it is checked (ignored by model_store and git),
    named by ``temporary_names`` like every other file the engine writes."""
    return temporary_names.temporary_path(folder / name, suffix=".part")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finish_download(temporary: Path, model_file: ModelFile, folder: Path) -> Path:
    """Check size and SHA-256 of a finished download, then rename it to its name in ``folder``.

    On a mismatch the temporary file is removed and DownloadError says so in one sentence.
    """
    try:
        size = temporary.stat().st_size
        if size != model_file.size:
            raise DownloadError(f"{model_file.name} was not kept: {size:,} bytes arrived, the catalogue says "
                                f"{model_file.size:,} (the connection may have dropped; try again)")
        digest = file_digest(temporary)
        if digest != model_file.sha256:
            raise DownloadError(f"{model_file.name} was not kept: its SHA-256 is {digest}, the catalogue says "
                                f"{model_file.sha256} (a damaged or different file)")
        target = folder / model_file.name
        os.replace(temporary, target)
        return target
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def download(model_file: ModelFile, folder: Path, progress: ProgressCallback | None = None,
             cancel: CancelCheck | None = None) -> Path:
    """Download ``model_file`` into ``folder`` with urllib, checked; returns the installed path.

    Raises DownloadError (DownloadCancelled for a cancel) and leaves nothing behind; a
    KeyboardInterrupt also removes the partial file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(folder, model_file.name)
    try:
        with urllib.request.urlopen(model_file.url, timeout=TIMEOUT_SECONDS) as response, open(temporary, "wb") as out:
            received = 0
            while True:
                if cancel is not None and cancel():
                    raise DownloadCancelled(f"download of {model_file.name} cancelled; nothing was kept")
                block = response.read(CHUNK)
                if not block:
                    break
                received += len(block)
                if received > model_file.size:
                    raise DownloadError(f"{model_file.name} was not kept: the server sent more than the "
                                        f"{model_file.size:,} bytes the catalogue says")
                out.write(block)
                if progress is not None:
                    progress(received, model_file.size)
    except DownloadError:
        temporary.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:  # e.g. IncompleteRead
        temporary.unlink(missing_ok=True)
        raise DownloadError(f"{model_file.name} could not be downloaded from {model_file.url}: {_reason(exc)}") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return finish_download(temporary, model_file, folder)
