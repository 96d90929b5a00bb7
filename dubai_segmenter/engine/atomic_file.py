# SPDX-License-Identifier: GPL-2.0-or-later
"""Write a file so that it only ever appears complete.

A failed or interrupted write must not leave a file at the final path that looks finished
(an analyst would load it). Written under a hidden name beside the target (same file
system, so the rename is atomic; named by ``temporary_names`` so a killed writer's
leftover is recognised) and given the umask's mode before the rename: some writers
(safetensors) create their file private (0600), and a shared model must be readable by
colleagues like every other file the engine writes.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from dubai_segmenter.engine.temporary_names import temporary_path


def current_umask() -> int:
    """The process's umask (reading it means setting it; set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a plain new file gets (0666 minus the umask).

    For files made by libraries that choose their own: safetensors (0600) and SQLite, hence
    GeoPackages (0644 whatever the umask, so a group-writable umask was ignored).
    """
    os.chmod(path, 0o666 & ~current_umask())


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes ``path`` on success and is removed on failure."""
    target = Path(path)
    temporary = temporary_path(target, suffix=target.suffix)
    try:
        yield temporary
        apply_umask(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
