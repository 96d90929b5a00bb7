# SPDX-License-Identifier: GPL-2.0-or-later
"""engine/contract.py: the facts the command line and the plugin share stay light and in force."""
from __future__ import annotations

import subprocess
import sys

from dubai_segmenter.engine.cli import build_parser
from dubai_segmenter.engine.contract import BACKENDS, TTA_MODES


def test_the_contract_imports_nothing_heavy():
    """The QGIS process imports it (child_process, Processing): no numpy, GDAL or TensorFlow."""
    code = ("import sys, dubai_segmenter.engine.contract, dubai_segmenter.child_process.runner, "
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
