# SPDX-License-Identifier: GPL-2.0-or-later
"""Keep TensorFlow's private SQLite away from GDAL and Qt.

TensorFlow's shared library exports its own copy of SQLite and is loaded with
RTLD_GLOBAL. Libraries opened after it (GDAL's GeoPackage driver, Qt's SQLite driver)
then bind to that copy, which lacks the R*Tree module ("no such module: rtree") and can
crash the process. Loading the system SQLite globally first makes every later library
bind to it. The README's "Requirements" says why; ``tests/conftest.py`` does the same.
"""
from __future__ import annotations

import contextlib
import ctypes


def preload_system_sqlite() -> None:
    """Load the system SQLite globally; harmless where it is already loaded."""
    with contextlib.suppress(OSError):  # not Linux, or no system SQLite: nothing to protect
        ctypes.CDLL("libsqlite3.so.0", mode=ctypes.RTLD_GLOBAL)
