# SPDX-License-Identifier: GPL-2.0-or-later
"""Which classes become polygons when none are chosen: decided from the model's own classes."""
from dubai_segmenter.engine.classes import DUBAI_CLASSES, ClassInfo, default_vector_classes


def test_dubai_models_default_to_building_road_water():
    assert [c.key for c in default_vector_classes(DUBAI_CLASSES)] == ["building", "road", "water"]


def test_other_models_default_to_all_classes_but_catch_alls():
    classes = [ClassInfo(0, "Tree canopy", (0, 90, 0)), ClassInfo(1, "Unlabeled", (9, 9, 9)),
               ClassInfo(2, "Pool", (0, 0, 200)), ClassInfo(3, "Background", (1, 1, 1))]
    assert [c.name for c in default_vector_classes(classes)] == ["Tree canopy", "Pool"]


def test_a_model_of_catch_alls_only_still_has_a_default():
    classes = [ClassInfo(0, "Background", (0, 0, 0)), ClassInfo(1, "Unlabeled", (9, 9, 9))]
    assert default_vector_classes(classes) == tuple(classes)
