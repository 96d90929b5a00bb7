"""Write a file so that it only ever appears complete.

A failed or interrupted write must not leave a file at the final path that looks finished
(an analyst would load it). Written under a hidden name beside the target (same file
system, so the rename is atomic) with normal permissions, unlike ``tempfile.mkstemp``'s
0600, which would survive the rename.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes ``path`` on success and is removed on failure."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
