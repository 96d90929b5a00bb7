# SPDX-License-Identifier: GPL-2.0-or-later
"""Running the engine's command line in a child process.

Why a child process: TensorFlow inside QGIS crashes it (a SQLite symbol clash, see
``engine/system_sqlite.py``), holds gigabytes, and cannot be interrupted mid-tile. The plugin therefore
starts ``python -m dubai_segmenter ...`` with a configured interpreter and talks to it
through progress lines, exit codes and signals.

Nothing in this package imports QGIS or Qt: it is the same code for the dock's task, the
Processing algorithms and qgis_process, and it is unit-tested without QGIS. The QGIS
wrappers (settings, feedback, QgsTask) live in ``processing_provider`` and ``ui``.
"""
