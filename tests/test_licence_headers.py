# SPDX-License-Identifier: GPL-2.0-or-later
"""Every tracked Python file states its licence in its first line (SPDX), before the docstring.

The plugin zip and the pip package carry single files out of the repository; the SPDX line
keeps the licence with each of them, in the form licence scanners read.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPDX_LINE = "# SPDX-License-Identifier: GPL-2.0-or-later"


def header_problem(text: str) -> str | None:
    """Why ``text`` lacks the licence line where it belongs (first line, or second after a shebang), or None."""
    lines = text.splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    if not lines or lines[0] != SPDX_LINE:
        return f"does not start with {SPDX_LINE!r}" + (" (after its shebang)" if text.startswith("#!") else "")
    return None


@pytest.mark.parametrize("text, ok", [
    (f"{SPDX_LINE}\n\"\"\"Docstring.\"\"\"\n", True),
    (f"#!/usr/bin/env python3\n{SPDX_LINE}\n\"\"\"Docstring.\"\"\"\n", True),
    (f"{SPDX_LINE}\n", True),
    ("\"\"\"Docstring.\"\"\"\n", False),
    (f"\"\"\"Docstring.\"\"\"\n{SPDX_LINE}\n", False),
    (f"{SPDX_LINE.replace('-or-later', '-only')}\n", False),
    (f"#!/usr/bin/env python3\n\n{SPDX_LINE}\n", False),
    ("", False),
])
def test_the_check_accepts_only_the_line_in_its_place(text, ok):
    assert (header_problem(text) is None) == ok


def test_every_tracked_python_file_starts_with_the_licence_line():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert len(tracked) > 100  # the listing worked
    problems = [f"{name}: {problem}" for name in tracked
                if (problem := header_problem((REPO / name).read_text(encoding="utf-8")))]
    assert not problems, "\n".join(problems)
