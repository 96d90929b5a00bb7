# SPDX-License-Identifier: GPL-2.0-or-later
"""`make screenshots`: the README's pictures of the plugin, taken in a real QGIS window.

Tests never write into docs/ (the suite must leave the checkout unchanged); this tool
does, on request. It installs the packaged plugin into a fresh profile under Xvfb
(tools/real_window.py), runs the dock on the bundled sample scene with MODEL (default:
the newest model `make demo` would use), and writes docs/dock.png (the whole panel, as
if the dock were tall enough) and docs/qgis_window.png, each kept under 300 kB.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tools.demo import MODEL_FOLDERS, NoModelError, find_default_model
from tools.real_window import missing_tools, run_real_window

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "dubai_segmenter" / "sample" / "dubai_tile5_part008.tif"
MAX_BYTES = 300_000
WINDOW_WIDTH = 1200  # the window shot is scaled to this width to stay small


def _shrink_window(source: Path, destination: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtGui import QGuiApplication, QImage

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QImage scaling needs one
    image = QImage(str(source)).convertToFormat(QImage.Format.Format_RGB32)
    scaled = image.scaledToWidth(WINDOW_WIDTH, Qt.TransformationMode.SmoothTransformation)
    # A palette without dithering: flat GUI colours compress well, dithered noise does not.
    flags = Qt.ImageConversionFlag.AvoidDither | Qt.ImageConversionFlag.ThresholdDither
    scaled.convertToFormat(QImage.Format.Format_Indexed8, flags).save(str(destination), "PNG")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, required=True, help="the plugin zip (make package)")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--model", type=Path, default=os.environ.get("MODEL") or None)
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        sys.exit(f"error: screenshots need {', '.join(missing)} (make setup installs them)")
    try:
        model = args.model or find_default_model(MODEL_FOLDERS)
    except NoModelError as exc:
        sys.exit(f"error: {exc}")
    with tempfile.TemporaryDirectory(prefix="screenshots_") as scratch:
        scene = shutil.copy(SAMPLE, Path(scratch) / "sample.tif")
        # A real model on a 2-core machine: minutes, not seconds.
        result = run_real_window(args.zip, Path(scratch) / "out", model, Path(scene), run_timeout=1500, timeout=1800)
        if "error" in result:
            sys.exit(f"error: the QGIS session failed:\n{result['error']}")
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(scratch) / "out" / "dock_panel.png", args.out / "dock.png")
        _shrink_window(Path(scratch) / "out" / "window.png", args.out / "qgis_window.png")
    for name in ("dock.png", "qgis_window.png"):
        size = (args.out / name).stat().st_size
        print(f"{args.out / name}: {size:,} bytes")
        if size > MAX_BYTES:
            sys.exit(f"error: {name} is {size:,} bytes, over {MAX_BYTES:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
