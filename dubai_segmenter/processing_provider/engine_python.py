# SPDX-License-Identifier: GPL-2.0-or-later
"""The engine's interpreter as QGIS sees it: the plugin setting plus the child_process rules.

Shared by the dock (which also writes the setting) and every Processing algorithm, so the
toolbox, the modeler and qgis_process run the same Python as the panel.
"""
from __future__ import annotations

from qgis.core import QgsProcessingException, QgsSettings

from ..child_process.dependencies import check_dependencies
from ..child_process.interpreter import InterpreterError, resolve_interpreter

#: QgsSettings key of the interpreter chosen in the dock ("" = use the defaults).
SETTING_PYTHON = "dubai_segmenter/python"


def configured_python() -> str:
    return str(QgsSettings().value(SETTING_PYTHON, "", type=str) or "")


def set_configured_python(path: str) -> None:
    QgsSettings().setValue(SETTING_PYTHON, path)


def engine_python() -> str:
    """A checked interpreter path, or QgsProcessingException with the fix in its message.

    Processing shows a QgsProcessingException's text to the user as is (no traceback),
    which is what a missing package deserves.
    """
    try:
        interpreter = resolve_interpreter(configured_python())
        report = check_dependencies(interpreter)
    except InterpreterError as exc:
        raise QgsProcessingException(str(exc)) from exc
    if not report.ok:
        raise QgsProcessingException(report.problem())
    return interpreter.path
