# SPDX-License-Identifier: GPL-2.0-or-later
"""``python -m dubai_segmenter``: the engine's command line (see engine/cli/)."""
import os
import sys

from dubai_segmenter.engine.cli import main

code = main()
if code != 0:
    # A cancelled or failed run has cleaned up and said so; tearing down the interpreter with
    # TensorFlow loaded takes seconds more (4 s measured on a loaded machine), which a user
    # pressing Cancel waits for. Nothing is left to flush but the standard streams.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
