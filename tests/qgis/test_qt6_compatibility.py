# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS 4 (Qt 6) compatibility of the plugin's code, checked with the QGIS installed here.

`make qt6-check` (run by `make test`) checks the Qt side under PyQt6 without QGIS. What
it cannot check without a Qt 6 build of QGIS is the QGIS classes' enums: PyQt6 drops the
unscoped form (``QgsProcessing.TypeVectorPolygon``), so every enum member must be written
through its enum (``QgsFileWidget.StorageMode.SaveFile``) or come from qgis_compat.
This test resolves every ``Class.Member`` chain of the plugin against QGIS 3.22 and flags
members reached without their enum, and any ``exec_()``.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from tools.qt6_check import plugin_sources

REPO = Path(__file__).resolve().parents[2]
_MODULES = ("qgis.core", "qgis.gui", "qgis.PyQt.QtCore", "qgis.PyQt.QtGui", "qgis.PyQt.QtWidgets")


def _imported(tree: ast.Module) -> dict[str, object]:
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in _MODULES:
            module = importlib.import_module(node.module)
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def _unscoped_enums(source: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(source.read_text(), str(source))
    imported = _imported(tree)
    findings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "exec_":
            findings.append(f"{source.name}:{node.lineno}: exec_() (use exec())")
        if not isinstance(node, ast.Attribute) or not isinstance(node.value, ast.Name):
            continue
        owner = imported.get(node.value.id)
        if owner is None or not inspect.isclass(owner):
            continue
        value = getattr(owner, node.attr, None)
        if isinstance(value, int) and type(value) not in (int, bool) and type(value) is not owner:
            findings.append(f"{source.relative_to(root)}:{node.lineno}: {node.value.id}.{node.attr} "
                            f"(write {node.value.id}.{type(value).__name__}.{node.attr})")
    return findings


def test_every_qgis_and_qt_enum_is_fully_qualified():
    findings = [finding for source in plugin_sources() for finding in _unscoped_enums(source)]
    assert not findings, "\n".join(findings)


def test_the_check_finds_an_unscoped_enum(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("from qgis.core import QgsProcessing\nfrom qgis.PyQt.QtCore import Qt\n"
                   "A = QgsProcessing.TypeVectorPolygon\nB = Qt.AlignLeft\nC = Qt.AlignmentFlag.AlignLeft\n")
    found = sorted(_unscoped_enums(bad, tmp_path))
    assert len(found) == 2, found
    assert "QgsProcessing.SourceType.TypeVectorPolygon" in found[0] and "Qt.AlignmentFlag.AlignLeft" in found[1]
