# SPDX-License-Identifier: GPL-2.0-or-later
"""A plugin-managed virtual environment with the engine's packages, for analysts without one.

Installing TensorFlow into QGIS's own Python is what breaks QGIS installs (numpy
versions, and TensorFlow must not be loaded into QGIS anyway). So the "Install packages"
button of the dock makes a separate virtual environment in the QGIS profile folder with
``python3 -m venv`` and installs the pinned packages into it with pip; the plugin then
runs the engine with that environment's Python. By default that is the runtime set with
ONNX Runtime (what runs the catalogue's ONNX exports); TensorFlow comes only when the user
asks for the training stack.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from .dependencies import PIP_REQUIREMENTS, RUNTIME_PACKAGES, TRAINING_PACKAGES
from .interpreter import InterpreterError
from .runner import EngineError, run_engine

LogHandler = Callable[[str], None]
CancelCheck = Callable[[], bool]


def environment_python(env_dir: Path) -> Path:
    """The interpreter inside a virtual environment (POSIX or Windows layout)."""
    windows = env_dir / "Scripts" / "python.exe"
    return windows if os.name == "nt" else env_dir / "bin" / "python"


def base_python() -> str:
    """The Python to create the environment with: python3 (or python) on PATH."""
    found = shutil.which("python3") or shutil.which("python")
    if found is None:
        raise InterpreterError(
            "No python3 on PATH to create an environment with: install Python 3.9 or newer, "
            "or choose a Python that has the engine's packages in the Dubai Segmenter panel."
        )
    return found


def setup_steps(base: str, env_dir: Path, training: bool = False) -> list[tuple[str, list[str]]]:
    """(interpreter, arguments) of each step: create the environment, then install the pins.

    The pins are the runtime set (ONNX Runtime runs the models the catalogue offers), plus
    TensorFlow and the exporter when ``training`` asks for them.
    """
    python = str(environment_python(env_dir))
    names = RUNTIME_PACKAGES + (TRAINING_PACKAGES if training else ())
    return [
        (base, ["-m", "venv", str(env_dir)]),
        (python, ["-m", "pip", "install", "--upgrade", "--disable-pip-version-check", "pip"]),
        (python, ["-m", "pip", "install", "--disable-pip-version-check", *(PIP_REQUIREMENTS[n] for n in names)]),
    ]


def create_environment(env_dir: Path, log: LogHandler, cancel: CancelCheck | None = None,
                       base: str | None = None, training: bool = False) -> str:
    """Create ``env_dir`` with the engine's packages and return its Python.

    Takes a minute or two (several with ``training``: TensorFlow takes 1.3 GB) and needs the
    package index; ``log`` gets pip's output as it comes and ``cancel()`` stops it. Raises
    InterpreterError naming the step that failed and pip's last words.
    """
    for python, arguments in setup_steps(base or base_python(), env_dir, training):
        log(" ".join([python, *arguments]))
        try:
            run_engine(python, arguments, cancel=cancel, log=log, log_stdout=True)
        except EngineError as exc:
            hint = " (on Debian/Ubuntu: apt install python3-venv)" if "venv" in arguments else ""
            raise InterpreterError(f"Setting up {env_dir} failed at '{' '.join(arguments[:3])}'{hint}: {exc}") from exc
    return str(environment_python(env_dir))
