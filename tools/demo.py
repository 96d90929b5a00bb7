# SPDX-License-Identifier: GPL-2.0-or-later
"""``make demo``: segment the bundled sample scene with the default model and show the result.

Writes, into ``out/demo/``: the classified GeoTIFF, the GeoPackage of building / road /
water polygons, and a PNG preview (image | classes, with a legend), and prints their paths.

The default model is the newest model file (``*.safetensors`` that ``read_metadata``
accepts) in the model folders (``engine/model_store.py``: ``$DUBAI_SEGMENTER_MODELS``,
``models/`` of the checkout, where the released model is tracked, and ``../shared/models/``);
``MODEL=path`` or ``--model path`` (or an installed model's name) chooses another. Without a
model it says where it looked and how to get one, and exits with code 2. The first run on a
fresh clone makes the model's ONNX export beside it (``engine/onnx_cache.py``, a minute or
two); it says which backend runs and why.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from dubai_segmenter.engine.atomic_file import written_atomically
from dubai_segmenter.engine.classes import NODATA_CLASS
from dubai_segmenter.engine.cli.helpers import backend_choice_on_stderr
from dubai_segmenter.engine.errors import ModelFileError
from dubai_segmenter.engine.model_file import read_metadata
from dubai_segmenter.engine.model_store import model_folders, resolve_model
from tools.make_sample_scene import OUTPUT as SAMPLE_SCENE

REPO = Path(__file__).resolve().parent.parent
MODEL_FOLDERS = tuple(model_folders())
OUTPUT_DIR = REPO / "out" / "demo"
EXIT_NO_MODEL = 2
PREVIEW_MAX_SIDE = 900  # pixels per panel: enough to see classes, small enough to open anywhere


@dataclass(frozen=True)
class DemoResult:
    model: Path
    raster: Path
    vector: Path
    preview: Path
    polygon_counts: dict[str, int]  # class name -> polygons


class NoModelError(LookupError):
    """No usable model file was found; the message says where we looked and what to do."""


def find_default_model(folders: tuple[Path, ...]) -> Path:
    """The newest file under ``folders`` that is one of our model files."""
    candidates = [path for folder in folders if folder.is_dir() for path in folder.rglob("*.safetensors")]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            read_metadata(path)
        except ModelFileError:
            continue  # not ours, or damaged: the next newest may do
        return path
    looked = "\n".join(
        f"  {folder}{'' if folder.is_dir() else ' (does not exist)'}" for folder in folders
    )
    raise NoModelError(
        "No model file found. Looked for *.safetensors model files in:\n"
        f"{looked}\n"
        "Get one by either:\n"
        "  - pointing MODEL at a model file:  make demo MODEL=path/to/model.safetensors\n"
        "  - downloading one:                 python -m dubai_segmenter models get dubai-native-v1\n"
        "  - training one:                    make train   (then run make demo again)"
    )


def run_demo(model: Path, sample: Path = SAMPLE_SCENE, output_dir: Path = OUTPUT_DIR,
             tile_size: int | None = None, verbose: bool = False) -> DemoResult:
    """Segment ``sample`` with ``model`` into ``output_dir``: GeoTIFF, GeoPackage and PNG preview."""
    from dubai_segmenter.engine.predictors import open_predictor
    from dubai_segmenter.engine.raster_legend import raster_classes
    from dubai_segmenter.engine.segment import segment_raster
    from dubai_segmenter.engine.vectorize import vectorize_classes

    shown = [-1]

    def show(fraction: float, message: str) -> None:
        if verbose and int(fraction * 100) != shown[0]:  # one line per percent, rewritten in place
            shown[0] = int(fraction * 100)
            print(f"\r{fraction:4.0%} {message:<50}", end="", file=sys.stderr, flush=True)

    output_dir.mkdir(parents=True, exist_ok=True)
    stem = sample.stem
    predictor = open_predictor(model, tile_size=tile_size, cache_export=True)
    raster = segment_raster(sample, predictor, output_dir / f"{stem}_classes.tif", progress=show).output_path
    polygons = vectorize_classes(raster, output_dir / f"{stem}_polygons.gpkg", progress=show)
    if verbose:
        print(file=sys.stderr)
    classes = raster_classes(raster)
    names = {c.id: c.name for c in classes}
    preview = write_preview(sample, raster, output_dir / f"{stem}_preview.png", f"model: {model.name}")
    return DemoResult(
        model, raster, polygons.output_path, preview,
        {names[class_id]: count for class_id, count in polygons.polygon_counts.items()},
    )


def write_preview(image_path: Path, classified_path: Path, destination: Path, caption: str) -> Path:
    """Image and classes side by side, the classes in their colours with a legend (share of pixels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from dubai_segmenter.engine.raster_legend import raster_classes

    with rasterio.open(image_path) as image, rasterio.open(classified_path) as classified:
        step = max(1, int(np.ceil(max(image.width, image.height) / PREVIEW_MAX_SIDE)))
        shape = (int(np.ceil(image.height / step)), int(np.ceil(image.width / step)))
        rgb = image.read([1, 2, 3], out_shape=(3, *shape))
        ids = classified.read(1, out_shape=shape)
    classes = raster_classes(classified_path)
    palette = np.zeros((256, 3), np.uint8)  # no data and unknown ids stay black
    for c in classes:
        palette[c.id] = c.color
    valid = ids != NODATA_CLASS
    shares = {c.id: (ids == c.id).sum() / max(1, valid.sum()) for c in classes}

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 6.4), constrained_layout=True)
    left.imshow(np.moveaxis(rgb, 0, -1))
    left.set_title(f"image: {image_path.name}")
    right.imshow(palette[ids])
    right.set_title(f"classes ({caption})")
    for axes in (left, right):
        axes.set_axis_off()
    figure.legend(
        handles=[Patch(color=np.array(c.color) / 255, label=f"{c.name} {shares[c.id]:.1%}") for c in classes],
        loc="lower center", ncol=len(classes), frameon=False, fontsize=9,
    )
    figure.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    with written_atomically(destination) as partial:
        figure.savefig(partial, dpi=100)
    plt.close(figure)
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("MODEL") or None,
                        help="model file or installed model name (default: $MODEL, else the newest in "
                        "models/ or ../shared/models/)")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="folder for the results")
    parser.add_argument("--tile", type=int, default=None, help="tile size in pixels (default: the model's)")
    args = parser.parse_args(argv)
    try:
        model = resolve_model(args.model) if args.model else find_default_model(MODEL_FOLDERS)
        read_metadata(model)
    except NoModelError as error:
        print(error, file=sys.stderr)
        return EXIT_NO_MODEL
    except (ModelFileError, FileNotFoundError) as error:
        print(f"ERROR: MODEL={model} is not a usable model file: {error}", file=sys.stderr)
        return EXIT_NO_MODEL
    print(f"Segmenting {SAMPLE_SCENE.relative_to(REPO)} with {model}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter, if it runs
    with backend_choice_on_stderr():
        result = run_demo(model, output_dir=args.output_dir, tile_size=args.tile, verbose=True)
    print(f"classified raster: {result.raster}")
    print(f"polygons:          {result.vector}  ({', '.join(f'{n}: {k}' for n, k in result.polygon_counts.items())})")
    print(f"preview:           {result.preview}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
