# SPDX-License-Identifier: GPL-2.0-or-later
"""Does the chosen interpreter have what the engine needs? One quick child call says.

The most common trouble with deep-learning QGIS plugins is installing their dependencies;
a run that dies twenty seconds in with ``ModuleNotFoundError`` helps
nobody. So before a run the plugin asks the interpreter, in a fraction of a second, which
of the engine's packages it lacks and replies with the exact pip command.

TensorFlow and onnxruntime are only located (``find_spec``), not imported: importing
TensorFlow takes 5-10 s, which the run itself pays anyway. The light packages are
imported, because a broken install (numpy 2 under a numpy-1 build, say) fails there.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .interpreter import PLUGIN_DIR, Interpreter, InterpreterError
from .runner import engine_environment

#: Import name -> pip requirement, pinned as in requirements.txt (a test keeps them equal).
PIP_REQUIREMENTS: dict[str, str] = {
    "numpy": "numpy==1.26.4",
    "rasterio": "rasterio==1.4.4",
    "attrs": "attrs==26.1.0",
    "shapely": "shapely==2.2.0",
    "safetensors": "safetensors==0.8.0",
    "onnxruntime": "onnxruntime==1.32.0",
    "tensorflow": "tensorflow-cpu==2.21.0",
    "onnx": "onnx==1.23.2",
    "tf2onnx": "tf2onnx==1.17.0",
}
#: What runs a downloaded model (its ONNX export): ONNX Runtime takes 78 MB on disk.
RUNTIME_PACKAGES = ("numpy", "rasterio", "attrs", "shapely", "safetensors", "onnxruntime")
#: Added on request: TensorFlow (1.3 GB on disk) runs .safetensors models at any tile size and, with
#: onnx and tf2onnx, exports them to ONNX; training needs it too.
TRAINING_PACKAGES = ("tensorflow", "onnx", "tf2onnx")
#: Packages the engine imports whatever the backend.
REQUIRED_MODULES = ("numpy", "rasterio", "shapely", "safetensors")
#: One of these runs the network.
BACKEND_MODULES = ("tensorflow", "onnxruntime")
MINIMUM_PYTHON = (3, 9)
CHECK_TIMEOUT_SECONDS = 60

# Runs in the child. Prints one JSON object; must work on any Python 3.
_PROBE = f"""
import importlib, importlib.util, json, sys
report = {{"version": list(sys.version_info[:3]), "missing": [], "broken": {{}}, "backends": []}}
for name in {REQUIRED_MODULES!r}:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        if getattr(exc, "name", None) == name:
            report["missing"].append(name)
        else:
            report["broken"][name] = "%s: %s" % (type(exc).__name__, exc)
    except Exception as exc:
        report["broken"][name] = "%s: %s" % (type(exc).__name__, exc)
for name in {BACKEND_MODULES!r}:
    if importlib.util.find_spec(name) is not None:
        report["backends"].append(name)
print(json.dumps(report))
"""


@dataclass(frozen=True)
class DependencyReport:
    """What an interpreter lacks for the engine, and how to fix it."""

    interpreter: Interpreter
    python_version: tuple[int, ...]
    missing: tuple[str, ...] = ()
    broken: dict[str, str] = field(default_factory=dict)
    backends: tuple[str, ...] = ()

    @property
    def too_old(self) -> bool:
        return tuple(self.python_version[:2]) < MINIMUM_PYTHON

    @property
    def missing_packages(self) -> tuple[str, ...]:
        """Import names to install (ONNX Runtime, the small backend, when no backend is present)."""
        return self.missing + (() if self.backends else ("onnxruntime",))

    @property
    def ok(self) -> bool:
        return not (self.too_old or self.missing_packages or self.broken)

    def pip_command(self) -> str:
        """The command that installs what is missing or broken into this interpreter."""
        names = list(self.missing_packages) + [n for n in self.broken if n not in self.missing_packages]
        if "rasterio" in names and "attrs" not in names:
            names.append("attrs")  # rasterio's affine needs a newer attrs than some distributions ship
        requirements = " ".join(PIP_REQUIREMENTS.get(name, name) for name in names)
        return f'"{self.interpreter.path}" -m pip install --upgrade {requirements}'

    def problem(self) -> str:
        """A message naming what is wrong and the fix; empty when nothing is."""
        if self.ok:
            return ""
        version = ".".join(str(v) for v in self.python_version)
        if self.too_old:
            return (
                f"The engine needs Python {'.'.join(map(str, MINIMUM_PYTHON))} or newer, but "
                f"{self.interpreter} is Python {version}. Choose another Python in the Dubai "
                "Segmenter panel."
            )
        parts = []
        if self.missing_packages:
            listed = ", ".join(
                "onnxruntime (or tensorflow)" if name == "onnxruntime" else name for name in self.missing_packages
            )
            parts.append(f"The Python {self.interpreter} lacks packages the engine needs: {listed}.")
        for name, error in self.broken.items():
            parts.append(f"The package {name} is installed in {self.interpreter.path} but fails to import ({error}).")
        parts.append(f"Install them with:\n    {self.pip_command()}\n"
                     "or choose another Python in the Dubai Segmenter panel.")
        return "\n".join(parts)


# Keyed by the path as given, not its target: venvs share a symlinked binary but not packages.
_checked_ok: dict[tuple[str, float], DependencyReport] = {}


def check_dependencies(interpreter: Interpreter, plugin_dir: Path = PLUGIN_DIR) -> DependencyReport:
    """Ask ``interpreter`` what it lacks (a good answer is cached until the file changes).

    Raises InterpreterError when the interpreter cannot be run at all or is not a Python.
    """
    try:
        key = (os.path.abspath(interpreter.path), os.path.getmtime(interpreter.path))
    except OSError as exc:
        raise InterpreterError(f"Cannot use the Python interpreter {interpreter}: {exc.strerror or exc}") from exc
    if key in _checked_ok:
        return _checked_ok[key]
    try:
        result = subprocess.run(
            [interpreter.path, "-c", _PROBE],
            cwd=str(plugin_dir.parent),
            env=engine_environment(plugin_dir=plugin_dir),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError(f"Cannot run the Python interpreter {interpreter}: {exc}") from exc
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        output = (result.stderr or result.stdout).strip()[-500:] or f"exit code {result.returncode}"
        raise InterpreterError(
            f"{interpreter} does not run as a Python interpreter ({output}). Choose a Python 3 "
            "interpreter in the Dubai Segmenter panel."
        ) from None
    report = DependencyReport(
        interpreter=interpreter,
        python_version=tuple(data["version"]),
        missing=tuple(data["missing"]),
        broken=dict(data["broken"]),
        backends=tuple(data["backends"]),
    )
    if report.ok:
        _checked_ok[key] = report
    return report
