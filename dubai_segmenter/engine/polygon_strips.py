# SPDX-License-Identifier: GPL-2.0-or-later
"""Tracing a classified raster a strip of rows at a time, and joining regions across the seams.

Why strips: a 20,000 x 20,000 classified raster must vectorize in well under 1 GB, so only
one strip of rows and the regions still open at its lower edge may be in memory; a region
is finished (and dropped if it is too small) as soon as no piece of it reaches the seam
below. ``trace_strip`` traces one strip; ``SeamJoiner`` takes the strips top to bottom and
returns each region once it is closed. The two are separate so that strips can be traced
anywhere (another process, a Dask worker) and joined in one place.

Why the join is exact without rasterizing anything: GDAL's polygonizer traces a strip in
pixel coordinates, so every vertex is an integer and the boundary of a piece on a seam
line is made of horizontal edges that cover exactly the piece's pixels in the row next to
the seam. Two pieces on either side of a seam are one region (4-connectedness, as
``gdal_polygonize.py``) when they have the same class and their edges on the seam overlap
by a positive length. Those edges are read off the rings; a union-find collects regions
that cross many seams, and their pieces are unioned once when the region closes. The
union keeps the seam crossings as collinear vertices, which are removed, so the result
equals what an unblocked polygonization gives (``canonical_polygons`` puts both in one
form: exterior counter-clockwise, holes clockwise, each ring starting at its lowest vertex).
"""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import shapely

from .progress import CancelCheck, check_cancelled

#: Regions whose pieces hold more vertices than this are unioned in a helper thread while
#: the cancel check is polled (GEOS releases the GIL but cannot be interrupted).
_LARGE_UNION_VERTICES = 50_000
_POLL_SECONDS = 0.1

_T = TypeVar("_T")


@dataclass(frozen=True)
class Strip:
    """The pieces of regions traced in raster rows ``row0`` to ``row1`` (pixel coordinates).

    x is the column and y the row of a pixel corner, so every vertex is an integer.
    ``geometries`` holds shapely Polygons and ``class_ids`` their class (int64), one each.
    """

    row0: int
    row1: int
    geometries: np.ndarray
    class_ids: np.ndarray


@dataclass(frozen=True)
class Regions:
    """Complete regions (pixel coordinates) and their class ids, as returned by ``SeamJoiner``."""

    geometries: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.class_ids)

    def batches(self, size: int) -> Iterator[Regions]:
        """The regions ``size`` at a time (so that long work on them can check for a cancel)."""
        for start in range(0, len(self), size):
            yield Regions(self.geometries[start:start + size], self.class_ids[start:start + size])


def trace_strip(
    values: np.ndarray, selected: np.ndarray, row0: int, cancel: CancelCheck | None = None
) -> Strip:
    """Trace the 4-connected regions of equal ``values`` among the ``selected`` pixels of a strip.

    ``values`` (integers) and ``selected`` (bool) are the strip's rows; ``row0`` is the
    raster row of its first row. GDAL's polygonizer does the tracing and hands its
    polygons back in bulk as WKB (building them one OGR feature at a time cost more than
    the tracing). ``cancel`` is polled from GDAL's progress callback, every few rows, so a
    cancel takes effect within a fraction of a second even on a very wide strip.
    """
    from osgeo import gdal, gdal_array, ogr

    if values.shape != selected.shape or values.ndim != 2:
        raise ValueError(f"values {values.shape} and selected {selected.shape} must be 2-D arrays of one shape")
    image = gdal_array.OpenArray(np.ascontiguousarray(values))
    image.SetGeoTransform((0.0, 1.0, 0.0, float(row0), 0.0, 1.0))
    mask = gdal_array.OpenArray(np.ascontiguousarray(selected, dtype=bool).view(np.uint8))
    source = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = source.CreateLayer("pieces", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))

    def keep_going(_fraction: float, _message: object, _data: object) -> int:
        return 0 if cancel is not None and cancel() else 1

    try:
        failed = gdal.Polygonize(image.GetRasterBand(1), mask.GetRasterBand(1), layer, 0, callback=keep_going) != 0
        message = gdal.GetLastErrorMsg()
    except RuntimeError as error:  # with gdal.UseExceptions()
        failed, message = True, str(error)
    if failed:
        check_cancelled(cancel)
        raise RuntimeError(f"GDAL could not trace rows {row0} to {row0 + values.shape[0]}: {message}")
    wkb, class_ids = [], []
    for batch in layer.GetArrowStreamAsNumPy(options=["USE_MASKED_ARRAYS=NO"]):
        wkb.append(batch[layer.GetGeometryColumn() or "wkb_geometry"])
        class_ids.append(batch["class_id"])
    geometries = shapely.from_wkb(np.concatenate(wkb)) if wkb else np.empty(0, dtype=object)
    ids = np.concatenate(class_ids).astype(np.int64) if class_ids else np.empty(0, np.int64)
    return Strip(row0, row0 + values.shape[0], geometries, ids)


class SeamJoiner:
    """Joins the pieces of strips traced top to bottom into complete regions.

    ``add`` takes each strip in order and returns the regions it completes: those of the
    strip that touch no seam at once, the others when the last of their pieces has been
    seen. Regions smaller than ``min_pixels`` (area in pixels) are dropped when they close,
    so memory holds only the regions still open, never the raster or the small regions.
    """

    def __init__(self, height: int, min_pixels: float = 0.0) -> None:
        self._height = height
        self._min_pixels = min_pixels
        self._next_row = 0
        self._next_id = 0
        self._pieces: dict[int, tuple[int, shapely.Polygon]] = {}  # open piece id -> (class, polygon)
        self._parent: dict[int, int] = {}  # union-find over open piece ids
        # Edges of open pieces on the seam below the last strip: x from, x to, piece id, class.
        self._lower = (np.empty(0), np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))

    def add(self, strip: Strip, cancel: CancelCheck | None = None) -> Regions:
        """Add the next strip (its ``row0`` is the previous strip's ``row1``); return the regions it closes."""
        if strip.row0 != self._next_row or not strip.row0 < strip.row1 <= self._height:
            raise ValueError(f"strip of rows {strip.row0} to {strip.row1} given, rows from {self._next_row} expected")
        self._next_row = strip.row1
        geometries, class_ids = strip.geometries, strip.class_ids
        ids = np.arange(self._next_id, self._next_id + len(geometries), dtype=np.int64)
        self._next_id += len(geometries)
        bounds = shapely.bounds(geometries).reshape(-1, 4)
        on_upper = bounds[:, 1] == strip.row0 if strip.row0 > 0 else np.zeros(len(ids), bool)
        on_lower = bounds[:, 3] == strip.row1 if strip.row1 < self._height else np.zeros(len(ids), bool)
        inside = ~(on_upper | on_lower)
        closed = Regions(geometries[inside], class_ids[inside])
        for i in np.flatnonzero(~inside):
            self._pieces[int(ids[i])] = (int(class_ids[i]), geometries[i])
            self._parent[int(ids[i])] = int(ids[i])

        upper = _seam_edges(geometries[on_upper], ids[on_upper], class_ids[on_upper], strip.row0)
        for a, b in _touching(self._lower, upper):
            self._union(int(a), int(b))
        self._lower = _seam_edges(geometries[on_lower], ids[on_lower], class_ids[on_lower], strip.row1)
        still_open = {self._find(int(i)) for i in np.unique(self._lower[2])}
        joined = self._close(still_open, cancel)
        geometries = np.concatenate([closed.geometries, joined.geometries])
        return self._big_enough(Regions(geometries, np.concatenate([closed.class_ids, joined.class_ids])))

    @property
    def open_pieces(self) -> int:
        """Pieces held for regions not yet closed (what the joiner's memory follows)."""
        return len(self._pieces)

    def _close(self, still_open: set[int], cancel: CancelCheck | None) -> Regions:
        groups: dict[int, list[int]] = defaultdict(list)
        for piece_id in self._pieces:
            root = self._find(piece_id)
            if root not in still_open:
                groups[root].append(piece_id)
        geometries, class_ids = [], []
        for members in groups.values():
            check_cancelled(cancel)
            class_ids.append(self._pieces[members[0]][0])
            parts = [self._pieces.pop(m)[1] for m in members]
            for m in members:
                del self._parent[m]
            geometries.append(parts[0] if len(parts) == 1 else _join(parts, cancel))
        return Regions(np.array(geometries, dtype=object).reshape(-1), np.array(class_ids, dtype=np.int64))

    def _big_enough(self, regions: Regions) -> Regions:
        if self._min_pixels <= 0 or not len(regions):
            return regions
        keep = shapely.area(regions.geometries) >= self._min_pixels
        return Regions(regions.geometries[keep], regions.class_ids[keep])

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


def _seam_edges(
    geometries: np.ndarray, ids: np.ndarray, class_ids: np.ndarray, y: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The horizontal exterior edges on the line ``y``: x from, x to, piece id, class; sorted by x.

    A hole never reaches the strip's edge (pixels there connect to the outside), so only
    exterior rings are read.
    """
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(geometries), return_index=True)
    on_line = (ring[:-1] == ring[1:]) & (coords[:-1, 1] == y) & (coords[1:, 1] == y)
    x_from = np.minimum(coords[:-1, 0], coords[1:, 0])[on_line]
    x_to = np.maximum(coords[:-1, 0], coords[1:, 0])[on_line]
    piece = ring[:-1][on_line]
    order = np.argsort(x_from, kind="stable")
    return x_from[order], x_to[order], ids[piece][order], class_ids[piece][order]


def _touching(
    lower: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    upper: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Pairs (lower piece id, upper piece id) of one class whose seam edges overlap by a positive length.

    Edges on one side of a seam never overlap each other (each covers its own pixels), so
    sorted by start they are sorted by end too, and the edges of the other side that
    overlap one edge are a contiguous run found by two binary searches.
    """
    low_from, low_to, low_id, low_class = lower
    up_from, up_to, up_id, up_class = upper
    first = np.searchsorted(low_to, up_from, side="right")  # first lower edge ending after the upper starts
    stop = np.searchsorted(low_from, up_to, side="left")  # lower edges starting before the upper ends
    counts = np.maximum(stop - first, 0)
    upper_index = np.repeat(np.arange(len(up_from)), counts)
    lower_index = np.repeat(first, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    same = low_class[lower_index] == up_class[upper_index]
    pairs = np.stack([low_id[lower_index][same], up_id[upper_index][same]], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def _join(parts: list[shapely.Polygon], cancel: CancelCheck | None) -> shapely.Polygon:
    """One region from its pieces: their union, without the collinear vertices left on the seams."""
    if sum(shapely.get_num_coordinates(parts)) > _LARGE_UNION_VERTICES:
        union = run_cancellable(lambda: shapely.union_all(parts), cancel)
    else:
        union = shapely.union_all(parts)
    if not isinstance(union, shapely.Polygon):
        raise RuntimeError(f"pieces joined across seams gave a {union.geom_type}, not one polygon")
    return drop_collinear_vertices(union)


def drop_collinear_vertices(polygon: shapely.Polygon) -> shapely.Polygon:
    """The rectilinear ``polygon`` without vertices that lie on a straight run of its rings.

    Pixel outlines only turn at right angles, so a vertex is superfluous exactly when
    its neighbours share its x or its y. GDAL's tracer never writes such vertices, so
    removing them gives what an unblocked polygonization gives.
    """

    def simple_ring(ring: shapely.LinearRing) -> np.ndarray:
        xy = shapely.get_coordinates(ring)[:-1]
        before, after = np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0)
        straight = ((before[:, 0] == xy[:, 0]) & (xy[:, 0] == after[:, 0])) | (
            (before[:, 1] == xy[:, 1]) & (xy[:, 1] == after[:, 1])
        )
        return xy[~straight]

    return shapely.Polygon(simple_ring(polygon.exterior), [simple_ring(hole) for hole in polygon.interiors])


def canonical_polygons(geometries: np.ndarray) -> np.ndarray:
    """Polygons in one form whatever the strips: exterior counter-clockwise, holes clockwise
    (the OGC order), each ring starting at its lowest vertex and holes in a fixed order.

    So the output of any strip height, or of strips traced on other machines, can be
    compared as a set of WKB with an unblocked polygonization put in the same form.
    """
    return shapely.orient_polygons(shapely.normalize(geometries))


def run_cancellable(work: Callable[[], _T], cancel: CancelCheck | None) -> _T:
    """Run ``work`` (one long call into C that releases the GIL) while polling ``cancel``.

    GEOS and GDAL cannot be interrupted mid-call, and a Python signal handler only runs
    between bytecodes of the main thread; running the call in a daemon thread lets the
    main thread raise ``Cancelled`` within ``_POLL_SECONDS`` and the process exit, the
    abandoned call's result unused.
    """
    if cancel is None:
        return work()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="dubai-segmenter-cancellable", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(_POLL_SECONDS)
        check_cancelled(cancel)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
