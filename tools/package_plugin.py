# SPDX-License-Identifier: GPL-2.0-or-later
"""Build the zip that QGIS's "Install from ZIP" and plugins.qgis.org accept.

QGIS expects one top-level folder named like the plugin, with metadata.txt inside it.
The repository keeps metadata.txt and LICENSE at the top level as the single source;
the plugin folder links to metadata.txt (so a checkout's folder can be linked into a
QGIS profile as is), and the zip gets real copies of both. Only files git tracks go into
the zip: whatever a test run, GDAL (``.aux.xml`` sidecars) or an editor leaves in the
folder stays out. Tests, training code and caches are not in the plugin folder at all.
"""
from __future__ import annotations

import argparse
import subprocess
import zipfile
from pathlib import Path

from dubai_segmenter.engine.atomic_file import written_atomically

REPO = Path(__file__).resolve().parent.parent
PLUGIN_DIR = REPO / "dubai_segmenter"
#: Written from the repository's top level, not from the plugin folder.
TOP_LEVEL_FILES = ("metadata.txt", "LICENSE")


class PackagingError(RuntimeError):
    """The zip cannot be built (the message says why and what to do)."""


def plugin_files(plugin_dir: Path = PLUGIN_DIR) -> list[Path]:
    """The tracked files of the plugin package, sorted for stable zips."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=plugin_dir, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PackagingError(f"cannot list the tracked files of {plugin_dir} with git ({exc}); "
                             "build the zip from a git checkout") from exc
    paths = (plugin_dir / name for name in listed.split("\0") if name)
    return sorted(path for path in paths if path.is_file() and path.name not in TOP_LEVEL_FILES)


def build_zip(destination: Path, plugin_dir: Path = PLUGIN_DIR, top_level: Path = REPO) -> Path:
    """Write the installable zip to ``destination`` (atomically) and return its path."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(destination) as partial, \
            zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in TOP_LEVEL_FILES:
            archive.write(top_level / name, f"{plugin_dir.name}/{name}")
        for path in plugin_files(plugin_dir):
            archive.write(path, f"{plugin_dir.name}/{path.relative_to(plugin_dir).as_posix()}")
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("destination", type=Path, help="zip file to write, e.g. dist/dubai_segmenter.zip")
    args = parser.parse_args()
    try:
        print(build_zip(args.destination))
    except PackagingError as exc:
        raise SystemExit(f"error: {exc}") from exc


if __name__ == "__main__":
    main()
