# SPDX-License-Identifier: GPL-2.0-or-later
"""Class-coloured styles for the outputs, applied wherever they are loaded into QGIS.

The colours and names come from the classified raster itself (its legend), so a model
with other classes is drawn right without a style file per model. Used by the dock and,
through a layer post-processor, by the toolbox, batch and modeler runs.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from ..engine.classes import ClassInfo
from ..engine.contract import POLYGON_LAYER

_FILL_OPACITY = 0.6


def style_classified_raster(layer: QgsRasterLayer, classes: Sequence[ClassInfo]) -> None:
    """Paletted renderer: one entry per class in its colour, labelled with its name."""
    entries = [QgsPalettedRasterRenderer.Class(c.id, QColor(*c.color), c.name) for c in classes]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, entries))
    layer.triggerRepaint()


def style_polygons(layer: QgsVectorLayer, classes: Sequence[ClassInfo]) -> None:
    """Categorized by ``class_id``: class colour, semi-transparent fill, darker outline.

    Only the classes the layer holds get a category, so the legend lists what was
    vectorized, not every class of the model.
    """
    field = layer.fields().indexOf("class_id")
    present = {int(value) for value in layer.uniqueValues(field) if value is not None} if field >= 0 else set()
    categories = []
    for c in classes:
        if c.id not in present:
            continue
        colour = QColor(*c.color)
        symbol = QgsFillSymbol.createSimple(
            {"color": f"{c.color[0]},{c.color[1]},{c.color[2]},{int(255 * _FILL_OPACITY)}",
             "outline_color": colour.darker(150).name(), "outline_width": "0.3"}
        )
        categories.append(QgsRendererCategory(c.id, symbol, c.name))
    layer.setRenderer(QgsCategorizedSymbolRenderer("class_id", categories))
    layer.triggerRepaint()


def polygon_layer_uri(gpkg_path: str) -> str:
    return f"{gpkg_path}|layername={POLYGON_LAYER}"


class ClassStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles a Processing output layer in the class colours when QGIS loads it."""

    # Processing keeps only a C++ pointer to a post-processor: the Python object must be
    # kept alive elsewhere until the layer is loaded, or QGIS calls a deleted object.
    _alive: deque = deque(maxlen=64)

    def __init__(self, classes: Sequence[ClassInfo]) -> None:
        super().__init__()
        self.classes = tuple(classes)

    @classmethod
    def create(cls, classes: Sequence[ClassInfo]) -> ClassStylePostProcessor:
        processor = cls(classes)
        cls._alive.append(processor)
        return processor

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> None:
        if isinstance(layer, QgsRasterLayer):
            style_classified_raster(layer, self.classes)
        elif isinstance(layer, QgsVectorLayer):
            style_polygons(layer, self.classes)
