# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin's half of the engine protocol: interpreter, dependency check, arguments,
progress lines, errors and cancel. Runs against a fake engine script (fake_engine.py),
so every case (failure, hang, cancel mid-run) is deterministic and fast."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dubai_segmenter.child_process.dependencies import PIP_REQUIREMENTS, check_dependencies
from dubai_segmenter.child_process.engine_command import (
    SegmentRequest,
    VectorizeOptions,
    VectorizeRequest,
    info_arguments,
)
from dubai_segmenter.child_process.interpreter import (
    ENV_VAR,
    PLUGIN_DIR,
    SOURCE_ENV,
    SOURCE_PATH,
    SOURCE_SETTING,
    SOURCE_VENV,
    Interpreter,
    InterpreterError,
    resolve_interpreter,
)
from dubai_segmenter.child_process.managed_environment import setup_steps
from dubai_segmenter.child_process.runner import (
    EngineCancelled,
    EngineError,
    EngineInputError,
    engine_environment,
    parse_progress_line,
    run_engine,
)

FAKE_ENGINE = str(Path(__file__).with_name("fake_engine.py"))
REPO = PLUGIN_DIR.parent


def _executable(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# --- progress lines -------------------------------------------------------------------

@pytest.mark.parametrize(
    "line, expected",
    [
        ("PROGRESS 42.5 tile 3/8\n", (42.5, "tile 3/8")),
        ("PROGRESS 100 done", (100.0, "done")),
        ("PROGRESS 7", (7.0, "")),
        ("PROGRESS 120 overshoot", (100.0, "overshoot")),
        ("PROGRESS nan x", None),
        ("PROGRESS abc tile", None),
        ("progress 5 lower case", None),
        ("model loaded", None),
    ],
)
def test_progress_lines_are_parsed_and_other_lines_ignored(line, expected):
    assert parse_progress_line(line) == expected


# --- argument lists -------------------------------------------------------------------

def test_segment_arguments_are_a_list_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    request = SegmentRequest(
        input_path="in put; rm -rf x.tif",
        model_path="/models/m.safetensors",
        out_raster="out/classes.tif",
        out_vector="out/polygons.gpkg",
        vectorize=VectorizeOptions(classes=("building", "water"), min_area=12.5, simplify=0.5),
        bands=(3, 2, 1),
        tile_size=256,
        overlap=32,
        batch_size=2,
        resolution=0.3,
    )
    assert request.arguments() == [
        "-m", "dubai_segmenter", "segment", str(tmp_path / "in put; rm -rf x.tif"),
        "--model", "/models/m.safetensors", "--out-raster", str(tmp_path / "out/classes.tif"),
        "--out-vector", str(tmp_path / "out/polygons.gpkg"), "--classes", "building,water",
        "--min-area", "12.5", "--simplify", "0.5", "--bands", "3,2,1", "--tile", "256",
        "--overlap", "32", "--batch", "2", "--resolution", "0.3", "--progress", "lines",
    ]
    assert request.outputs() == [str(tmp_path / "out/classes.tif"), str(tmp_path / "out/polygons.gpkg")]


def test_segment_arguments_leave_model_defaults_to_the_engine():
    args = SegmentRequest("/a.tif", "/m.safetensors", "/o.tif").arguments()
    assert args == ["-m", "dubai_segmenter", "segment", "/a.tif", "--model", "/m.safetensors",
                    "--out-raster", "/o.tif", "--progress", "lines"]


def test_a_dask_scheduler_is_passed_on_and_empty_means_this_computer():
    args = SegmentRequest("/a.tif", "/m.onnx", "/o.tif", scheduler="tcp://10.0.0.5:8786").arguments()
    assert args[-4:] == ["--scheduler", "tcp://10.0.0.5:8786", "--progress", "lines"]
    assert "--scheduler" not in SegmentRequest("/a.tif", "/m.onnx", "/o.tif", scheduler="").arguments()


def test_vectorize_and_info_arguments():
    request = VectorizeRequest("/c.tif", "/v.gpkg", VectorizeOptions(classes=("road",), min_area=0, simplify=1))
    assert request.arguments() == ["-m", "dubai_segmenter", "vectorize", "/c.tif", "--out-vector", "/v.gpkg",
                                   "--classes", "road", "--min-area", "0", "--simplify", "1", "--progress", "lines"]
    assert info_arguments("/m.safetensors") == ["-m", "dubai_segmenter", "info", "/m.safetensors", "--json"]
    with pytest.raises(ValueError, match="at least one class"):
        VectorizeOptions(classes=()).arguments()


# --- interpreter ----------------------------------------------------------------------

def test_interpreter_setting_wins_over_environment(tmp_path):
    configured = _executable(tmp_path / "configured" / "python")
    from_env = _executable(tmp_path / "env" / "python")
    chosen = resolve_interpreter(str(configured), {ENV_VAR: str(from_env)})
    assert chosen == Interpreter(str(configured), SOURCE_SETTING)
    assert resolve_interpreter("", {ENV_VAR: str(from_env)}) == Interpreter(str(from_env), SOURCE_ENV)


def test_checkout_venv_then_path_are_the_defaults(tmp_path):
    plugin_dir = tmp_path / "checkout" / "dubai_segmenter"
    plugin_dir.mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    on_path = _executable(bin_dir / "python3")
    assert resolve_interpreter(None, {"PATH": str(bin_dir)}, plugin_dir) == Interpreter(str(on_path), SOURCE_PATH)
    venv_python = _executable(tmp_path / "checkout" / ".venv" / "bin" / "python")
    assert resolve_interpreter(None, {"PATH": str(bin_dir)}, plugin_dir) == Interpreter(str(venv_python), SOURCE_VENV)


def test_this_checkout_defaults_to_its_venv():
    assert resolve_interpreter(None, {}).path == str(REPO / ".venv" / "bin" / "python")


def test_a_configured_interpreter_that_does_not_exist_is_an_error_not_a_fallback(tmp_path):
    missing = tmp_path / "no" / "python"
    with pytest.raises(InterpreterError) as error:
        resolve_interpreter(str(missing), {})
    assert str(missing) in str(error.value) and SOURCE_SETTING in str(error.value)
    with pytest.raises(InterpreterError, match=ENV_VAR):
        resolve_interpreter(None, {ENV_VAR: str(missing)})


def test_no_interpreter_anywhere_says_what_to_do(tmp_path):
    plugin_dir = tmp_path / "plain" / "dubai_segmenter"
    plugin_dir.mkdir(parents=True)
    with pytest.raises(InterpreterError, match="python3 is not on PATH"):
        resolve_interpreter(None, {"PATH": str(tmp_path / "empty")}, plugin_dir)


# --- dependencies ---------------------------------------------------------------------

def test_the_project_venv_has_every_dependency():
    report = check_dependencies(resolve_interpreter(None, {}))
    assert report.ok, report.problem()
    assert "tensorflow" in report.backends and report.problem() == ""


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Interpreter:
    """A real Python without any of the engine's packages (an isolated venv)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    return Interpreter(str(venv / "bin" / "python"), SOURCE_SETTING)


def test_a_python_without_the_packages_gets_the_exact_pip_command(bare_python):
    report = check_dependencies(bare_python)
    assert not report.ok
    assert set(report.missing_packages) == {"numpy", "rasterio", "shapely", "safetensors", "onnxruntime"}
    message = report.problem()
    assert "numpy, rasterio, shapely, safetensors, onnxruntime (or tensorflow)" in message
    assert (
        f'"{bare_python.path}" -m pip install --upgrade numpy==1.26.4 rasterio==1.4.4 shapely==2.2.0 '
        "safetensors==0.8.0 onnxruntime==1.32.0 attrs==26.1.0"
    ) in message


def test_a_file_that_is_not_python_is_reported(tmp_path):
    not_python = _executable(tmp_path / "python", "#!/bin/sh\necho 'I am not Python' >&2\nexit 1\n")
    with pytest.raises(InterpreterError, match="does not run as a Python interpreter.*I am not Python"):
        check_dependencies(Interpreter(str(not_python), SOURCE_SETTING))


def test_pip_pins_match_requirements_txt():
    pins = dict(
        line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines()
        if re.match(r"^[A-Za-z0-9_.-]+==", line)
    )
    for requirement in PIP_REQUIREMENTS.values():
        name, version = requirement.split("==")
        assert pins.get(name) == version, requirement


def test_the_managed_environment_is_made_with_venv_then_pip_and_the_pins(tmp_path):
    steps = setup_steps("/usr/bin/python3", tmp_path / "env")
    assert steps[0] == ("/usr/bin/python3", ["-m", "venv", str(tmp_path / "env")])
    python, arguments = steps[-1]
    assert python == str(tmp_path / "env" / "bin" / "python")
    assert arguments[:3] == ["-m", "pip", "install"] and "onnxruntime==1.32.0" in arguments
    assert not any(a.startswith("tensorflow") for a in arguments)  # 600 MB only when asked for
    training = setup_steps("/usr/bin/python3", tmp_path / "env", training=True)[-1][1]
    assert set(PIP_REQUIREMENTS.values()) <= set(training)


# --- running --------------------------------------------------------------------------

def test_environment_makes_the_child_import_this_plugin():
    env = engine_environment({"PYTHONHOME": "/qgis/python", "PYTHONPATH": "/qgis/lib", "HOME": "/h"})
    assert env["PYTHONPATH"] == str(REPO) and "PYTHONHOME" not in env and env["HOME"] == "/h"
    result = subprocess.run(
        [sys.executable, "-c", "import dubai_segmenter; print(dubai_segmenter.__file__)"],
        env=env, cwd="/", capture_output=True, text=True, check=True,
    )
    assert Path(result.stdout.strip()) == PLUGIN_DIR / "__init__.py"


def test_progress_lines_reach_the_callback_and_output_is_written(tmp_path):
    out = tmp_path / "out.tif"
    seen, logged = [], []
    stdout = run_engine(sys.executable, [FAKE_ENGINE, str(out), "--steps", "4"],
                        progress=lambda p, m: seen.append((p, m)), log=logged.append, outputs=[out])
    assert seen == [(25.0, "tile 1/4"), (50.0, "tile 2/4"), (75.0, "tile 3/4"), (100.0, "tile 4/4")]
    assert stdout == ["model: fake", "done"]
    assert logged == ["some warning on stderr"]
    assert out.read_text().count("tile") == 4


def test_bad_input_exit_code_gives_the_engine_message(tmp_path):
    out = tmp_path / "out.tif"
    with pytest.raises(EngineInputError) as error:
        run_engine(sys.executable, [FAKE_ENGINE, str(out), "--exit", "2", "--error", "input.tif has no CRS"])
    assert str(error.value) == "input.tif has no CRS" and error.value.exit_code == 2
    assert not out.exists()


def test_a_failure_without_error_line_names_the_exit_code_and_last_stderr_line(tmp_path):
    with pytest.raises(EngineError, match="exit code 1: some warning on stderr"):
        run_engine(sys.executable, [FAKE_ENGINE, str(tmp_path / "o.tif"), "--exit", "1"])


def test_an_interpreter_that_cannot_start_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="Cannot start the Python interpreter"):
        run_engine(str(tmp_path / "nothing"), ["-c", "pass"])


def _wait_until_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_cancel_stops_the_engine_and_leaves_no_output(tmp_path):
    out, pid_file = tmp_path / "out.tif", tmp_path / "pid"
    seen = []
    started = time.monotonic()
    with pytest.raises(EngineCancelled):
        run_engine(sys.executable, [FAKE_ENGINE, str(out), "--steps", "100", "--sleep", "0.1",
                                    "--pid-file", str(pid_file)],
                   progress=lambda p, m: seen.append(p), cancel=lambda: len(seen) >= 2, outputs=[out])
    assert time.monotonic() - started < 5
    assert _wait_until_gone(int(pid_file.read_text()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pid"]


def test_an_engine_that_ignores_sigterm_is_killed_and_its_file_removed(tmp_path):
    out, pid_file = tmp_path / "out.tif", tmp_path / "pid"
    seen = []
    with pytest.raises(EngineCancelled):
        run_engine(sys.executable, [FAKE_ENGINE, str(out), "--steps", "100", "--sleep", "0.1",
                                    "--ignore-term", "--pid-file", str(pid_file)],
                   progress=lambda p, m: seen.append(p), cancel=lambda: bool(seen), outputs=[out],
                   grace_seconds=0.5)
    assert _wait_until_gone(int(pid_file.read_text()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pid"]  # neither the file nor the temporary


def test_a_file_that_existed_before_the_run_is_not_removed_on_failure(tmp_path):
    out = tmp_path / "out.tif"
    out.write_text("yesterday's result")
    with pytest.raises(EngineError):
        run_engine(sys.executable, [FAKE_ENGINE, str(out), "--exit", "1"], outputs=[out])
    assert out.read_text() == "yesterday's result"


def test_an_exception_in_a_callback_stops_the_child(tmp_path):
    pid_file = tmp_path / "pid"

    def explode(percent, message):
        raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError, match="callback bug"):
        run_engine(sys.executable, [FAKE_ENGINE, str(tmp_path / "o.tif"), "--steps", "100", "--sleep", "0.1",
                                    "--pid-file", str(pid_file)], progress=explode)
    assert _wait_until_gone(int(pid_file.read_text()))
