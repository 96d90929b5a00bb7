"""Build the zip that QGIS's "Install from ZIP" accepts.

QGIS expects one top-level folder named like the plugin, with metadata.txt inside it.
The repository keeps metadata.txt at the top level as the single source; the plugin
folder links to it (so a checkout's folder can be linked into a QGIS profile as is), and
the zip gets a real copy. Tests, training code and caches never go into the zip.
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN_DIR = REPO / "dubai_segmenter"
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


def plugin_files(plugin_dir: Path = PLUGIN_DIR) -> list[Path]:
    """Files of the plugin package that QGIS needs at run time, sorted for stable zips."""
    return sorted(
        path
        for path in plugin_dir.rglob("*")
        if path.is_file()
        and path.name != "metadata.txt"
        and not EXCLUDED_DIRS.intersection(path.relative_to(plugin_dir).parts)
        and path.suffix not in EXCLUDED_SUFFIXES
    )


def build_zip(destination: Path, plugin_dir: Path = PLUGIN_DIR, metadata: Path = REPO / "metadata.txt") -> Path:
    """Write the installable zip to ``destination`` (atomically) and return its path."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(metadata, f"{plugin_dir.name}/metadata.txt")
        for path in plugin_files(plugin_dir):
            archive.write(path, f"{plugin_dir.name}/{path.relative_to(plugin_dir).as_posix()}")
    partial.replace(destination)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("destination", type=Path, help="zip file to write, e.g. dist/dubai_segmenter.zip")
    args = parser.parse_args()
    print(build_zip(args.destination))


if __name__ == "__main__":
    main()
