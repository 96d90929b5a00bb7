# SPDX-License-Identifier: GPL-2.0-or-later
"""What the dock does with a finished run: add the styled layers, tabulate the areas.

Class names and colours come from the classified raster's own legend (written by the
engine from the model's metadata), so a model with any classes is shown right.
"""
from __future__ import annotations

from collections.abc import Sequence

from qgis.core import QgsMapLayer, QgsProject, QgsRasterLayer, QgsVectorLayer

from ..engine.classes import ClassInfo
from ..engine.raster_legend import raster_classes
from ..processing_provider.classified_raster import area_unit
from ..processing_provider.layer_styles import polygon_layer_uri, style_classified_raster, style_polygons

SummaryRow = tuple[str, tuple[int, int, int], str, str]


def add_output_layers(results: dict, layer_name: str, project: QgsProject | None = None) -> list[QgsMapLayer]:
    """Add the classified raster (and polygons, if any) to the project in the class colours."""
    project = project or QgsProject.instance()
    raster_path = results["OUTPUT"]
    classes = raster_classes(raster_path)
    raster = QgsRasterLayer(raster_path, f"{layer_name} land cover")
    style_classified_raster(raster, classes)
    layers: list[QgsMapLayer] = [raster]
    if results.get("OUTPUT_VECTOR"):
        polygons = QgsVectorLayer(polygon_layer_uri(results["OUTPUT_VECTOR"]), f"{layer_name} polygons", "ogr")
        style_polygons(polygons, classes)
        layers.append(polygons)
    project.addMapLayers(layers)
    return layers


def summary_rows(areas: Sequence[dict], classes: Sequence[ClassInfo]) -> list[SummaryRow]:
    """(name, colour, area, share) per class, every area in the same unit."""
    colours = {c.id: c.color for c in classes}
    unit = area_unit([a["area_m2"] for a in areas])
    return [(a["name"], colours.get(a["class_id"], (0, 0, 0)), unit.format(a["area_m2"]), f"{100 * a['share']:.1f} %")
            for a in areas]
