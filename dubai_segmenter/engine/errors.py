# SPDX-License-Identifier: GPL-2.0-or-later
"""Every exception the engine raises on purpose, in one place.

Why one module: the command line turns these into exit codes (``cli.main``: bad input is 2,
a cancel is 3, a failure is 1) and the plugin's catalogue dialog catches some of them, so the
set of them is easier to see and keep consistent here than spread over the modules that
raise them. Each message is written for the user: one sentence naming the problem and the
fix. Standard library only, like ``contract``: the QGIS process imports it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class Cancelled(Exception):
    """Raised by the engine when the caller's cancel check said stop (after cleaning up)."""


#: Kept outputs named in the message of a cancelled run; more are counted.
_NAMED_WHEN_CANCELLED = 10


class ScenesCancelled(Cancelled):
    """A run of many scenes cancelled midway: its message says which scenes were finished
    and kept (they are complete files) and how many were not written."""

    @classmethod
    def after(cls, kept: Sequence[Path], total: int) -> ScenesCancelled:
        if not kept:
            return cls(f"cancelled: none of the {total} scenes was finished; no output was written")
        names = ", ".join(str(path) for path in kept[:_NAMED_WHEN_CANCELLED])
        if len(kept) > _NAMED_WHEN_CANCELLED:
            names += f" and {len(kept) - _NAMED_WHEN_CANCELLED} more"
        rest = total - len(kept)
        return cls(f"cancelled: {len(kept)} of {total} scenes finished and kept ({names}); "
                   f"the other {rest} {'was' if rest == 1 else 'were'} not written")


class UsageError(ValueError):
    """Bad input found by the command line itself (exit code 2)."""


class RasterInputError(ValueError):
    """The input raster or the options chosen for it cannot be used (the message says why)."""


class DamagedRasterError(RasterInputError):
    """The input raster is truncated or corrupted (exit code 2); the message says where."""


class OutputPathError(ValueError):
    """The output cannot be written where asked (the message says why and what to do)."""


class OutputBusyError(ValueError):
    """Another live run is writing this output (exit code 2; the message names its process id)."""


class ModelFileError(ValueError):
    """The file is not a usable model: not one of ours, truncated, or mismatched."""


class MetadataError(ValueError):
    """One metadata field is missing, of the wrong type or out of range (the message names it)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"model metadata field {field!r}: {detail}")
        self.field = field


class ClusterError(ValueError):
    """The cluster asked for cannot be used (one sentence saying why and what to do)."""


class CatalogueError(ValueError):
    """The catalogue cannot be read or has an entry that does not make sense."""


class DownloadError(RuntimeError):
    """A download failed; the message is one sentence saying what happened."""


class DownloadCancelled(DownloadError):
    """The user cancelled a download."""
