# SPDX-License-Identifier: GPL-2.0-or-later
"""Writing the classified GeoTIFF: class ids streamed in by rows, styled, and only then made visible.

The file is what an analyst opens in QGIS or GDAL, so it carries its own legend: a colour
table in the class colours and the class names as GDAL category names (GeoTIFF has no
tag for those, so GDAL keeps them in the ``.aux.xml`` sidecar next to the file, which
``gdalinfo`` and QGIS read). It is tiled (512), DEFLATE-compressed and has mode-resampled
overviews so it displays fast at any scale.

It is written under a hidden temporary name in the output folder and renamed when
complete: a failed or cancelled run leaves nothing that looks like a result, and an
earlier result at the same path stays untouched until the new one is whole.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from dubai_segmenter.engine.classes import NODATA_CLASS, ClassInfo
from dubai_segmenter.engine.errors import OutputPathError
from dubai_segmenter.engine.progress import CancelCheck, check_cancelled
from dubai_segmenter.engine.temporary_names import create_temporary_file

BLOCK_SIZE = 512
#: Overviews are added (x2, x4 ...) until the coarsest is at most this many pixels across.
OVERVIEW_MIN_SIZE = 256
CONFIDENCE_DESCRIPTION = "confidence (%): blended probability of the chosen class"
#: Pixels counted per ``np.bincount`` call: it widens uint8 ids to 8-byte integers, so a whole
#: band of rows at once would cost 8 bytes a pixel (60 MB for 384 rows of 20,000 columns).
COUNT_CHUNK_PIXELS = 1 << 20


def check_output_path(path: str | os.PathLike, input_path: str | os.PathLike | None = None) -> Path:
    """``path`` as a Path if a file can be created there, else OutputPathError."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputPathError(f"output {path} is a directory; give a file name inside it")
    if not folder.is_dir():
        raise OutputPathError(f"output folder {folder} does not exist; create it first")
    try:  # the only sure test (permissions, read-only disks, ACLs): create a file there
        create_temporary_file(folder / "write-test").unlink()
    except OSError as error:
        raise OutputPathError(
            f"cannot write to folder {folder} ({error.strerror}); choose another output path"
        ) from error
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"output {path} exists and is read-only; choose another output path")
    if input_path is not None and path.resolve() == Path(input_path).resolve():
        raise OutputPathError(f"output {path} is the input raster; the input is never overwritten, choose another path")
    return path


def overview_factors(width: int, height: int) -> list[int]:
    """x2, x4 ... until the coarsest overview is at most OVERVIEW_MIN_SIZE pixels across."""
    factors, factor = [], 2
    while math.ceil(max(width, height) / (factor // 2)) > OVERVIEW_MIN_SIZE:
        factors.append(factor)
        factor *= 2
    return factors


class ClassifiedRasterWriter:
    """Streams rows of class ids (and optionally confidence) into a styled GeoTIFF.

    Rows must come in order, top to bottom. They are buffered into whole 512-row block
    rows so every compressed block is written once. Use as a context manager: leaving it
    with an exception removes the temporary file; call ``finish()`` to publish the result.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        crs: Any,
        transform: Any,
        classes: Sequence[ClassInfo],
        confidence: bool = False,
        tags: dict[str, str] | None = None,
        overviews: bool = True,
    ) -> None:
        self.path = check_output_path(path)
        self._overviews = overviews
        self.classes = tuple(classes)
        self.width, self.height = width, height
        self._temporary = create_temporary_file(self.path)
        self._bands = 2 if confidence else 1
        try:
            self._dataset = rasterio.open(
                self._temporary,
                "w",
                driver="GTiff",
                width=width,
                height=height,
                count=self._bands,
                dtype="uint8",
                crs=crs,
                transform=transform,
                nodata=NODATA_CLASS,
                tiled=True,
                blockxsize=BLOCK_SIZE,
                blockysize=BLOCK_SIZE,
                compress="deflate",
                bigtiff="if_safer",
            )
        except Exception:
            self._remove_temporary()
            raise
        self._dataset.set_band_description(1, "class id")
        if confidence:
            self._dataset.set_band_description(2, CONFIDENCE_DESCRIPTION)
        self._dataset.update_tags(
            CLASSES=json.dumps([{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes]),
            **(tags or {}),
        )
        self._buffer = np.full((self._bands, min(BLOCK_SIZE, height), width), NODATA_CLASS, dtype=np.uint8)
        self._buffer_top = 0  # raster row of the buffer's first row
        self._next_row = 0
        self.class_counts = np.zeros(256, dtype=np.int64)

    @property
    def has_confidence(self) -> bool:
        return self._bands == 2

    def _colour_table(self) -> dict[int, tuple[int, int, int, int]]:
        table = {c.id: (*c.color, 255) for c in self.classes}
        table[NODATA_CLASS] = (0, 0, 0, 0)
        return table

    def write_rows(self, first_row: int, class_ids: np.ndarray, confidence: np.ndarray | None = None) -> None:
        """Write (rows, width) uint8 class ids (NODATA_CLASS = no data) starting at ``first_row``."""
        if first_row != self._next_row:
            raise ValueError(f"rows must be written in order: expected row {self._next_row}, got {first_row}")
        if class_ids.shape[1] != self.width or (confidence is None) != (self._bands == 1):
            raise ValueError("rows do not match the output's width or band count")
        layers = [class_ids] if confidence is None else [class_ids, confidence]
        rows_per_count = max(1, COUNT_CHUNK_PIXELS // self.width)
        for top in range(0, class_ids.shape[0], rows_per_count):
            self.class_counts += np.bincount(class_ids[top : top + rows_per_count].ravel(), minlength=256)
        done = 0
        while done < class_ids.shape[0]:
            offset = self._next_row - self._buffer_top
            count = min(class_ids.shape[0] - done, self._buffer.shape[1] - offset)
            for band, layer in enumerate(layers):
                self._buffer[band, offset : offset + count] = layer[done : done + count]
            done += count
            self._next_row += count
            if self._next_row - self._buffer_top == self._buffer.shape[1] or self._next_row == self.height:
                self._flush()

    def _flush(self) -> None:
        rows = self._next_row - self._buffer_top
        window = Window(0, self._buffer_top, self.width, rows)
        self._dataset.write(self._buffer[:, :rows], window=window)
        self._buffer_top = self._next_row
        self._buffer[:] = NODATA_CLASS

    def finish(self, cancel: CancelCheck | None = None) -> Path:
        """Add overviews (unless disabled), colours and class names, then rename the file to its final path.

        ``cancel`` is polled while GDAL builds the overviews (seconds on a large raster), so a
        cancel stops there too; it raises Cancelled and the temporary file is removed.
        """
        if self._next_row != self.height:
            raise ValueError(f"only {self._next_row} of {self.height} rows were written")
        self._dataset.close()
        self._write_legend_and_overviews(cancel)
        sidecar = Path(f"{self._temporary}.aux.xml")
        final_sidecar = Path(f"{self.path}.aux.xml")
        if sidecar.exists():
            os.replace(sidecar, final_sidecar)
        elif final_sidecar.exists():
            final_sidecar.unlink()  # an older result's legend must not describe this file
        os.replace(self._temporary, self.path)
        return self.path

    def _write_legend_and_overviews(self, cancel: CancelCheck | None) -> None:
        """Overviews, colour table and class names (as GDAL category names, index = pixel value).

        With GDAL's own bindings: rasterio has no API for category names, and its overview
        builder gives no progress callback, so a cancel waited for it to finish (9 s measured
        on a large raster). The colour table comes after the overviews: with it GDAL warns
        that a two-band file's second band is a palette index without palette.
        """
        from osgeo import gdal

        names = [""] * (max(c.id for c in self.classes) + 1)
        for c in self.classes:
            names[c.id] = c.name
        dataset = gdal.Open(str(self._temporary), gdal.GA_Update)
        if dataset is None:
            raise OSError(f"could not open {self._temporary} again to finish it: {gdal.GetLastErrorMsg()}")
        factors = overview_factors(self.width, self.height) if self._overviews else []
        if factors:
            stopped = []

            def keep_going(*_: object) -> int:
                stopped.append(cancel is not None and cancel())
                return 0 if stopped[-1] else 1

            previous = gdal.GetConfigOption("COMPRESS_OVERVIEW")
            gdal.SetConfigOption("COMPRESS_OVERVIEW", "DEFLATE")
            try:
                failed = dataset.BuildOverviews("MODE", factors, keep_going) != 0
            finally:
                gdal.SetConfigOption("COMPRESS_OVERVIEW", previous)
            if stopped and stopped[-1]:
                dataset = None
                check_cancelled(cancel)
            if failed:
                raise OSError(f"could not build the overviews of {self._temporary}: {gdal.GetLastErrorMsg()}")
        table = gdal.ColorTable()
        for value, colour in self._colour_table().items():
            table.SetColorEntry(value, colour)
        band = dataset.GetRasterBand(1)
        if band.SetRasterColorTable(table) != 0 or band.SetCategoryNames(names) != 0:
            raise OSError(f"could not write the colours and class names into {self._temporary}")
        dataset = None  # closing writes the sidecar

    def abort(self) -> None:
        """Close and delete the temporary file(s); the final path is left as it was."""
        if not self._dataset.closed:
            self._dataset.close()
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        for leftover in (self._temporary, Path(f"{self._temporary}.aux.xml")):
            leftover.unlink(missing_ok=True)

    def __enter__(self) -> ClassifiedRasterWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.abort()
