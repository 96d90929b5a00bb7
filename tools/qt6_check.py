# SPDX-License-Identifier: GPL-2.0-or-later
"""Fail on Qt5-only code in the plugin, so it keeps loading in QGIS 4 (Qt 6, PyQt6).

Runs in its own small environment (``make qt6-check`` creates ``.venv-qt6`` with PyQt6
from PyPI and the QGIS project's ``qgis-pyqt5to6`` migration tool); QGIS itself is not
needed. Three checks, each reporting file and line:

1. The migration tool, in report-only mode: it rewrites files in place, so it runs on a
   copy of the plugin and every change it would make is printed as a finding. Without a
   Qt 6 build of QGIS it checks the Qt parts (enums, imports, ``exec_``); QGIS enums are
   checked by tests/qgis/test_qt6_compatibility.py inside QGIS.
2. Every name imported from ``qgis.PyQt.*`` exists in PyQt6 (or in the few names QGIS's
   ``qgis.PyQt`` adds for Qt 5 compatibility), and every ``Name.Enum.Member`` chain on a
   Qt name resolves in PyQt6: an unscoped enum (``Qt.AlignLeft``) does not.
3. Every plugin file compiles.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import io
import shutil
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN_DIR = REPO / "dubai_segmenter"
#: Names QGIS's qgis.PyQt modules provide on Qt 6 although PyQt6 moved them (QtWidgets -> QtGui).
QGIS_SHIM_EXTRAS = {"QtWidgets": {"QAction", "QActionGroup", "QShortcut", "QFileSystemModel", "QUndoCommand"}}


def plugin_sources(plugin_dir: Path = PLUGIN_DIR) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z", "--", "*.py"], cwd=plugin_dir, check=True,
                            capture_output=True, text=True).stdout
    return sorted(plugin_dir / name for name in listed.split("\0") if name)


def migration_findings(sources: list[Path], plugin_dir: Path = PLUGIN_DIR) -> list[str]:
    """What ``pyqt5to6`` would change, as unified diffs (empty: nothing to migrate)."""
    with redirect_stdout(io.StringIO()):  # its import notes that QGIS classes are not available
        from pyqt5to6 import pyqt5to6

    with tempfile.TemporaryDirectory(prefix="qt6_check_") as scratch:
        copies = {}
        for source in sources:
            copy = Path(scratch) / source.relative_to(plugin_dir)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
            copies[source] = copy
        with redirect_stdout(io.StringIO()):  # its own notes, e.g. "QGIS classes not available"
            pyqt5to6.main([scratch])
        findings = []
        for source, copy in copies.items():
            before, after = source.read_text().splitlines(), copy.read_text().splitlines()
            if before != after:
                name = str(source.relative_to(REPO))
                findings.append("\n".join(difflib.unified_diff(before, after, name, f"{name} (Qt 6)", lineterm="")))
        return findings


def _qt_names(tree: ast.Module) -> dict[str, tuple[str, str]]:
    """Local name -> (PyQt module, name) for every ``from qgis.PyQt.QtX import name``."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qgis.PyQt."):
            module = node.module.split(".")[-1]
            for alias in node.names:
                names[alias.asname or alias.name] = (module, alias.name)
    return names


def _chain(node: ast.Attribute) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def pyqt6_findings(sources: list[Path]) -> list[str]:
    """Imports and ``Qt.Enum.Member`` chains that do not resolve in PyQt6."""
    findings = []
    for source in sources:
        name = source.relative_to(REPO)
        tree = ast.parse(source.read_text(), str(source))
        _mark_parents(tree)
        imported = _qt_names(tree)
        for module, attr in imported.values():
            qt_module = importlib.import_module(f"PyQt6.{module}")
            if not hasattr(qt_module, attr) and attr not in QGIS_SHIM_EXTRAS.get(module, set()):
                findings.append(f"{name}: {attr} is not in PyQt6.{module}")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or isinstance(getattr(node, "parent", None), ast.Attribute):
                continue
            parts = _chain(node)
            if not parts or parts[0] not in imported:
                continue
            module, attr = imported[parts[0]]
            value = getattr(importlib.import_module(f"PyQt6.{module}"), attr, None)
            if value is None:
                continue  # a shim extra, reported above if unknown
            for depth, part in enumerate(parts[1:], start=2):
                if not hasattr(value, part):
                    findings.append(f"{name}:{node.lineno}: {'.'.join(parts[:depth])} does not exist in PyQt6 "
                                    "(unscoped enum? write Class.EnumName.Member)")
                    break
                value = getattr(value, part)
    return findings


def _mark_parents(tree: ast.AST) -> None:
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent


def compile_findings(sources: list[Path]) -> list[str]:
    findings = []
    for source in sources:
        try:
            compile(source.read_text(), str(source), "exec")
        except SyntaxError as exc:
            findings.append(f"{source.relative_to(REPO)}:{exc.lineno}: {exc.msg}")
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    sources = plugin_sources()
    findings = compile_findings(sources) + pyqt6_findings(sources) + migration_findings(sources)
    for finding in findings:
        print(finding)
    print(f"Qt 6 check: {len(sources)} files, {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
