# SPDX-License-Identifier: GPL-2.0-or-later
"""Training, evaluation and export of the Dubai land-cover model (never imported by the plugin)."""
