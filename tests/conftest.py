# SPDX-License-Identifier: GPL-2.0-or-later
"""Session-wide test set-up shared by the engine, training and QGIS tiers."""
import os
import tempfile

from dubai_segmenter.engine.system_sqlite import preload_system_sqlite

# Before any test imports TensorFlow: otherwise Qt's SQLite driver (at exitQgis()) and
# GDAL's GeoPackage driver bind to TensorFlow's SQLite and crash the session.
preload_system_sqlite()

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_runtime = os.path.join(tempfile.gettempdir(), f"runtime-{os.getuid()}")
os.makedirs(_runtime, mode=0o700, exist_ok=True)
os.environ.setdefault("XDG_RUNTIME_DIR", _runtime)
# Keep TensorFlow quiet and single-purpose in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- The suite must leave the checkout as it found it -------------------------------------
# Tests write to temporary folders only: a test that rewrites a tracked file (a screenshot
# in docs/) or leaves a file in the tree (a GDAL .aux.xml next to the sample scene, which
# would then end up in a zip built from a dirty tree) fails the whole run here.

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git_status() -> str | None:
    import subprocess

    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=_REPO,
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None  # None: not a git checkout


def pytest_sessionstart(session):
    session.config._git_status_before = _git_status()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_git_status_before", None)
    after = _git_status()
    if before is None or after is None or before == after:
        return
    changed = sorted(set(after.splitlines()) ^ set(before.splitlines()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "the test suite changed the checkout (git status --porcelain):\n  " + "\n  ".join(changed)
    if reporter is not None:
        reporter.write_sep("=", "FAILED: checkout modified", red=True)
        reporter.write_line(message)
    session.exitstatus = 1
