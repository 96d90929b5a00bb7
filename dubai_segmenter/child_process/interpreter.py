# SPDX-License-Identifier: GPL-2.0-or-later
"""Which Python interpreter runs the engine.

QGIS's own Python is never used: inside QGIS ``sys.executable`` is the QGIS binary, and
the engine's dependencies (TensorFlow above all) must not be loaded into QGIS anyway. The
interpreter is, first match wins:

1. the plugin setting (chosen with the file picker in the dock),
2. the environment variable ``DUBAI_SEGMENTER_PYTHON``,
3. the checkout's ``.venv`` when the plugin folder sits in a clone of the repository
   (developers and `make setup` users need no configuration),
4. ``python3`` on PATH.

An explicit choice (1 or 2) that does not exist is an error, not a reason to fall back:
silently running another Python would hide the mistake behind a confusing "missing
package" message.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Environment variable naming the interpreter (used by qgis_process runs and CI).
ENV_VAR = "DUBAI_SEGMENTER_PYTHON"
#: The plugin folder (the ``dubai_segmenter`` package the child must import).
PLUGIN_DIR = Path(__file__).resolve().parent.parent

SOURCE_SETTING = "the plugin setting"
SOURCE_ENV = f"the environment variable {ENV_VAR}"
SOURCE_VENV = "the repository's .venv"
SOURCE_PATH = "python3 on PATH"


class InterpreterError(RuntimeError):
    """No usable Python interpreter: the message says where it came from and how to fix it."""


@dataclass(frozen=True)
class Interpreter:
    """An interpreter path and where it was found (shown in messages)."""

    path: str
    source: str

    def __str__(self) -> str:
        return f"{self.path} (from {self.source})"


def checkout_venv_python(plugin_dir: Path = PLUGIN_DIR) -> Path | None:
    """The ``.venv`` interpreter of the checkout holding ``plugin_dir``, if there is one."""
    root = plugin_dir.parent
    for candidate in (root / ".venv" / "bin" / "python", root / ".venv" / "Scripts" / "python.exe"):
        if candidate.is_file():
            return candidate
    return None


def _usable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def resolve_interpreter(
    configured: str | None = None,
    environ: Mapping[str, str] | None = None,
    plugin_dir: Path = PLUGIN_DIR,
) -> Interpreter:
    """The interpreter to run the engine with (see the module docstring for the order)."""
    environ = os.environ if environ is None else environ
    for value, source in ((configured, SOURCE_SETTING), (environ.get(ENV_VAR), SOURCE_ENV)):
        if value and value.strip():
            path = os.path.expanduser(value.strip())
            if not _usable(path):
                raise InterpreterError(
                    f"The Python interpreter set in {source} does not exist or is not executable: "
                    f"{path}. Choose a Python that has the engine's dependencies (the 'Python' "
                    f"field of the Dubai Segmenter panel) or set {ENV_VAR} to its full path."
                )
            return Interpreter(path, source)
    venv = checkout_venv_python(plugin_dir)
    if venv is not None:
        return Interpreter(str(venv), SOURCE_VENV)
    found = shutil.which("python3", path=environ.get("PATH")) or shutil.which("python", path=environ.get("PATH"))
    if found is None:
        raise InterpreterError(
            "No Python interpreter found: python3 is not on PATH and none is configured. Install "
            f"Python 3.9 or newer and choose it in the Dubai Segmenter panel, or set {ENV_VAR}."
        )
    return Interpreter(found, SOURCE_PATH)
