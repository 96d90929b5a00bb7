# SPDX-License-Identifier: GPL-2.0-or-later
"""One area unit per summary table, chosen by the largest area, in the dock and the log."""
from __future__ import annotations

from dubai_segmenter.processing_provider.classified_raster import ClassArea, area_unit, summary_text
from dubai_segmenter.ui.run_results import summary_rows


def test_one_unit_for_the_whole_table_chosen_by_the_largest_area():
    assert area_unit([12.0, 9_999.0]).symbol == "m²"
    assert area_unit([12.0, 50_000.0]).symbol == "ha"
    assert area_unit([12.0, 3.2e6]).symbol == "km²"
    areas = [{"class_id": 0, "name": "Building", "area_m2": 3.2e6, "share": 0.9},
             {"class_id": 1, "name": "Pool", "area_m2": 250.0, "share": 0.1}]
    rows = summary_rows(areas, [])
    assert [row[2] for row in rows] == ["3.200 km²", "0.000 km²"]
    text = summary_text([ClassArea(0, "Building", 1, 3.2e6, 0.9), ClassArea(1, "Pool", 1, 250.0, 0.1)])
    assert "m²" not in text.replace("km²", "") and text.count("km²") == 2
