# SPDX-License-Identifier: GPL-2.0-or-later
"""Make the sample scene shipped in the plugin: a validation image of the Dubai dataset as a GeoTIFF.

Why it exists: ``make demo`` and a first look in QGIS need a georeferenced raster, and the
dataset's JPEGs have no georeference. The image's real location and ground resolution are
not published, so the georeference written here is MADE UP (see SAMPLE_NOTE and
dubai_segmenter/sample/SAMPLE.md); it only puts the pixels at a plausible place and scale in
Dubai (UTM zone 40N) so map tools, areas and polygons behave as they would on real data.

Run: ``.venv/bin/python -m tools.make_sample_scene`` (DATA_DIR overrides the dataset folder).
"""
from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin
from rasterio.warp import transform as reproject_points

from dubai_segmenter.engine.atomic_file import written_atomically

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "hitl-dubai"
SOURCE = "Tile 5/images/image_part_008.jpg"  # a validation image (parts 008/009 of every tile)
OUTPUT = REPO / "dubai_segmenter" / "sample" / "dubai_tile5_part008.tif"
SOURCE_MASK = "Tile 5/masks/image_part_008.png"  # the annotation of SOURCE
#: The sample's ground truth as class ids on the sample's grid, for the released model's regression test.
TRUTH_OUTPUT = OUTPUT.with_name(f"{OUTPUT.stem}_truth.tif")
CRS_EPSG = 32640  # WGS 84 / UTM zone 40N, the zone of Dubai
#: Assumed ground resolution (m/pixel): cars span about 3 pixels and main roads 30-40, which
#: fits 1-2 m; the dataset does not state it.
RESOLUTION_M = 1.5
#: Made-up scene centre (longitude, latitude): a plausible spot in Dubai, not the image's real place.
CENTRE_LON_LAT = (55.2750, 25.1870)
JPEG_QUALITY = 90
SAMPLE_NOTE = (
    "Image from the Humans in the Loop / MBRSC Dubai aerial segmentation dataset (CC0: Public Domain). "
    "The georeference (position and resolution) is MADE UP for demonstration; the image's real "
    "location and ground resolution are unknown."
)


def data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR", DEFAULT_DATA_DIR))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_source(folder: Path, relative: str) -> tuple[Path, str]:
    """The source image and its sha256, checked against the dataset's SHA256SUMS when present."""
    source = folder / relative
    if not source.is_file():
        raise SystemExit(f"{source} not found: set DATA_DIR to the hitl-dubai dataset folder")
    digest = sha256_of(source)
    sums = folder / "SHA256SUMS"
    if sums.is_file():
        expected = {line[66:].strip(): line[:64] for line in sums.read_text().splitlines() if line.strip()}
        if expected.get(relative) != digest:
            raise SystemExit(f"{source}: sha256 {digest} does not match SHA256SUMS ({expected.get(relative)})")
    return source, digest


def made_up_transform(width: int, height: int):
    """A north-up transform with RESOLUTION_M pixels centred on CENTRE_LON_LAT, in whole metres."""
    xs, ys = reproject_points(CRS.from_epsg(4326), CRS.from_epsg(CRS_EPSG), [CENTRE_LON_LAT[0]], [CENTRE_LON_LAT[1]])
    west = round(xs[0] - width * RESOLUTION_M / 2)
    north = round(ys[0] + height * RESOLUTION_M / 2)
    return from_origin(west, north, RESOLUTION_M, RESOLUTION_M)


def make_sample_scene(folder: Path, output: Path = OUTPUT) -> Path:
    """Write the sample GeoTIFF (RGB, JPEG-compressed inside, tiled) and return its path."""
    source, digest = check_source(folder, SOURCE)
    with rasterio.open(source) as image:
        pixels = image.read()
    count, height, width = pixels.shape
    if count != 3 or pixels.dtype != np.uint8:
        raise SystemExit(f"{source}: expected an 8-bit RGB image, got {count} bands of {pixels.dtype}")
    output.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(output) as partial, rasterio.open(
        partial, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
        crs=CRS.from_epsg(CRS_EPSG), transform=made_up_transform(width, height),
        tiled=True, blockxsize=256, blockysize=256,
        compress="jpeg", photometric="ycbcr", jpeg_quality=JPEG_QUALITY,
    ) as dataset:
        dataset.write(pixels)
        dataset.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        dataset.update_tags(
            SOURCE=f"hitl-dubai/{SOURCE}", SOURCE_SHA256=digest, LICENSE="CC0: Public Domain",
            GEOREFERENCE="made up for demonstration", NOTE=SAMPLE_NOTE,
        )
    return output


def mask_class_ids(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) mask colours -> (H, W) class ids; pixels nobody annotated (black) -> NODATA_CLASS.

    Colours are those in the mask pixels, which ``DUBAI_CLASSES`` (``engine/classes.py``)
    holds; any other colour is an error rather than a silent guess.
    """
    from dubai_segmenter.engine.classes import DUBAI_CLASSES, NODATA_CLASS

    ids = np.full(rgb.shape[1:], NODATA_CLASS, np.uint8)
    known = np.all(rgb == 0, axis=0)
    for c in DUBAI_CLASSES:
        hit = np.all(rgb == np.array(c.color, np.uint8)[:, None, None], axis=0)
        ids[hit] = c.id
        known |= hit
    if not known.all():
        raise SystemExit(f"{int((~known).sum())} mask pixels have a colour that is no class")
    return ids


def make_sample_truth(folder: Path, scene: Path = OUTPUT, output: Path = TRUTH_OUTPUT) -> Path:
    """Write the CC0 annotation of the sample as class ids on the sample's grid (uint8, 255 = unannotated)."""
    from dubai_segmenter.engine.classes import NODATA_CLASS

    source, digest = check_source(folder, SOURCE_MASK)
    with rasterio.open(source) as mask:
        rgb = mask.read([1, 2, 3]) if mask.count >= 3 else None
        if rgb is None:  # a palette PNG: expand through its colour map
            table = np.zeros((256, 3), np.uint8)
            for index, colour in mask.colormap(1).items():
                table[index] = colour[:3]
            rgb = np.moveaxis(table[mask.read(1)], -1, 0)
    ids = mask_class_ids(rgb)
    with rasterio.open(scene) as sample:
        if (sample.height, sample.width) != ids.shape:
            raise SystemExit(f"{source} is {ids.shape[::-1]} pixels, the sample {sample.width}x{sample.height}")
        profile = dict(crs=sample.crs, transform=sample.transform)
    with written_atomically(output) as partial, rasterio.open(
        partial, "w", driver="GTiff", width=ids.shape[1], height=ids.shape[0], count=1, dtype="uint8",
        nodata=NODATA_CLASS, tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=2,
        **profile,
    ) as dataset:
        dataset.write(ids, 1)
        dataset.update_tags(
            SOURCE=f"hitl-dubai/{SOURCE_MASK}", SOURCE_SHA256=digest, LICENSE="CC0: Public Domain",
            GEOREFERENCE="made up for demonstration (the sample's)",
            NOTE="class ids of DUBAI_CLASSES; 255 = not annotated",
        )
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=data_dir(), help="the hitl-dubai dataset folder")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="GeoTIFF to write")
    args = parser.parse_args()
    path = make_sample_scene(args.data_dir, args.output)
    truth = make_sample_truth(args.data_dir, path, path.with_name(f"{path.stem}_truth.tif"))
    print(f"{truth}: ground truth, {truth.stat().st_size} bytes")
    with rasterio.open(path) as dataset:
        print(f"{path}: {dataset.width}x{dataset.height}, {dataset.crs}, {dataset.res[0]} m/pixel, "
              f"bounds {tuple(round(v) for v in dataset.bounds)}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
