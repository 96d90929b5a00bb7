# SPDX-License-Identifier: GPL-2.0-or-later
"""engine/contract.py and engine/errors.py: the facts the command line and the plugin share, and
the engine's exceptions, each have one home, light enough for the QGIS process."""
from __future__ import annotations

import ast
import builtins
import subprocess
import sys
from pathlib import Path

from dubai_segmenter.engine import errors
from dubai_segmenter.engine.cli import build_parser
from dubai_segmenter.engine.contract import BACKENDS, TTA_MODES

ENGINE = Path(errors.__file__).parent


def test_the_contract_imports_nothing_heavy():
    """The QGIS process imports it (child_process, Processing): no numpy, GDAL or TensorFlow."""
    code = ("import sys, dubai_segmenter.engine.contract, dubai_segmenter.engine.errors, "
            "dubai_segmenter.child_process.runner, "
            "dubai_segmenter.child_process.engine_command;"
            "print(sorted(m for m in ('numpy', 'rasterio', 'osgeo', 'tensorflow', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _choices(flag: str) -> tuple[str, ...]:
    segment = build_parser()._subparsers._group_actions[0].choices["segment"]
    return tuple(next(a for a in segment._actions if flag in a.option_strings).choices)


def test_the_parser_offers_exactly_the_shared_backends_and_tta_modes():
    assert _choices("--backend") == BACKENDS
    assert _choices("--tta") == TTA_MODES


def test_engine_exceptions_are_defined_in_errors_py_only():
    """cli.main maps exceptions to exit codes: they are all to be found in one module."""
    exceptions = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type)
                  and issubclass(getattr(builtins, n), BaseException)} | set(vars(errors))
    elsewhere = [f"{path.relative_to(ENGINE)}: {node.name}" for path in sorted(ENGINE.rglob("*.py"))
                 if path.name != "errors.py" for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.ClassDef)
                 and any(isinstance(b, ast.Name) and b.id in exceptions for b in node.bases)]
    assert not elsewhere
