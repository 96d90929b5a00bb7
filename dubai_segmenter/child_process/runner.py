# SPDX-License-Identifier: GPL-2.0-or-later
"""Start the engine's command line, follow its progress lines, stop it on cancel.

The protocol (the engine's half is ``engine/cli/``; the exit codes are in
``engine/contract.py``): ``PROGRESS <percent> <message>`` lines on stdout, one
``ERROR: <message>`` line on stderr, exit code 0 success, 1 failure while running,
2 bad input, 3 cancelled; SIGTERM makes the engine stop at the next tile and remove its
temporary files. This module is the parent's half of that protocol.
"""
from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Callable

from ..engine.contract import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_OK
from ..engine.output_claim import claim_path, read_claim
from ..engine.temporary_names import remove, temporaries_of
from .interpreter import PLUGIN_DIR

#: Seconds the engine gets to stop after SIGTERM before it is killed.
TERMINATE_GRACE_SECONDS = 15.0
_POLL_SECONDS = 0.1
_STDERR_TAIL_LINES = 40

ProgressHandler = Callable[[float, str], None]
CancelCheck = Callable[[], bool]
LogHandler = Callable[[str], None]


class EngineError(RuntimeError):
    """The engine failed; ``str()`` is the message for the user, ``details`` its stderr tail."""

    def __init__(self, message: str, exit_code: int | None = None, details: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.details = details


class EngineInputError(EngineError):
    """The engine refused its input (exit code 2): the message names the problem and fix."""


class EngineCancelled(Exception):
    """The run was cancelled; the engine was stopped and no output was left behind."""


def parse_progress_line(line: str) -> tuple[float, str] | None:
    """``"PROGRESS 42.5 tile 3/8"`` -> ``(42.5, "tile 3/8")``; anything else -> None."""
    parts = line.rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or parts[0] != "PROGRESS":
        return None
    try:
        percent = float(parts[1])
    except ValueError:
        return None
    if percent != percent:  # NaN
        return None
    return min(100.0, max(0.0, percent)), (parts[2] if len(parts) > 2 else "")


def engine_environment(base: Mapping[str, str] | None = None, plugin_dir: Path = PLUGIN_DIR) -> dict[str, str]:
    """The child's environment: ``-m dubai_segmenter`` must resolve to *this* plugin.

    QGIS sets PYTHONHOME/PYTHONPATH for its own embedded Python (Windows and macOS
    bundles); handed to another interpreter they break it, so they are replaced, not
    extended.
    """
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["PYTHONPATH"] = str(plugin_dir.parent)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Tracebacks go to the plugin's run log (stderr lines); the user sees the last line only.
    env.setdefault("DUBAI_SEGMENTER_DEBUG", "1")
    return env


def _pump(stream, name: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    for line in iter(stream.readline, ""):
        lines.put((name, line.rstrip("\r\n")))
    stream.close()
    lines.put((name, None))


#: Files GDAL and SQLite keep beside an output (a published raster's legend, a GeoPackage's journal).
_SIDECAR_SUFFIXES = (".aux.xml", "-wal", "-shm", "-journal")


def _files_of(output: Path, pid: int) -> list[Path]:
    """What engine process ``pid`` leaves of ``output`` when it is killed, and nothing else.

    Its temporaries (files and the --resolution scratch folder, named with its process id
    by ``engine.temporary_names``, including the GeoPackage's and the companions GDAL and
    SQLite add to them) and, if it died holding the output's claim (``engine.output_claim``)
    after publishing, the output it published (a file at the path that was not there when it
    took the claim) with its sidecars, and the claim file itself. Files of any other run,
    finished or live, are never among them.
    """
    found = temporaries_of(output, pid)
    claim = read_claim(output)
    if claim is not None and claim["pid"] == pid:
        try:
            published = output.stat().st_ino != claim.get("inode")
        except OSError:
            published = False
        if published:
            found += [output] + [output.with_name(output.name + suffix) for suffix in _SIDECAR_SUFFIXES]
        found.append(claim_path(output))
    return [path for path in found if path.exists() or path.is_symlink()]


def _remove_files_of(outputs: Iterable[str | os.PathLike], pid: int) -> None:
    for output in outputs:
        for leftover in _files_of(Path(output), pid):
            remove(leftover)


def _stop(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM (the engine's clean cancel), then SIGKILL if it does not stop in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _failure(exit_code: int, stderr_tail: Sequence[str]) -> EngineError:
    errors = [line[len("ERROR:"):].strip() for line in stderr_tail if line.startswith("ERROR:")]
    details = "\n".join(stderr_tail)
    if errors:
        message = errors[-1]
    elif exit_code < 0:
        message = (
            f"The engine process was killed by signal {-exit_code} (out of memory? try a smaller "
            "tile or batch size)."
        )
    else:
        last = next((line for line in reversed(stderr_tail) if line.strip()), "no error message")
        message = f"The engine stopped with exit code {exit_code}: {last}"
    kind = EngineInputError if exit_code == EXIT_BAD_INPUT else EngineError
    return kind(message, exit_code, details)


def run_engine(
    python: str,
    arguments: Sequence[str],
    progress: ProgressHandler | None = None,
    cancel: CancelCheck | None = None,
    log: LogHandler | None = None,
    outputs: Sequence[str | os.PathLike] = (),
    plugin_dir: Path = PLUGIN_DIR,
    grace_seconds: float = TERMINATE_GRACE_SECONDS,
    log_stdout: bool = False,
) -> list[str]:
    """Run ``python *arguments`` to completion and return its stdout lines (minus progress).

    ``progress(percent, message)`` gets every progress line; ``cancel()`` is polled ten
    times a second and True stops the engine (SIGTERM, then SIGKILL after
    ``grace_seconds``) and raises EngineCancelled; ``log`` gets stderr lines as they come
    (and the other stdout lines too with ``log_stdout``, for chatty tools such as pip).
    ``outputs`` are the final paths the run writes: after a failure or a cancel the files
    this engine process left of them are removed (``_files_of``), so a stopped run never
    leaves a file that looks finished, even if the engine was killed, and never removes a
    file of another run.
    Raises EngineInputError (exit code 2) or EngineError with the engine's ERROR message.
    """
    try:
        process = subprocess.Popen(
            [python, *arguments],
            cwd=str(plugin_dir.parent),
            env=engine_environment(plugin_dir=plugin_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        raise EngineError(f"Cannot start the Python interpreter {python}: {exc.strerror or exc}") from exc

    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, "out", lines), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, "err", lines), daemon=True),
    ]
    for reader in readers:
        reader.start()
    stdout: list[str] = []
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    open_streams = 2
    cancelled = False
    try:
        while open_streams:
            if cancel is not None and cancel():
                cancelled = True
                _stop(process, grace_seconds)
                break
            try:
                name, line = lines.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
            elif name == "out":
                parsed = parse_progress_line(line)
                if parsed is None:
                    stdout.append(line)
                    if log_stdout and log is not None:
                        log(line)
                elif progress is not None:
                    progress(*parsed)
            else:
                stderr_tail.append(line)
                if log is not None:
                    log(line)
    except BaseException:
        # The caller's callback raised (or we were interrupted): never leave the child running.
        _stop(process, grace_seconds)
        _remove_files_of(outputs, process.pid)
        raise
    exit_code = process.wait()
    for reader in readers:
        reader.join(timeout=1.0)
    if cancelled or exit_code == EXIT_CANCELLED:
        _remove_files_of(outputs, process.pid)
        raise EngineCancelled("cancelled: the engine was stopped and no output was written")
    if exit_code != EXIT_OK:
        _remove_files_of(outputs, process.pid)
        raise _failure(exit_code, list(stderr_tail))
    return stdout
