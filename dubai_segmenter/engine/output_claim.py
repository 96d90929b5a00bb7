# SPDX-License-Identifier: GPL-2.0-or-later
"""One writer per output: a run claims its output paths before writing, and refuses busy ones.

Policy (README, "Reliability"): a second run asked to write an output that a live run is
writing is refused with exit code 2, naming the other run's process id; it never waits
and never touches the other run's files. Two runs writing the same path used to delete
or mix each other's results (a cancelled run's clean-up removed the other's finished
raster; two staggered runs left the raster of one and the polygons of the other).

How: a hidden claim file ``.NAME.claim`` beside the output, locked with ``flock``. The
kernel drops the lock when its process dies, even by SIGKILL, so a claim can never be
left stale; the file's content (JSON) says who holds it and which file, if any, was at the
output path when the claim was taken, so the QGIS plugin, after killing the engine, can
remove exactly what that run published and nothing another run did. On systems without
``fcntl`` (Windows) the claim is the file itself, created exclusively, and a claim whose
process is gone is taken over.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from dubai_segmenter.engine.errors import OutputBusyError
from dubai_segmenter.engine.temporary_names import process_alive, remove_leftovers

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def claim_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.claim")


def read_claim(output: str | os.PathLike) -> dict | None:
    """The content of ``output``'s claim file ({"pid", "inode"}), or None without a readable one."""
    try:
        data = json.loads(claim_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _busy(output: Path, holder: dict | None) -> OutputBusyError:
    who = f"process {holder['pid']}" if holder else "another process"
    return OutputBusyError(
        f"output {output} is being written by another dubai_segmenter run ({who}); "
        "wait for it to finish or cancel it, or choose another output path"
    )


class _Claim:
    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = claim_path(output)
        self._fd: int | None = None

    def take(self) -> None:
        content = json.dumps({"pid": os.getpid(), "inode": _inode(self.output)}).encode()
        if fcntl is None:  # pragma: no cover - Windows
            self._take_exclusive(content)
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(self.output, read_claim(self.output)) from None
            # The holder before us may have removed the file between our open and lock:
            # then we hold a lock on a name nobody else sees; try again.
            if _inode(self.path) != os.fstat(fd).st_ino:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, content)
            self._fd = fd
            return

    def _take_exclusive(self, content: bytes) -> None:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                holder = read_claim(self.output)
                if holder and process_alive(holder["pid"]):
                    raise _busy(self.output, holder) from None
                self.path.unlink(missing_ok=True)
                continue
            os.write(fd, content)
            self._fd = fd
            return
        raise _busy(self.output, read_claim(self.output))

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked: nobody can take a dying claim
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def claimed(outputs: Sequence[str | os.PathLike | None]) -> Iterator[None]:
    """Hold the claim on every output for the ``with`` block; OutputBusyError if one is busy.

    Taking a claim also removes the leftovers of dead writers in the output's folder.
    """
    claims: list[_Claim] = []
    try:
        for output in outputs:
            if output is None:
                continue
            claim = _Claim(Path(output))
            claim.take()
            claims.append(claim)
            remove_leftovers(claim.output.parent if str(claim.output.parent) else Path("."))
        yield
    finally:
        for claim in reversed(claims):
            claim.release()
