# SPDX-License-Identifier: GPL-2.0-or-later
"""Start QGIS desktop in a virtual display with the packaged plugin in a fresh profile.

Used by the real-window test and by ``make screenshots``: the plugin zip is unpacked into
a plugin folder on QGIS_PLUGINPATH, HOME points at an empty folder (so QGIS makes a new
profile, as on an analyst's first start), and tools/real_window_driver.py drives the
window. Debian's /usr/bin/qgis wrapper passes an option QGIS 3.22 rejects, so qgis.bin
is started directly.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import zipfile
from pathlib import Path

from dubai_segmenter.child_process.interpreter import ENV_VAR, resolve_interpreter

QGIS_BIN = "/usr/bin/qgis.bin"
DRIVER = Path(__file__).resolve().parent / "real_window_driver.py"
WINDOW_SIZE = (1600, 1000)


def missing_tools() -> list[str]:
    """What a real-window run needs and this machine lacks (empty: it can run)."""
    return [tool for tool in ("xvfb-run", "xauth", QGIS_BIN) if shutil.which(tool) is None]


def run_real_window(plugin_zip: Path, out_dir: Path, model: Path, scene: Path, cancel_scene: Path | None = None,
                    cancel_after: float = 7.0, run_timeout: float = 300, timeout: float = 480) -> dict:
    """Drive QGIS through the driver's steps; returns its observations (result.json).

    ``run_timeout`` bounds each run in the window, ``timeout`` the whole QGIS session.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plugins = out_dir / "plugins"
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(plugins)
    config = {
        "out_dir": str(out_dir), "model": str(model), "scene": str(scene),
        "cancel_scene": str(cancel_scene) if cancel_scene else None, "cancel_after": cancel_after,
        "window_size": list(WINDOW_SIZE), "run_timeout": run_timeout,
    }
    config_path = out_dir / "config.json"
    config_path.write_text(json.dumps(config))
    env = dict(os.environ, HOME=str(out_dir / "home"), QGIS_PLUGINPATH=str(plugins),
               DUBAI_SEGMENTER_WINDOW_CONFIG=str(config_path))
    env[ENV_VAR] = env.get(ENV_VAR) or resolve_interpreter(None, {}).path  # the zip is not in a checkout
    for inherited in ("QT_QPA_PLATFORM", "QGIS_CUSTOM_CONFIG_PATH", "QGIS_OPTIONS_PATH"):
        env.pop(inherited, None)  # a real (virtual) display and a fresh profile
    width, height = WINDOW_SIZE
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {width}x{height}x24", QGIS_BIN, "--noversioncheck", "--nologo",
               "--code", str(DRIVER)]
    # A session of its own: on a timeout, Xvfb and QGIS (children of xvfb-run) go too.
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n(killed after {timeout} s)"
    (out_dir / "qgis.log").write_text(output)
    result_path = out_dir / "result.json"
    if not result_path.exists():
        raise RuntimeError(f"QGIS exited with {process.returncode} without a result; see {out_dir / 'qgis.log'}:\n"
                           + output[-3000:])
    return json.loads(result_path.read_text())
