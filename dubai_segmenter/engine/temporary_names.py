# SPDX-License-Identifier: GPL-2.0-or-later
"""The one place that names the engine's temporary files, so anyone can tell whose they are.

Every output is written under a hidden name beside it and renamed when complete. The name
carries the writer's process id: ``.NAME.partial-PID-TOKEN[EXT]`` (EXT keeps a suffix a
driver needs, e.g. ``.gpkg``; GDAL and SQLite add their own companions to it, such as
``.aux.xml`` or ``-wal``). From the name alone a later run can tell a leftover of a writer
that is gone (killed with SIGKILL, a power cut) from the file of a run still writing, and
the QGIS plugin can find exactly the files of the engine process it started.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

MARK = "partial"
_PATTERN = re.compile(rf"^\.(?P<owner>.+?)\.{MARK}-(?P<pid>\d+)(?:-[0-9a-f]+)?(?P<rest>(?:[.\-].*)?)$")


def temporary_path(final: str | os.PathLike, suffix: str = "", pid: int | None = None) -> Path:
    """A fresh hidden name beside ``final`` for this process (nothing is created)."""
    final = Path(final)
    pid = os.getpid() if pid is None else pid
    return final.with_name(f".{final.name}.{MARK}-{pid}-{secrets.token_hex(4)}{suffix}")


def create_temporary_file(final: str | os.PathLike, suffix: str = "") -> Path:
    """Create an empty temporary file beside ``final`` with the umask's mode (not mkstemp's 0600)."""
    while True:
        path = temporary_path(final, suffix)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue


def create_temporary_folder(final: str | os.PathLike) -> Path:
    """Create a hidden scratch folder beside ``final`` (e.g. for the --resolution processing grid)."""
    while True:
        path = temporary_path(final, ".d")
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:  # pragma: no cover
            continue


@contextlib.contextmanager
def temporary_folder(final: str | os.PathLike) -> Iterator[Path]:
    """A scratch folder beside ``final`` for the ``with`` block, removed with its content after."""
    folder = create_temporary_folder(final)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def owner_of(candidate: str | os.PathLike, final: str | os.PathLike) -> int | None:
    """The process id that wrote ``candidate`` as a temporary of ``final``, else None.

    Matches names made here and ``.STEM.partial-PID.gpkg``, the name earlier versions of the
    vectorizer used (their leftovers may still lie beside an output), with any companion
    GDAL or SQLite adds.
    """
    match = _PATTERN.match(Path(candidate).name)
    final = Path(final)
    if match is None or match["owner"] not in (final.name, final.stem):
        return None
    return int(match["pid"])


def writer_pid(candidate: str | os.PathLike) -> int | None:
    """The process id in any engine temporary's name (whatever output it is for), else None."""
    match = _PATTERN.match(Path(candidate).name)
    return int(match["pid"]) if match else None


def temporaries_of(final: str | os.PathLike, pid: int | None = None) -> list[Path]:
    """Temporaries of ``final`` in its folder (of process ``pid`` only, if given)."""
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        return []
    found = []
    for candidate in folder.iterdir():
        owner = owner_of(candidate, final)
        if owner is not None and (pid is None or owner == pid):
            found.append(candidate)
    return sorted(found)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:  # pragma: no cover - e.g. Windows without that pid
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): os.kill said it exists


def remove(path: Path) -> None:
    """Delete a temporary file or scratch folder; already gone is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Delete engine temporaries in ``folder`` whose writer process is gone; returns them.

    A live writer's files are never touched (its process id is in their names).
    """
    removed = []
    for candidate in Path(folder).iterdir():
        pid = writer_pid(candidate)
        if pid is not None and pid != os.getpid() and not process_alive(pid):
            remove(candidate)
            removed.append(candidate)
    return removed
