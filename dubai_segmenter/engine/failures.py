# SPDX-License-Identifier: GPL-2.0-or-later
"""The one plain sentence for a run that failed while writing, whatever library raised it.

A full disk surfaces differently in each writer: an ``OSError`` with ``ENOSPC`` from Python,
a ``RasterioIOError`` or a GDAL ``CPLE_FileIO`` message mentioning "No space left on
device", or a later failure that only says a step could not be done ("could not write class
names into ...partial.aux.xml"). A user needs to hear the cause and which of their files it
hit, not the library's words about a hidden temporary; so the error chain is searched for
the cause, and the output folder's free space is the last witness.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

#: Below this many free bytes a write failure in the output's folder is taken as a full disk.
NEARLY_FULL_BYTES = 1 << 20


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _free_bytes(folder: Path) -> int | None:
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs on Windows
        return None
    return stat.f_bavail * stat.f_frsize


def disk_full(error: BaseException, writing: str | os.PathLike | None) -> str | None:
    """"no space left on device while writing FILE" if ``error`` came from a full disk, else None."""
    target = Path(writing) if writing is not None else None
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            break
        if "no space left on device" in str(link).lower() or "disk full" in str(link).lower():
            break
    else:
        if target is None:
            return None
        free = _free_bytes(target.parent if str(target.parent) else Path("."))
        if free is None or free >= NEARLY_FULL_BYTES:
            return None
    where = f" while writing {target}" if target is not None else ""
    return f"no space left on device{where}; free some space or choose another output folder (nothing was left behind)"
