# SPDX-License-Identifier: GPL-2.0-or-later
"""Comments and docstrings that point a reader to a document name one the repository has.

A pointer to a file that only existed on the author's machine sends the next reader nowhere;
the code's own outputs (a training run's metrics.md, the int8 gate's gate.md) are the exception.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Documents the code writes at run time (named in the docstrings of what writes them).
WRITTEN_BY_THE_CODE = {"metrics.md", "gate.md"}


def test_every_document_named_in_the_code_is_in_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    names = {Path(path).name for path in tracked} | WRITTEN_BY_THE_CODE
    missing = sorted(
        f"{path}: {name}" for path in tracked if path.endswith(".py")
        for name in set(re.findall(r"[\w.-]+\.(?:md|rst)\b", (REPO / path).read_text(encoding="utf-8")))
        if name not in names
    )
    assert not missing
