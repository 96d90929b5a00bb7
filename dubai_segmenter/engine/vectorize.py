"""Polygons of chosen classes from a classified raster, written to a GeoPackage.

Why blocks of rows: a 20,000 x 20,000 classified raster must vectorize on a workstation,
so only one block of rows and the regions still open at its lower edge are in memory.

Why the stitching is exact: GDAL's polygonizer (``gdal.Polygonize``) traces each block in
pixel coordinates, so every vertex is an integer and the pieces of one region
meet along a seam exactly. Two pieces on either side of a seam belong to the same region
when some pixel column has that class on both seam rows (4-connectedness, as
gdal_polygonize by default: pixels touching only at a corner stay apart). The pieces are
burnt into the two seam rows (``rasterio.features.rasterize``) to find those columns. A
union-find collects a region that crosses many seams; once no piece of it touches the
lower seam of the current block it is complete, and its pieces are unioned once
(shapely), which also closes holes that cross seams. Memory is one block plus the open
regions, which are no larger than the polygons that will be written anyway.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from .classes import ClassInfo
from .progress import CancelCheck, ProgressCallback, check_cancelled, report
from .raster_legend import raster_classes

#: Classes vectorized when none are chosen (by ``ClassInfo.key``).
DEFAULT_VECTOR_CLASSES: tuple[str, ...] = ("building", "road", "water")

# About 8 M pixels per block: a few tens of MB of working arrays whatever the raster size,
# and few enough seams that stitching costs little.
_BLOCK_PIXELS = 1 << 23
_FEATURES_PER_TRANSACTION = 20_000
_FIELDS = (("class_id", "OFTInteger"), ("class_name", "OFTString"), ("area", "OFTReal"), ("perimeter", "OFTReal"))


@dataclass(frozen=True)
class VectorizeResult:
    """What a vectorization wrote."""

    output_path: Path
    layer_name: str
    polygon_counts: dict[int, int]  # class id -> polygons written (classes with none included)
    seconds: float


@dataclass(frozen=True)
class _Polygon:
    """A finished region in pixel coordinates."""

    class_id: int
    geometry: shapely.Polygon


def vectorize_classes(
    classified_path: str | os.PathLike[str],
    output_gpkg: str | os.PathLike[str],
    classes: Sequence[int] | None = None,
    min_area: float = 0.0,
    simplify: float = 0.0,
    layer_name: str = "land_cover",
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    *,
    block_rows: int | None = None,
) -> VectorizeResult:
    """Write one polygon per 4-connected region of each chosen class to ``output_gpkg``.

    Polygons are in the raster's CRS with holes kept; fields ``class_id``, ``class_name``,
    ``area`` and ``perimeter`` (map units, of the written geometry; the perimeter includes
    the holes' rings). ``min_area`` (square map units) drops regions whose exact pixel
    area is smaller; ``simplify`` (map units) is a topology-preserving Douglas-Peucker
    tolerance applied to each polygon on its own, so neighbouring polygons may no longer
    share their edge exactly. Pixels equal to the raster's nodata value (255 for our
    rasters) never become polygons. ``block_rows`` overrides the rows read at a time.
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
        masked = MaskFlags.all_valid not in raster.mask_flag_enums[0]  # nodata value, mask band or alpha
        stitcher = _RegionStitcher(raster.width)
        with _GeoPackageLayer(output, layer_name, raster.crs) as layer:
            for row0 in range(0, raster.height, rows):
                check_cancelled(cancel)
                row1 = min(row0 + rows, raster.height)
                window = Window(0, row0, raster.width, row1 - row0)
                values = raster.read(1, window=window)
                selected = np.isin(values, chosen)
                if masked:
                    selected &= raster.read_masks(1, window=window) > 0
                finished = stitcher.add_block(values, selected, row0, last=row1 == raster.height)
                for class_id in layer.add(_finish(finished, raster.transform, min_area, simplify), table):
                    counts[class_id] += 1
                report(progress, row1 / raster.height, f"vectorized rows {row1} of {raster.height}")
            check_cancelled(cancel)
    return VectorizeResult(output, layer_name, counts, time.perf_counter() - started)


def _check_options(
    source: Path, output: Path, min_area: float, simplify: float, layer_name: str, block_rows: int | None
) -> None:
    if not source.is_file():
        raise FileNotFoundError(f"classified raster not found: {source}")
    if output.suffix.lower() != ".gpkg":
        raise ValueError(f"{output}: the polygon output must be a GeoPackage ending in .gpkg")
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
        chosen = tuple(c.id for c in table.values() if c.key in DEFAULT_VECTOR_CLASSES)
        if not chosen:
            raise ValueError(f"{source}: has none of the default classes {DEFAULT_VECTOR_CLASSES}; choose from {known}")
        return chosen
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


def _trace(values: np.ndarray, selected: np.ndarray, row0: int) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (pixel coordinates, y = raster row) and class ids of the regions of selected pixels.

    GDAL's polygonizer is called directly and its polygons are taken as WKB: building
    them from GeoJSON coordinate lists (``rasterio.features.shapes``) cost more than the
    tracing itself.
    """
    from osgeo import gdal, gdal_array, ogr

    image = gdal_array.OpenArray(values)
    image.SetGeoTransform((0.0, 1.0, 0.0, float(row0), 0.0, 1.0))
    mask = gdal_array.OpenArray(selected.view(np.uint8))
    source = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = source.CreateLayer("pieces", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    if gdal.Polygonize(image.GetRasterBand(1), mask.GetRasterBand(1), layer, 0) != 0:
        raise RuntimeError(f"GDAL could not trace rows {row0}+: {gdal.GetLastErrorMsg()}")
    wkb, class_ids = [], []
    for feature in layer:
        wkb.append(bytes(feature.GetGeometryRef().ExportToWkb()))
        class_ids.append(feature.GetFieldAsInteger(0))
    return shapely.from_wkb(np.array(wkb, dtype=object)), np.array(class_ids, dtype=np.int64)


class _RegionStitcher:
    """Turns blocks of rows into complete regions, joining pieces cut apart by seams."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._pieces: dict[int, tuple[int, shapely.Polygon]] = {}  # open piece id -> (class, polygon)
        self._parent: dict[int, int] = {}  # union-find over open piece ids
        self._next_id = 1
        self._lower_ids: np.ndarray | None = None  # open piece ids on the previous block's last row
        self._lower_values: np.ndarray | None = None  # class values of that row

    def add_block(self, values: np.ndarray, selected: np.ndarray, row0: int, last: bool) -> list[_Polygon]:
        """Add the block starting at ``row0`` (``selected``: pixels to trace); return the regions it completes."""
        row1 = row0 + values.shape[0]
        geometries, class_ids = _trace(values, selected, row0)
        ids = np.arange(self._next_id, self._next_id + len(geometries))
        self._next_id += len(geometries)
        bounds = shapely.bounds(geometries).reshape(-1, 4)
        on_upper = (bounds[:, 1] == row0) if row0 > 0 else np.zeros(len(geometries), bool)
        on_lower = (bounds[:, 3] == row1) if not last else np.zeros(len(geometries), bool)

        finished = [
            _Polygon(int(class_ids[i]), geometries[i]) for i in np.flatnonzero(~(on_upper | on_lower))
        ]
        for i in np.flatnonzero(on_upper | on_lower):
            self._pieces[int(ids[i])] = (int(class_ids[i]), geometries[i])
            self._parent[int(ids[i])] = int(ids[i])
        if row0 > 0 and self._lower_ids is not None:
            upper_ids = self._burn(geometries[on_upper], ids[on_upper], row0)
            joined = (self._lower_ids > 0) & (upper_ids > 0) & (self._lower_values == values[0])
            for a, b in np.unique(np.stack([self._lower_ids[joined], upper_ids[joined]], axis=1), axis=0):
                self._union(int(a), int(b))
        if last:
            self._lower_ids = self._lower_values = None
            still_open: set[int] = set()
        else:
            self._lower_ids = self._burn(geometries[on_lower], ids[on_lower], row1 - 1)
            self._lower_values = values[-1].copy()
            still_open = {self._find(int(i)) for i in np.unique(self._lower_ids[self._lower_ids > 0])}
        return finished + self._close_regions(still_open)

    def _burn(self, geometries: np.ndarray, ids: np.ndarray, row: int) -> np.ndarray:
        """Ids of the pieces covering each pixel of raster row ``row`` (0 where none)."""
        if len(geometries) == 0:
            return np.zeros(self._width, np.int64)
        local = rasterio.features.rasterize(
            zip(geometries, range(1, len(geometries) + 1)),
            out_shape=(1, self._width),
            transform=Affine.translation(0, row),
            fill=0,
            dtype="int32",
        )[0]
        lookup = np.concatenate([[0], ids]).astype(np.int64)
        return lookup[local]

    def _close_regions(self, still_open: set[int]) -> list[_Polygon]:
        groups: dict[int, list[int]] = defaultdict(list)
        for piece_id in self._pieces:
            root = self._find(piece_id)
            if root not in still_open:
                groups[root].append(piece_id)
        closed = []
        for members in groups.values():
            class_id = self._pieces[members[0]][0]
            parts = [self._pieces.pop(m)[1] for m in members]
            for m in members:
                del self._parent[m]
            if len(parts) == 1:
                closed.append(_Polygon(class_id, parts[0]))
                continue
            # The union keeps the seam crossings as collinear vertices; a zero-tolerance
            # simplification removes exactly those, so the result matches an unblocked run.
            merged = shapely.simplify(shapely.union_all(parts), 0.0, preserve_topology=True)
            closed.extend(_Polygon(class_id, p) for p in shapely.get_parts(merged))
        return closed

    def _find(self, piece_id: int) -> int:
        root = piece_id
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[piece_id] != root:
            self._parent[piece_id], piece_id = root, self._parent[piece_id]
        return root

    def _union(self, a: int, b: int) -> None:
        root_a, root_b = self._find(a), self._find(b)
        if root_a != root_b:
            self._parent[max(root_a, root_b)] = min(root_a, root_b)


def _finish(
    polygons: list[_Polygon], transform: Affine, min_area: float, simplify: float
) -> tuple[list[int], np.ndarray]:
    """Class ids and final polygons (map coordinates, minimum area, simplified, valid) of finished regions."""
    if not polygons:
        return [], np.empty(0, dtype=object)
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    geometries = shapely.transform(
        np.array([p.geometry for p in polygons], dtype=object),
        lambda xy: np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f]),
    )
    class_ids = np.array([p.class_id for p in polygons])
    keep = shapely.area(geometries) >= min_area
    geometries, class_ids = geometries[keep], class_ids[keep]
    if simplify > 0:
        geometries = shapely.simplify(geometries, simplify, preserve_topology=True)
    invalid = ~shapely.is_valid(geometries)
    if invalid.any():
        repaired = shapely.make_valid(geometries[invalid], method="structure", keep_collapsed=False)
        parts, index = shapely.get_parts(repaired, return_index=True)
        geometries = np.concatenate([geometries[~invalid], parts])
        class_ids = np.concatenate([class_ids[~invalid], class_ids[invalid][index]])
    # Exterior rings counter-clockwise, holes clockwise (OGC order) whatever the block size.
    return class_ids.tolist(), shapely.orient_polygons(geometries)


class _GeoPackageLayer:
    """A GeoPackage polygon layer written under a temporary name and renamed when complete."""

    def __init__(self, path: Path, layer_name: str, crs: CRS | None) -> None:
        self._path = path
        self._partial = path.with_name(f".{path.stem}.partial-{os.getpid()}.gpkg")
        self._layer_name = layer_name
        self._crs = crs
        self._pending = 0

    def __enter__(self) -> "_GeoPackageLayer":
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
            if self._pending >= _FEATURES_PER_TRANSACTION:
                self._dataset.CommitTransaction()
                self._dataset.StartTransaction()
                self._pending = 0
        return class_ids

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        complete = kind is None and self._dataset.CommitTransaction() == 0
        self._layer = self._definition = None
        self._dataset = None  # closes the file
        try:
            if complete:
                os.replace(self._partial, self._path)
                return
        except OSError as failure:
            raise OSError(f"cannot replace {self._path}: {failure}") from failure
        finally:
            if self._partial.exists():
                _remove_geopackage(self._partial)
        if kind is None:
            raise OSError(f"finishing {self._path} failed")


def _remove_geopackage(path: Path) -> None:
    """Delete a GeoPackage and the SQLite side files a crash may leave next to it."""
    for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
