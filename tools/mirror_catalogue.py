# SPDX-License-Identifier: GPL-2.0-or-later
"""Build a folder that hosts the model catalogue: ``models.json`` plus every file it lists.

No public server hosts the released models yet, so the shipped catalogue's relative URLs
point nowhere until someone serves a copy. This tool makes that copy from files already on
this machine (found by SHA-256, so names do not matter): serve the folder with any web
server (``python3 -m http.server -d FOLDER``, nginx, an intranet share) and point the
plugin's catalogue setting or ``DUBAI_SEGMENTER_CATALOGUE`` at ``<URL>/models.json``.

Run: ``.venv/bin/python -m tools.mirror_catalogue OUT_DIR [--search DIR ...]``
(default search: ``models/`` of the checkout and ``../shared/models/``).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import urllib.parse
from pathlib import Path

from dubai_segmenter.engine.atomic_file import written_atomically
from dubai_segmenter.engine.model_catalogue import SHIPPED_CATALOGUE, file_digest, parse_catalogue
from dubai_segmenter.engine.model_store import model_folders


def find_by_hash(folders: list[Path], size: int, sha256: str) -> Path | None:
    """A file under ``folders`` with this size and SHA-256 (the size filters first: hashing is the slow part)."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith(".") and path.stat().st_size == size \
                    and file_digest(path) == sha256:
                return path
    return None


def build_mirror(out_dir: Path, folders: list[Path], catalogue: Path = SHIPPED_CATALOGUE) -> list[str]:
    """Copy the catalogue and its files into ``out_dir``; returns the files that were not found."""
    text = catalogue.read_text()
    parsed = parse_catalogue(text, "file:///mirror/models.json")
    missing = []
    for entry in parsed.entries:
        for model_file in entry.files:
            relative = urllib.parse.urlsplit(model_file.url)
            if not model_file.url.startswith("file:///mirror/"):
                raise SystemExit(
                    f"{model_file.name}: its URL {model_file.url} is absolute; a mirror needs relative URLs")
            target = out_dir / urllib.parse.unquote(relative.path[len("/mirror/"):])
            if target.is_file() and target.stat().st_size == model_file.size \
                    and file_digest(target) == model_file.sha256:
                continue
            source = find_by_hash(folders, model_file.size, model_file.sha256)
            if source is None:
                missing.append(f"{entry.name}: {model_file.name} ({model_file.sha256})")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with written_atomically(target) as partial:
                shutil.copyfile(source, partial)
            print(f"{target}  <- {source}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "models.json").write_text(text)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder to fill (created if needed)")
    parser.add_argument("--search", type=Path, action="append",
                        help="folder to look for the files in (repeatable; default: the model folders)")
    parser.add_argument("--catalogue", type=Path, default=SHIPPED_CATALOGUE, help="catalogue to mirror")
    args = parser.parse_args(argv)
    missing = build_mirror(args.out_dir, args.search or model_folders(), args.catalogue)
    if missing:
        print("Not found on this machine (the mirror lacks them):\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    print(f"Serve {args.out_dir} (e.g. python3 -m http.server -d {args.out_dir}) and set "
          f"DUBAI_SEGMENTER_CATALOGUE=<its URL>/models.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
