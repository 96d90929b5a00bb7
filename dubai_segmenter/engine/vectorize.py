# SPDX-License-Identifier: GPL-2.0-or-later
"""Polygons of chosen classes from a classified raster, written to a GeoPackage.

Why strips of rows: a 20,000 x 20,000 classified raster must vectorize in well under 1 GB,
so only one strip of rows and the regions still open at its lower edge are in memory, and
each region is written (or dropped, if smaller than ``min_area``) as soon as it is closed.
The tracing and the exact joining of regions across seams are in ``polygon_strips``; this
module chooses the classes and pixels, turns pixel coordinates into map coordinates and
writes the GeoPackage.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from .classes import ClassInfo, default_vector_classes
from .contract import POLYGON_LAYER, POLYGON_SUFFIX
from .polygon_strips import Regions, SeamJoiner, Strip, canonical_polygons, run_cancellable, trace_strip
from .progress import CancelCheck, ProgressCallback, check_cancelled, report
from .raster_legend import raster_classes
from .temporary_names import temporary_path

# About 2 M pixels per strip: a few MB of working arrays and a few tens of MB of traced
# pieces whatever the raster size; seams cost little, so smaller strips buy nothing.
_BLOCK_PIXELS = 1 << 21
_MIN_CACHE_BYTES = 16 << 20
_FEATURES_PER_TRANSACTION = 20_000
_FEATURES_PER_CANCEL_CHECK = 2_000
# Closed regions are finished (map coordinates, validity, canonical form) this many at a
# time, so a strip of a fragmented map (150,000 regions) never runs long without a cancel check.
_REGIONS_PER_BATCH = 20_000
_FIELDS = (("class_id", "OFTInteger"), ("class_name", "OFTString"), ("area", "OFTReal"), ("perimeter", "OFTReal"))

#: A strip's pixels as ``trace_strip`` takes them: class values, selected pixels, first row.
StripPixels = tuple[np.ndarray, np.ndarray, int]
#: Traces strips given in order and yields their ``Strip`` in the same order (here in this
#: process, or on a Dask cluster: ``distributed.polygons.trace_on_cluster``).
StripTracer = Callable[[Iterator[StripPixels], "CancelCheck | None"], Iterator[Strip]]


@dataclass(frozen=True)
class VectorizeResult:
    """What a vectorization wrote."""

    output_path: Path
    layer_name: str
    polygon_counts: dict[int, int]  # class id -> polygons written (classes with none included)
    seconds: float


def vectorize_classes(
    classified_path: str | os.PathLike[str],
    output_gpkg: str | os.PathLike[str],
    classes: Sequence[int] | None = None,
    min_area: float = 0.0,
    simplify: float = 0.0,
    layer_name: str = POLYGON_LAYER,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    *,
    block_rows: int | None = None,
    tracer: StripTracer | None = None,
) -> VectorizeResult:
    """Write one polygon per 4-connected region of each chosen class to ``output_gpkg``.

    Polygons are in the raster's CRS with holes kept; fields ``class_id``, ``class_name``,
    ``area`` and ``perimeter`` (map units, of the written geometry; the perimeter includes
    the holes' rings). ``min_area`` (square map units) drops regions whose exact pixel
    area is smaller; ``simplify`` (map units) is a topology-preserving Douglas-Peucker
    tolerance applied to each polygon on its own, so neighbouring polygons may no longer
    share their edge exactly. Pixels equal to the raster's nodata value (255 for our
    rasters) never become polygons. ``block_rows`` overrides the rows read at a time.
    ``tracer`` traces the strips somewhere else (a Dask cluster); the seams are joined and
    the file written here either way, so the polygons are the same.
    The GeoPackage appears only when complete; cancelling raises ``Cancelled``.
    """
    started = time.perf_counter()
    source = Path(classified_path)
    output = Path(output_gpkg)
    _check_options(source, output, min_area, simplify, layer_name, block_rows)
    table = {c.id: c for c in raster_classes(source)}
    with rasterio.open(source) as raster:
        if not np.issubdtype(np.dtype(raster.dtypes[0]), np.integer):
            raise ValueError(
                f"{source}: band 1 holds {raster.dtypes[0]} values, not class ids; "
                "vectorize the classified GeoTIFF written by the segmentation"
            )
        chosen = _choose_classes(source, classes, table, raster.nodata)
        rows = block_rows or _default_block_rows(raster)
        counts = dict.fromkeys(chosen, 0)
        pixel_area = abs(raster.transform.a * raster.transform.e - raster.transform.b * raster.transform.d)
        joiner = SeamJoiner(raster.height, min_pixels=min_area / pixel_area)
        report(progress, 0.0, f"vectorizing {raster.height} rows")
        # GDAL's block cache would otherwise keep every tile read, up to 5 % of the RAM:
        # hundreds of MB that follow the raster's area. Each strip's tiles are read once
        # (and again for a mask band), so two strips' worth is all it needs.
        strip_bytes = rows * raster.width * np.dtype(raster.dtypes[0]).itemsize
        pixels = strip_pixels(raster, rows, chosen, cancel)
        with rasterio.Env(GDAL_CACHEMAX=max(_MIN_CACHE_BYTES, 2 * strip_bytes)), \
                _GeoPackageLayer(output, layer_name, raster.crs, cancel) as layer, \
                contextlib.closing((tracer or trace_in_turn)(pixels, cancel)) as strips:
            for strip in strips:
                row1 = strip.row1
                regions = joiner.add(strip, cancel)
                del strip
                for batch in regions.batches(_REGIONS_PER_BATCH):
                    check_cancelled(cancel)
                    for class_id in layer.add(_finish(batch, raster.transform, simplify), table):
                        counts[class_id] += 1
                report(progress, row1 / raster.height, f"vectorized rows {row1} of {raster.height}")
            check_cancelled(cancel)
    return VectorizeResult(output, layer_name, counts, time.perf_counter() - started)


def strip_pixels(
    raster: rasterio.io.DatasetReader, rows: int, chosen: Sequence[int], cancel: CancelCheck | None = None
) -> Iterator[StripPixels]:
    """The raster ``rows`` rows at a time, top to bottom, as ``trace_strip`` takes them: values,
    and selected pixels (a chosen class, and valid by the mask band, alpha or nodata value)."""
    # A mask band or alpha is read; a nodata value only when it is one of the chosen
    # classes (only possible with the default classes), as otherwise it is never chosen.
    flags = raster.mask_flag_enums[0]
    masked = MaskFlags.all_valid not in flags and (flags != [MaskFlags.nodata] or raster.nodata in chosen)
    chosen_of = _class_selector(np.dtype(raster.dtypes[0]), chosen)
    for row0 in range(0, raster.height, rows):
        check_cancelled(cancel)
        # Handed on without a name here, so this generator holds no strip while it waits.
        yield _read_strip(raster, Window(0, row0, raster.width, min(rows, raster.height - row0)), chosen_of, masked)


def _read_strip(
    raster: rasterio.io.DatasetReader, window: Window, chosen_of: Callable[[np.ndarray], np.ndarray], masked: bool
) -> StripPixels:
    values = raster.read(1, window=window)
    selected = chosen_of(values)
    if masked:
        selected &= raster.read_masks(1, window=window) > 0
    return values, selected, int(window.row_off)


def trace_in_turn(pixels: Iterator[StripPixels], cancel: CancelCheck | None = None) -> Iterator[Strip]:
    """The default ``StripTracer``: each strip traced here, one after another (``map`` keeps
    no reference to a strip's pixels or pieces once handed on, so memory stays one strip)."""
    yield from map(lambda item: trace_strip(*item, cancel), pixels)


def _check_options(
    source: Path, output: Path, min_area: float, simplify: float, layer_name: str, block_rows: int | None
) -> None:
    if not source.is_file():
        raise FileNotFoundError(f"classified raster not found: {source}")
    if output.suffix.lower() != POLYGON_SUFFIX:
        raise ValueError(f"{output}: the polygon output must be a GeoPackage ending in {POLYGON_SUFFIX}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output}: its folder {output.parent} does not exist; create it first")
    if output.resolve() == source.resolve():
        raise ValueError(f"{output}: the output would overwrite the input raster")
    if min_area < 0 or simplify < 0:
        raise ValueError(f"min_area ({min_area}) and simplify ({simplify}) must be >= 0")
    if not layer_name:
        raise ValueError("layer_name must not be empty")
    if block_rows is not None and block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, not {block_rows}")


def _choose_classes(
    source: Path, classes: Sequence[int] | None, table: dict[int, ClassInfo], nodata: float | None
) -> tuple[int, ...]:
    """Class ids to vectorize, checked against the raster's classes."""
    known = ", ".join(f"{c.id} {c.name}" for c in table.values())
    if classes is None:
        return tuple(c.id for c in default_vector_classes(table.values()))
    chosen = tuple(dict.fromkeys(int(c) for c in classes))
    if not chosen:
        raise ValueError(f"no classes chosen; choose from {known}")
    unknown = [c for c in chosen if c not in table]
    if unknown:
        raise ValueError(f"{source}: class ids {unknown} are not among its classes ({known})")
    if nodata is not None and nodata in chosen:
        raise ValueError(f"{source}: class id {int(nodata)} is the raster's nodata value and cannot be vectorized")
    return chosen


def _default_block_rows(raster: rasterio.io.DatasetReader) -> int:
    """Rows per block: about ``_BLOCK_PIXELS``, a whole number of the file's own blocks."""
    tile_rows = raster.block_shapes[0][0]
    rows = max(1, _BLOCK_PIXELS // raster.width)
    return max(tile_rows, rows - rows % tile_rows)


def _class_selector(dtype: np.dtype, chosen: Sequence[int]) -> Callable[[np.ndarray], np.ndarray]:
    """A function giving the pixels of chosen classes; a lookup table for 8- and 16-bit
    unsigned rasters, since ``np.isin`` makes three temporary arrays the size of a strip."""
    if dtype.kind != "u" or dtype.itemsize > 2:
        return lambda values: np.isin(values, chosen)
    table = np.zeros(1 << (8 * dtype.itemsize), bool)
    table[[c for c in chosen if 0 <= c < len(table)]] = True
    return lambda values: table[values]


def _finish(regions: Regions, transform: Affine, simplify: float) -> tuple[list[int], np.ndarray]:
    """Class ids and final polygons (map coordinates, simplified, valid, canonical) of closed regions."""
    if not len(regions):
        return [], np.empty(0, dtype=object)
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    geometries = shapely.transform(
        regions.geometries,
        lambda xy: np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f]),
    )
    class_ids = regions.class_ids
    if simplify > 0:
        geometries = shapely.simplify(geometries, simplify, preserve_topology=True)
    invalid = ~shapely.is_valid(geometries)
    if invalid.any():
        repaired = shapely.make_valid(geometries[invalid], method="structure", keep_collapsed=False)
        parts, index = shapely.get_parts(repaired, return_index=True)
        geometries = np.concatenate([geometries[~invalid], parts])
        class_ids = np.concatenate([class_ids[~invalid], class_ids[invalid][index]])
    # One form whatever the strip height, so outputs compare as sets of WKB.
    return class_ids.tolist(), canonical_polygons(geometries)


class _GeoPackageLayer:
    """A GeoPackage polygon layer written under a temporary name and renamed when complete."""

    def __init__(self, path: Path, layer_name: str, crs: CRS | None, cancel: CancelCheck | None = None) -> None:
        self._path = path
        self._cancel = cancel
        self._abandoned = False
        self._partial = temporary_path(path, suffix=POLYGON_SUFFIX)  # the GPKG driver needs its suffix
        self._layer_name = layer_name
        self._crs = crs
        self._pending = 0

    def __enter__(self) -> _GeoPackageLayer:
        from osgeo import gdal, ogr

        self._ogr = ogr
        _remove_geopackage(self._partial)
        self._dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(self._partial))
        if self._dataset is None:
            raise OSError(f"cannot create {self._path}: {gdal.GetLastErrorMsg()}")
        try:
            self._create_layer()
        except BaseException:
            self._dataset = None
            _remove_geopackage(self._partial)
            raise
        self._dataset.StartTransaction()
        return self

    def _create_layer(self) -> None:
        from osgeo import gdal, ogr, osr

        srs = None
        if self._crs is not None:
            srs = osr.SpatialReference()
            epsg = self._crs.to_epsg()
            if epsg:
                srs.ImportFromEPSG(epsg)
            else:
                srs.ImportFromWkt(self._crs.to_wkt())
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        self._layer = self._dataset.CreateLayer(
            self._layer_name, srs, ogr.wkbPolygon, options=["GEOMETRY_NAME=geom", "FID=fid"]
        )
        if self._layer is None:
            raise OSError(f"cannot create layer {self._layer_name!r} in {self._path}: {gdal.GetLastErrorMsg()}")
        for name, kind in _FIELDS:
            self._layer.CreateField(ogr.FieldDefn(name, getattr(ogr, kind)))
        self._definition = self._layer.GetLayerDefn()

    def add(self, polygons: tuple[list[int], np.ndarray], classes: dict[int, ClassInfo]) -> list[int]:
        """Write (class ids, polygons) with their attributes; return the class id of each feature."""
        class_ids, geometries = polygons
        rows = zip(
            class_ids,
            shapely.to_wkb(geometries),
            shapely.area(geometries).tolist(),
            shapely.length(geometries).tolist(),
        )
        for class_id, wkb, area, perimeter in rows:
            feature = self._ogr.Feature(self._definition)
            feature.SetFieldInteger64(0, class_id)  # fields in the order of _FIELDS
            feature.SetFieldString(1, classes[class_id].name)
            feature.SetField(2, area)
            feature.SetField(3, perimeter)
            feature.SetGeometryDirectly(self._ogr.CreateGeometryFromWkb(wkb))
            if self._layer.CreateFeature(feature) != 0:
                raise OSError(f"writing a polygon to {self._path} failed")
            self._pending += 1
            if self._pending % _FEATURES_PER_CANCEL_CHECK == 0:
                check_cancelled(self._cancel)
            if self._pending >= _FEATURES_PER_TRANSACTION:
                self._dataset.CommitTransaction()
                self._dataset.StartTransaction()
                self._pending = 0
        return class_ids

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None:
            self._close()
            _remove_geopackage(self._partial)
            return
        try:
            # The last commit builds the spatial index of every polygon (seconds for a
            # million): it runs in a helper thread so that a cancel still stops us at once.
            complete = run_cancellable(self._commit_and_close, self._cancel)
        except BaseException:
            self._abandoned = True  # the helper thread removes the file once GDAL lets go of it
            _remove_geopackage(self._partial)
            raise
        try:
            if complete:
                os.replace(self._partial, self._path)
                return
        except OSError as failure:
            raise OSError(f"cannot replace {self._path}: {failure}") from failure
        finally:
            if self._partial.exists():
                _remove_geopackage(self._partial)
        raise OSError(f"finishing {self._path} failed")

    def _commit_and_close(self) -> bool:
        committed = self._dataset.CommitTransaction() == 0
        self._close()
        if self._abandoned:
            _remove_geopackage(self._partial)
        return committed

    def _close(self) -> None:
        self._layer = self._definition = None
        self._dataset = None  # closes the file


def _remove_geopackage(path: Path) -> None:
    """Delete a GeoPackage and the SQLite side files a crash may leave next to it."""
    for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
