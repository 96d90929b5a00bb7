# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin's metadata.txt, read where the code needs one of its values (the homepage).

metadata.txt is the one place for the project's addresses; code reads them from there
instead of repeating them.
"""
from __future__ import annotations

import configparser
from functools import lru_cache
from pathlib import Path

METADATA_PATH = Path(__file__).resolve().parent / "metadata.txt"


@lru_cache(maxsize=1)
def plugin_metadata(path: Path = METADATA_PATH) -> dict[str, str]:
    """The ``[general]`` section of metadata.txt (keys as written, e.g. ``qgisMinimumVersion``)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep the keys' case
    parser.read(path, encoding="utf-8")
    return dict(parser["general"]) if parser.has_section("general") else {}
