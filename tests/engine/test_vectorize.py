# SPDX-License-Identifier: GPL-2.0-or-later
"""Polygons from classified rasters: shapes, classes, areas, holes and seams between blocks.

Every expected polygon is built independently from the pixels (a union of pixel squares in
map coordinates), so the tests check geometry, not just counts. Pixels are 2 x 3 map
units so that swapped axes or a wrong pixel area cannot pass.
"""
from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
import shapely.geometry
from osgeo import gdal, ogr
from rasterio.crs import CRS
from rasterio.transform import from_origin

from dubai_segmenter.engine.classes import DUBAI_CLASSES, NODATA_CLASS
from dubai_segmenter.engine.cli import EXIT_CANCELLED
from dubai_segmenter.engine.errors import Cancelled
from dubai_segmenter.engine.polygon_strips import (
    SeamJoiner,
    Strip,
    canonical_polygons,
    run_cancellable,
    trace_strip,
)
from dubai_segmenter.engine.raster_legend import raster_classes
from dubai_segmenter.engine.vectorize import vectorize_classes

ROOT = Path(__file__).resolve().parents[2]

PIXEL_W, PIXEL_H = 2.0, 3.0
TRANSFORM = from_origin(300_000.0, 2_790_000.0, PIXEL_W, PIXEL_H)
BUILDING, LAND, ROAD, VEGETATION, WATER = 0, 1, 2, 3, 4
DUBAI_NAMES = [c.name for c in DUBAI_CLASSES]


def write_classified(path: Path, values: np.ndarray, *, crs: str = "EPSG:32640", transform=TRANSFORM,
                     nodata: int | None = NODATA_CLASS, names: list[str] | None = DUBAI_NAMES) -> Path:
    """A classified GeoTIFF like the segmentation writes (category names in GDAL's sidecar)."""
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=values.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(values, 1)
    if names:
        dataset = gdal.Open(str(path), gdal.GA_Update)
        dataset.GetRasterBand(1).SetCategoryNames(names)
        dataset = None
    return path


def read_layer(path: Path) -> list[dict]:
    dataset = ogr.Open(str(path))
    assert dataset.GetLayerCount() == 1
    layer = dataset.GetLayer(0)
    return [
        {
            "class_id": f["class_id"],
            "class_name": f["class_name"],
            "area": f["area"],
            "perimeter": f["perimeter"],
            "geometry": shapely.from_wkb(bytes(f.GetGeometryRef().ExportToWkb())),
        }
        for f in layer
    ]


def pixels_polygon(mask: np.ndarray, transform=TRANSFORM) -> shapely.Geometry:
    """The union of the map-coordinate squares of the True pixels (north-up transform)."""
    rows, cols = np.nonzero(mask)
    x = transform.c + transform.a * np.stack([cols, cols + 1])
    y = transform.f + transform.e * np.stack([rows + 1, rows])
    return shapely.union_all(shapely.box(x[0], y[0], x[1], y[1]))


def scene() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 24 x 20 land raster with one shape of each kind, and each shape's pixel mask."""
    values = np.full((24, 20), LAND, np.uint8)
    masks = {name: np.zeros(values.shape, bool) for name in ("rectangle", "l_shape", "ring", "tall", "u_shape")}
    masks["rectangle"][1:3, 1:6] = True                     # inside the first block
    masks["l_shape"][5:11, 1:3] = True                      # crosses seams vertically ...
    masks["l_shape"][9:11, 3:7] = True                      # ... with its foot in another block
    masks["ring"][4:13, 9:17] = True
    masks["ring"][7:10, 11:14] = False                      # hole crossing the seam at row 9
    masks["tall"][0:24, 18:19] = True                       # through every block, top to bottom
    masks["u_shape"][14:22, 2:4] = True                     # arms first seen as two pieces ...
    masks["u_shape"][14:22, 8:10] = True
    masks["u_shape"][20:22, 4:8] = True                     # ... joined by the bottom
    classes = {"rectangle": BUILDING, "l_shape": ROAD, "ring": WATER, "tall": ROAD, "u_shape": BUILDING}
    for name, mask in masks.items():
        values[mask] = classes[name]
    values[12:14, 0:6] = VEGETATION                         # not a default class
    return values, masks


@pytest.mark.parametrize("block_rows", [None, 1, 3, 4, 7])
def test_known_shapes_come_back_exactly_whatever_the_blocks(tmp_path: Path, block_rows: int | None) -> None:
    values, masks = scene()
    raster = write_classified(tmp_path / "classes.tif", values)
    result = vectorize_classes(raster, tmp_path / "polygons.gpkg", block_rows=block_rows)

    features = read_layer(result.output_path)
    assert result.polygon_counts == {BUILDING: 2, ROAD: 2, WATER: 1}
    assert len(features) == 5
    for name, mask in masks.items():
        expected = pixels_polygon(mask)
        matches = [f for f in features if f["geometry"].equals(expected)]
        assert len(matches) == 1, name
        feature = matches[0]
        assert feature["class_id"] == values[mask][0]
        assert feature["class_name"] == DUBAI_CLASSES[feature["class_id"]].name
        assert feature["geometry"].is_valid
        assert feature["area"] == pytest.approx(mask.sum() * PIXEL_W * PIXEL_H)
        assert feature["perimeter"] == pytest.approx(expected.length)
        assert len(feature["geometry"].interiors) == (1 if name == "ring" else 0)
    ring = next(f for f in features if f["class_id"] == WATER)["geometry"]
    assert shapely.Polygon(ring.interiors[0]).area == pytest.approx(9 * PIXEL_W * PIXEL_H)
    # Seams leave no trace: the rectangle-like shapes keep only their corners.
    tall = next(f for f in features if f["area"] == pytest.approx(24 * PIXEL_W * PIXEL_H))["geometry"]
    assert len(tall.exterior.coords) == 5


@pytest.mark.parametrize("block_rows", [None, 2])
def test_pixels_touching_only_at_corners_are_separate_polygons(tmp_path: Path, block_rows: int | None) -> None:
    values = np.full((4, 4), LAND, np.uint8)
    values[0, 0] = values[1, 1] = BUILDING      # the second crosses the seam at row 2 ...
    values[2, 2] = values[3, 3] = BUILDING      # ... diagonally
    raster = write_classified(tmp_path / "classes.tif", values)
    features = read_layer(vectorize_classes(raster, tmp_path / "p.gpkg", block_rows=block_rows).output_path)
    assert len(features) == 4
    assert all(f["area"] == pytest.approx(PIXEL_W * PIXEL_H) and f["geometry"].is_valid for f in features)


def random_classes(rng: np.random.Generator, trial: int) -> np.ndarray:
    """Noise, blobs of 3 x 3 pixels, or blobs with one-pixel holes (holes that cross seams), with nodata."""
    shape = tuple(int(n) for n in rng.integers(10, 40, 2))
    if trial % 3 == 0:
        values = rng.integers(0, 4, shape).astype(np.uint8)
    else:
        coarse = rng.integers(0, 4, (shape[0] // 3 + 1, shape[1] // 3 + 1)).astype(np.uint8)
        values = np.kron(coarse, np.ones((3, 3), np.uint8))[: shape[0], : shape[1]]
        if trial % 3 == 2:
            values[rng.random(shape) < 0.1] = 3
    values[rng.random(shape) < 0.05] = NODATA_CLASS
    return values


def test_random_rasters_match_an_unblocked_polygonization_whatever_the_blocks(tmp_path: Path) -> None:
    """The oracle is rasterio's own polygonizer over the whole raster at once (no seams).

    Both sides are put in canonical form, so the comparison is of WKB bytes: same
    vertices, same orientation (exterior counter-clockwise), same start vertex.
    """
    rng = np.random.default_rng(7)
    holes = 0
    for trial in range(6):
        values = random_classes(rng, trial)
        raster = write_classified(tmp_path / f"r{trial}.tif", values)
        shapes = list(rasterio.features.shapes(values, mask=values < 3, connectivity=4, transform=TRANSFORM))
        whole = sorted(zip(
            [int(value) for _, value in shapes],
            shapely.to_wkb(canonical_polygons(np.array([shapely.geometry.shape(g) for g, _ in shapes]))),
        ))
        holes += sum(len(shapely.geometry.shape(g).interiors) for g, _ in shapes)
        assert len(whole) > 10
        for block_rows in (1, 3, 5, None):
            out = vectorize_classes(raster, tmp_path / "p.gpkg", classes=[0, 1, 2], block_rows=block_rows)
            features = read_layer(out.output_path)
            assert all(f["geometry"].is_valid for f in features)
            ours = sorted((f["class_id"], f["geometry"].wkb) for f in features)
            assert ours == whole, (trial, block_rows)
    assert holes > 20  # the rasters exercise holes, many of them cut by seams


def test_strips_traced_one_by_one_and_joined_give_the_regions_of_the_whole(tmp_path: Path) -> None:
    """The public pieces a distributed run uses: ``trace_strip`` per strip, then ``SeamJoiner``."""
    rng = np.random.default_rng(3)
    for trial in range(6):
        values = random_classes(rng, trial)
        selected = values < 3
        whole = trace_strip(values, selected, 0)
        expected = sorted(zip(whole.class_ids.tolist(), shapely.to_wkb(canonical_polygons(whole.geometries))))
        for rows in (1, 4, 7):
            joiner = SeamJoiner(values.shape[0])
            got: list[tuple[int, bytes]] = []
            for row0 in range(0, values.shape[0], rows):
                strip = trace_strip(values[row0:row0 + rows], selected[row0:row0 + rows], row0)
                regions = joiner.add(strip)
                got += zip(regions.class_ids.tolist(), shapely.to_wkb(canonical_polygons(regions.geometries)))
            assert joiner.open_pieces == 0
            assert sorted(got) == expected, (trial, rows)
    with pytest.raises(ValueError, match="rows from 0 expected"):
        SeamJoiner(10).add(Strip(5, 10, np.empty(0, dtype=object), np.empty(0, np.int64)))


def test_small_regions_are_dropped_as_they_close_and_never_held(tmp_path: Path) -> None:
    """Memory follows the regions kept: specks are dropped in the strip that closes them,
    and only the pieces of regions still open at the seam below are held."""
    values = np.full((40, 30), LAND, np.uint8)
    values[::2, ::2] = BUILDING                     # 300 one-pixel specks
    values[:, 27:30] = ROAD                         # one region through every strip
    values[10:14, 5:9] = WATER                      # 16 pixels, cut by the seam at row 12
    selected = values != LAND
    joiner = SeamJoiner(40, min_pixels=16)
    kept: list[tuple[int, float]] = []
    for row0 in range(0, 40, 4):
        regions = joiner.add(trace_strip(values[row0:row0 + 4], selected[row0:row0 + 4], row0))
        kept += zip(regions.class_ids.tolist(), shapely.area(regions.geometries).tolist())
        road_strips = row0 // 4 + 1 if row0 + 4 < 40 else 0
        water_pieces = 1 if row0 == 8 else 0
        assert joiner.open_pieces == road_strips + water_pieces, row0
    assert sorted(kept) == [(ROAD, 120.0), (WATER, 16.0)]


def test_run_cancellable_returns_raises_and_stops_waiting_on_cancel() -> None:
    assert run_cancellable(lambda: 42, lambda: False) == 42
    with pytest.raises(ZeroDivisionError):
        run_cancellable(lambda: 1 / 0, lambda: False)
    asked_at = time.monotonic() + 0.2
    with pytest.raises(Cancelled):
        run_cancellable(lambda: time.sleep(30), lambda: time.monotonic() > asked_at)  # sleep releases the GIL
    assert time.monotonic() - asked_at < 0.5


def _slowed(work, seconds: float, started: list[float]):
    """``work`` preceded by a GIL-releasing wait, recording when it began."""
    def slow(*args, **kwargs):
        started.append(time.monotonic())
        time.sleep(seconds)
        return work(*args, **kwargs)
    return slow


def test_cancel_takes_effect_while_a_large_region_is_joined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A union that GEOS cannot interrupt (made slow here) does not delay a cancel."""
    import dubai_segmenter.engine.polygon_strips as strips

    started: list[float] = []
    monkeypatch.setattr(strips, "_LARGE_UNION_VERTICES", 0)
    monkeypatch.setattr(strips.shapely, "union_all", _slowed(shapely.union_all, 5.0, started))
    raster = write_classified(tmp_path / "classes.tif", scene()[0])
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Cancelled):
        vectorize_classes(raster, tmp_path / "p.gpkg", block_rows=4,
                          cancel=lambda: bool(started) and time.monotonic() > started[0] + 0.2)
    assert time.monotonic() - started[0] < 1.5
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cancel_takes_effect_while_the_geopackage_is_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last commit (it builds the spatial index) is waited for with the cancel polled,
    and the abandoned file is removed, also once GDAL has let go of it."""
    import threading

    from dubai_segmenter.engine import vectorize

    started: list[float] = []
    monkeypatch.setattr(vectorize._GeoPackageLayer, "_commit_and_close",
                        _slowed(vectorize._GeoPackageLayer._commit_and_close, 2.5, started))
    raster = write_classified(tmp_path / "classes.tif", scene()[0])
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Cancelled):
        vectorize_classes(raster, tmp_path / "p.gpkg",
                          cancel=lambda: bool(started) and time.monotonic() > started[0] + 0.1)
    assert time.monotonic() - started[0] < 1.2
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    for thread in threading.enumerate():
        if thread.name == "dubai-segmenter-cancellable":
            thread.join(10)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.fixture(scope="module")
def noisy_raster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1024 x 1024 pixels of independent random classes: about 700,000 regions, which GDAL
    takes well over 2 s to trace, all in one strip (what an untrained model gives)."""
    values = np.random.default_rng(0).integers(0, 6, (1024, 1024)).astype(np.uint8)
    return write_classified(tmp_path_factory.mktemp("noisy") / "noisy.tif", values)


def test_cancel_takes_effect_within_2_s_while_gdal_traces(tmp_path: Path, noisy_raster: Path) -> None:
    asked_at = time.monotonic() + 0.5
    with pytest.raises(Cancelled):
        vectorize_classes(noisy_raster, tmp_path / "p.gpkg", classes=range(6), block_rows=1024,
                          cancel=lambda: time.monotonic() > asked_at)
    assert time.monotonic() - asked_at < 2.0
    assert list(tmp_path.iterdir()) == []


def test_sigterm_stops_the_vectorize_command_within_2_s_and_leaves_nothing(tmp_path: Path, noisy_raster: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "dubai_segmenter", "vectorize", str(noisy_raster), "--out-vector",
         str(tmp_path / "p.gpkg"), "--classes", "0,1,2,3,4,5", "--progress", "lines"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in process.stdout:
        if line.startswith("PROGRESS"):  # the polygon phase has begun: the one strip is being traced
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    _, err = process.communicate(timeout=120)
    assert time.monotonic() - signalled < 2.0
    assert process.returncode == EXIT_CANCELLED, err
    assert err.strip().splitlines()[-1].startswith("ERROR: cancelled")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype", ["uint16", "int16", "int32"])
def test_wider_integer_rasters_give_the_polygons_of_8_bit_ones(tmp_path: Path, dtype: str) -> None:
    values, masks = scene()
    values[0, :] = NODATA_CLASS
    wide = write_classified(tmp_path / "wide.tif", values.astype(dtype))
    narrow = write_classified(tmp_path / "narrow.tif", values)
    got = [sorted((f["class_id"], f["geometry"].wkb) for f in read_layer(
        vectorize_classes(path, tmp_path / f"{path.stem}.gpkg", block_rows=5).output_path)) for path in (wide, narrow)]
    assert got[0] == got[1] and len(got[0]) == 5


def test_crs_is_preserved_and_geographic_coordinates_are_not_swapped(tmp_path: Path) -> None:
    values = np.zeros((5, 5), np.uint8)
    utm = write_classified(tmp_path / "utm.tif", values)
    dataset = ogr.Open(str(vectorize_classes(utm, tmp_path / "utm.gpkg").output_path))
    assert CRS.from_wkt(dataset.GetLayer(0).GetSpatialRef().ExportToWkt()) == CRS.from_epsg(32640)
    dataset = None

    lonlat = write_classified(tmp_path / "lonlat.tif", values, crs="EPSG:4326",
                              transform=from_origin(55.25, 25.20, 0.0001, 0.0001))
    features = read_layer(vectorize_classes(lonlat, tmp_path / "lonlat.gpkg").output_path)
    minx, miny, maxx, maxy = features[0]["geometry"].bounds
    assert (minx, maxy) == pytest.approx((55.25, 25.20)) and (maxx, miny) == pytest.approx((55.2505, 25.1995))


def test_min_area_drops_regions_smaller_than_it(tmp_path: Path) -> None:
    values = np.full((10, 10), LAND, np.uint8)
    values[0:2, 0:2] = BUILDING    # 4 pixels = 24 square units
    values[5:8, 5:8] = BUILDING    # 9 pixels = 54 square units
    raster = write_classified(tmp_path / "classes.tif", values)
    kept = read_layer(vectorize_classes(raster, tmp_path / "p.gpkg", min_area=24.0).output_path)
    assert sorted(f["area"] for f in kept) == [24.0, 54.0]
    kept = read_layer(vectorize_classes(raster, tmp_path / "p.gpkg", min_area=24.5, block_rows=3).output_path)
    assert [f["area"] for f in kept] == [54.0]


def test_simplify_reduces_vertices_keeps_validity_holes_and_area(tmp_path: Path) -> None:
    rows, cols = np.mgrid[0:60, 0:60]
    radius = np.hypot(rows - 29.5, cols - 29.5)
    values = np.where((radius < 25) & (radius >= 10), WATER, LAND).astype(np.uint8)  # a staircase annulus
    raster = write_classified(tmp_path / "classes.tif", values)
    exact = read_layer(vectorize_classes(raster, tmp_path / "exact.gpkg", block_rows=7).output_path)[0]
    simple = read_layer(vectorize_classes(raster, tmp_path / "simple.gpkg", simplify=4.0, block_rows=7).output_path)[0]

    vertices = lambda g: shapely.get_num_coordinates(g)  # noqa: E731
    assert vertices(simple["geometry"]) < vertices(exact["geometry"]) / 3
    assert simple["geometry"].is_valid and len(simple["geometry"].interiors) == 1
    assert simple["area"] == pytest.approx(simple["geometry"].area)
    assert simple["area"] == pytest.approx(exact["area"], rel=0.05)
    assert simple["geometry"].hausdorff_distance(exact["geometry"]) <= 4.0 + 1e-9


def test_only_chosen_classes_and_by_default_building_road_water(tmp_path: Path) -> None:
    values = np.repeat(np.arange(6, dtype=np.uint8), 3).reshape(1, 18).repeat(4, axis=0)  # a band per class
    raster = write_classified(tmp_path / "classes.tif", values)
    default = read_layer(vectorize_classes(raster, tmp_path / "d.gpkg").output_path)
    assert sorted(f["class_id"] for f in default) == [BUILDING, ROAD, WATER]
    chosen = vectorize_classes(raster, tmp_path / "c.gpkg", classes=[VEGETATION, LAND])
    assert sorted(f["class_name"] for f in read_layer(chosen.output_path)) == ["Land (unpaved area)", "Vegetation"]
    assert chosen.polygon_counts == {VEGETATION: 1, LAND: 1}
    with pytest.raises(ValueError, match="not among its classes"):
        vectorize_classes(raster, tmp_path / "x.gpkg", classes=[9])


def test_nodata_never_becomes_a_polygon(tmp_path: Path) -> None:
    values = np.full((6, 6), NODATA_CLASS, np.uint8)
    values[2:4, 2:4] = ROAD
    raster = write_classified(tmp_path / "classes.tif", values)
    features = read_layer(vectorize_classes(raster, tmp_path / "p.gpkg", classes=[0, 1, 2, 3, 4, 5]).output_path)
    assert [(f["class_id"], f["area"]) for f in features] == [(ROAD, 4 * PIXEL_W * PIXEL_H)]
    with pytest.raises(ValueError, match="not among its classes"):
        vectorize_classes(raster, tmp_path / "n.gpkg", classes=[NODATA_CLASS])
    zero_nodata = write_classified(tmp_path / "z.tif", values, nodata=BUILDING)
    values[0, 0] = BUILDING  # a default class, but the nodata value here
    default = read_layer(vectorize_classes(write_classified(tmp_path / "d.tif", values, nodata=BUILDING),
                                           tmp_path / "d.gpkg").output_path)
    assert [(f["class_id"], f["area"]) for f in default] == [(ROAD, 4 * PIXEL_W * PIXEL_H)]
    with pytest.raises(ValueError, match="nodata"):
        vectorize_classes(zero_nodata, tmp_path / "z.gpkg", classes=[BUILDING])


def test_pixels_outside_a_mask_band_never_become_polygons(tmp_path: Path) -> None:
    values = np.full((6, 6), ROAD, np.uint8)
    path = tmp_path / "masked.tif"
    with rasterio.open(path, "w", driver="GTiff", width=6, height=6, count=1, dtype="uint8",
                       crs="EPSG:32640", transform=TRANSFORM) as dst:
        dst.write(values, 1)
        mask = np.zeros((6, 6), np.uint8)
        mask[1:3, 1:4] = 255
        dst.write_mask(mask)
    features = read_layer(vectorize_classes(path, tmp_path / "p.gpkg", block_rows=2).output_path)
    assert [(f["class_id"], f["area"]) for f in features] == [(ROAD, 6 * PIXEL_W * PIXEL_H)]


def test_class_names_come_from_the_raster_with_dubai_classes_as_fallback(tmp_path: Path) -> None:
    values = np.array([[0, 1, 2]], np.uint8)
    named = write_classified(tmp_path / "named.tif", values, names=["Water body", "Road surface", "House"])
    assert [c.key for c in raster_classes(named)] == ["water", "road", "house"]
    features = read_layer(vectorize_classes(named, tmp_path / "named.gpkg").output_path)
    assert sorted(f["class_name"] for f in features) == ["Road surface", "Water body"]  # defaults by key

    unnamed = write_classified(tmp_path / "unnamed.tif", values, names=None)
    assert raster_classes(unnamed) == DUBAI_CLASSES
    features = read_layer(vectorize_classes(unnamed, tmp_path / "unnamed.gpkg").output_path)
    assert sorted(f["class_name"] for f in features) == ["Building", "Road"]


def test_cancel_leaves_no_file_and_keeps_an_earlier_output(tmp_path: Path) -> None:
    values, _ = scene()
    raster = write_classified(tmp_path / "classes.tif", values)
    before = sorted(p.name for p in tmp_path.iterdir())
    asked = []

    def cancel_after_two_blocks() -> bool:
        asked.append(True)
        return len(asked) > 2

    with pytest.raises(Cancelled):
        vectorize_classes(raster, tmp_path / "p.gpkg", block_rows=4, cancel=cancel_after_two_blocks)
    assert sorted(p.name for p in tmp_path.iterdir()) == before

    earlier = vectorize_classes(raster, tmp_path / "p.gpkg").output_path.read_bytes()
    with pytest.raises(Cancelled):
        vectorize_classes(raster, tmp_path / "p.gpkg", block_rows=4, cancel=lambda: True)
    assert (tmp_path / "p.gpkg").read_bytes() == earlier


def test_progress_reaches_one_and_the_input_is_untouched(tmp_path: Path) -> None:
    values, _ = scene()
    raster = write_classified(tmp_path / "classes.tif", values)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    fractions: list[float] = []
    vectorize_classes(raster, tmp_path / "p.gpkg",
                      block_rows=5, progress=lambda f, m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0 and len(fractions) == 6
    written = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir() if p.name in digests}
    assert written == digests
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*digests, "p.gpkg"])


def test_bad_input_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    values = np.zeros((3, 3), np.uint8)
    raster = write_classified(tmp_path / "classes.tif", values)
    with pytest.raises(FileNotFoundError, match="not found"):
        vectorize_classes(tmp_path / "missing.tif", tmp_path / "p.gpkg")
    with pytest.raises(ValueError, match=r"\.gpkg"):
        vectorize_classes(raster, tmp_path / "p.shp")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vectorize_classes(raster, tmp_path / "no" / "p.gpkg")
    with pytest.raises(ValueError, match=">= 0"):
        vectorize_classes(raster, tmp_path / "p.gpkg", min_area=-1)
    floats = write_classified(tmp_path / "float.tif", values.astype(np.float32), names=None, nodata=None)
    with pytest.raises(ValueError, match="not class ids"):
        vectorize_classes(floats, tmp_path / "p.gpkg")
    not_raster = tmp_path / "notes.tif"
    not_raster.write_text("hello")
    with pytest.raises(ValueError, match="not a raster"):
        vectorize_classes(not_raster, tmp_path / "p.gpkg")
