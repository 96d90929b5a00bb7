# SPDX-License-Identifier: GPL-2.0-or-later
"""Speed and memory benchmarks (``make bench``): measured, never asserted in unit tests.

``python -m benchmarks [--quick]`` runs every ``bench_*.py`` module's ``run`` in one
process and prints one report; the module contract is in ``common.py``.
"""
