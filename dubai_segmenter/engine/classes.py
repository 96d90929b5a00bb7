# SPDX-License-Identifier: GPL-2.0-or-later
"""The land-cover classes of the HITL / MBRSC Dubai dataset.

Colours are those found in the mask PNGs, not those of its classes.json, which do not
match the pixels (``tests/training/test_dataset.py`` checks both). Class ids follow the
reference project.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Class id written for pixels that have no data (outside the input's valid area).
NODATA_CLASS = 255


@dataclass(frozen=True)
class ClassInfo:
    """One output class: its id in the classified raster, a display name and RGB colour."""

    id: int
    name: str
    color: tuple[int, int, int]

    @property
    def key(self) -> str:
        """Short lower-case name used on the command line ("building", "road" ...)."""
        return self.name.split(" ")[0].lower()


DUBAI_CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo(0, "Building", (60, 16, 152)),
    ClassInfo(1, "Land (unpaved area)", (132, 41, 246)),
    ClassInfo(2, "Road", (110, 193, 228)),
    ClassInfo(3, "Vegetation", (254, 221, 58)),
    ClassInfo(4, "Water", (226, 169, 41)),
    ClassInfo(5, "Unlabeled", (155, 155, 155)),
)

#: Classes vectorized when none are chosen: the objects analysts edit as polygons.
DEFAULT_VECTOR_KEYS: tuple[str, ...] = ("building", "road", "water")
#: Catch-all classes that make no useful polygons.
_CATCH_ALL_KEYS = frozenset({"unlabeled", "unlabelled", "background", "nodata", "unknown", "other", "void"})


def default_vector_classes(classes: Iterable[ClassInfo]) -> tuple[ClassInfo, ...]:
    """The classes of a model (or raster legend) to vectorize when the user chose none.

    Buildings, roads and water when the model has any of them; a model with other
    classes gets all of its classes but catch-alls such as "unlabeled", so a 3- or 8-class
    model has useful defaults in the dock, in Processing and on the command line.
    """
    classes = tuple(classes)
    named = tuple(c for c in classes if c.key in DEFAULT_VECTOR_KEYS)
    return named or tuple(c for c in classes if c.key not in _CATCH_ALL_KEYS) or classes
