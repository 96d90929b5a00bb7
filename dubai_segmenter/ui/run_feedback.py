# SPDX-License-Identifier: GPL-2.0-or-later
"""Processing feedback that forwards messages to the dock across threads.

The algorithm runs in a QgsTask's thread; widgets may only be touched from the main
thread. Qt signals emitted here are queued to slots of the dock (a QObject living in the
main thread), so the message area and the progress bar update safely.
"""
from __future__ import annotations

from qgis.core import QgsProcessingFeedback
from qgis.PyQt.QtCore import pyqtSignal


class DockFeedback(QgsProcessingFeedback):
    """Emits ``message(text, is_error)`` for what the analyst should read."""

    message = pyqtSignal(str, bool)

    def pushInfo(self, info: str) -> None:
        super().pushInfo(info)
        self.message.emit(info, False)

    def reportError(self, error: str, fatalError: bool = False) -> None:
        super().reportError(error, fatalError)
        self.message.emit(error, True)
