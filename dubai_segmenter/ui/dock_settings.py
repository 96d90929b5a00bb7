# SPDX-License-Identifier: GPL-2.0-or-later
"""What the dock remembers between sessions, in one place.

One frozen dataclass: each field is one QgsSettings key (its name, under
``SETTINGS_GROUP``) and its default is the panel's default. The view turns widgets into
a ``DockSettings`` and back; nothing else reads or writes these keys. The engine's
Python is not here: it is shared with Processing (``engine_python.SETTING_PYTHON``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

from qgis.core import QgsSettings

SETTINGS_GROUP = "dubai_segmenter/dock/"


class ProcessingArea(IntEnum):
    """Which part of the layer a run covers (the index in the area combo box)."""

    WHOLE = 0
    EXTENT = 1
    POLYGONS = 2


AREA_LABELS = {ProcessingArea.WHOLE: "Whole layer", ProcessingArea.EXTENT: "Map extent",
               ProcessingArea.POLYGONS: "Inside polygons"}


@dataclass(frozen=True)
class DockSettings:
    """The panel's choices; ``classes`` are class keys ("building"), empty = the model's defaults."""

    model: str = ""
    tile: int = 512
    overlap: int = 128
    batch: int = 1
    resolution: float = 0.0  # 0 = the layer's own
    area: ProcessingArea = ProcessingArea.WHOLE
    polygons: bool = True
    classes: tuple[str, ...] = ()
    min_area: float = 0.0
    simplify: float = 0.0
    raster_output: str = ""
    vector_output: str = ""
    quality: int = 0  # index of the Processing algorithm's Quality choice: 0 Fast, 1 Best (TTA)
    scheduler: str = ""  # a Dask scheduler address; empty = this computer

    @classmethod
    def load(cls, settings: QgsSettings | None = None) -> DockSettings:
        """The saved choices; a missing or unreadable key keeps its default."""
        settings = settings or QgsSettings()
        values = {}
        for field in fields(cls):
            default = getattr(cls, field.name)
            key = SETTINGS_GROUP + field.name
            if not settings.contains(key):
                continue
            if isinstance(default, tuple):
                text = str(settings.value(key, "", type=str) or "")
                values[field.name] = tuple(part for part in text.split(",") if part)
            elif isinstance(default, ProcessingArea):
                number = settings.value(key, int(default), type=int)
                values[field.name] = ProcessingArea(number) if number in {a.value for a in ProcessingArea} else default
            else:
                values[field.name] = settings.value(key, default, type=type(default))
        return cls(**values)

    def save(self, settings: QgsSettings | None = None) -> None:
        settings = settings or QgsSettings()
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, ProcessingArea):
                value = int(value)
            settings.setValue(SETTINGS_GROUP + field.name, value)

    @staticmethod
    def clear(settings: QgsSettings | None = None) -> None:
        """Forget every saved choice (the next ``load`` gives the defaults)."""
        (settings or QgsSettings()).remove(SETTINGS_GROUP.rstrip("/"))
