# SPDX-License-Identifier: GPL-2.0-or-later
"""The engine's messages in the words of the QGIS dialog a user is looking at.

The engine's hints name its command-line options ("pass --bands 1,1,1"); in QGIS there is
no command line, so each option becomes the parameter the user can set instead.
"""
from __future__ import annotations

import re

#: Command-line option -> the label of the parameter that sets it, in the dialog and the panel.
PARAMETER_OF_OPTION = {
    "--bands": "Bands",
    "--tile": "Tile size",
    "--overlap": "Tile overlap",
    "--batch": "Batch size",
    "--resolution": "Processing resolution",
    "--classes": "Classes to vectorize",
    "--min-area": "Minimum polygon area",
    "--simplify": "Simplification tolerance",
    "--model": "Model file",
    "--out-raster": "Classified raster",
    "--out-vector": "Polygons",
}
_OPTION = "|".join(re.escape(option) for option in PARAMETER_OF_OPTION)


def for_qgis(message: str) -> str:
    """``message`` with every engine option replaced by the QGIS parameter that sets it."""
    label = lambda match: PARAMETER_OF_OPTION[match["option"]]  # noqa: E731
    message = re.sub(rf"\b(?:pass|use) (?P<option>{_OPTION}) (?P<value>[^\s;,]+(?:,[^\s;,]+)*)",
                     lambda m: f"set the {label(m)} parameter to {m['value']}", message)
    message = re.sub(rf"e\.g\. (?P<option>{_OPTION}) (?P<value>[^\s;,]+(?:,[^\s;,]+)*)",
                     lambda m: f"e.g. set the {label(m)} parameter to {m['value']}", message)
    return re.sub(rf"(?P<option>{_OPTION})\b", lambda m: f"the {label(m)} parameter", message)
