# One entry point for setup, tests, packaging and the product's main jobs.
# Every target that runs Python depends on `setup`, which is idempotent: a second run
# only checks two stamp files.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Debian's interpreter: the only one that sees QGIS's Python bindings.
SYSTEM_PYTHON := /usr/bin/python3
# gdal-bin: gdal_polygonize.py, which `make bench` compares our vectorization with.
# xvfb, xauth: a virtual display for the real-window test and `make screenshots`.
APT_PACKAGES := python3-qgis qgis python3-venv gdal-bin xvfb xauth
APT_STAMP := $(VENV)/.apt-ok
PIP_STAMP := $(VENV)/.requirements-ok
# Headless Qt for tests and scripts.
export QT_QPA_PLATFORM := offscreen
export XDG_RUNTIME_DIR := /tmp/runtime-$(shell id -u)

.PHONY: setup test lint package demo bench bench-quick train levers evaluate clean qt6-check screenshots

setup: $(PIP_STAMP)

# Re-checked when the Makefile (and so the package list) changes; the check itself is fast.
$(APT_STAMP): Makefile
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing with apt-get:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@[ -d $(VENV) ] || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	@touch $@

$(PIP_STAMP): requirements.txt | $(APT_STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

test: setup qt6-check lint
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)
	$(PY) -m pytest

# Style and correctness checks (ruff, configured in pyproject.toml); `make test` runs it first,
# so CI fails on a lint error. `$(VENV)/bin/ruff check --fix .` applies the safe fixes.
lint: setup
	$(VENV)/bin/ruff check .

# Qt 5-only code in the plugin (QGIS 4 runs Qt 6), checked under PyQt6 in its own venv.
QT6_VENV := .venv-qt6
QT6_STAMP := $(QT6_VENV)/.requirements-ok
$(QT6_STAMP): requirements-qt6.txt | $(APT_STAMP)
	@[ -d $(QT6_VENV) ] || $(SYSTEM_PYTHON) -m venv $(QT6_VENV)
	$(QT6_VENV)/bin/python -m pip install -q --disable-pip-version-check --ignore-requires-python -r requirements-qt6.txt
	@touch $@
qt6-check: $(QT6_STAMP)
	$(QT6_VENV)/bin/python -m tools.qt6_check

# docs/dock.png and docs/qgis_window.png from QGIS in a virtual display (tests never write docs/).
screenshots: setup package
	$(PY) -m tools.screenshots --zip dist/dubai_segmenter.zip --out docs $(if $(MODEL),--model "$(MODEL)")

package: setup
	$(PY) -m tools.package_plugin dist/dubai_segmenter.zip

# The main job: segment the bundled sample scene with the newest model (or MODEL=...).
demo: setup
	$(PY) -m tools.demo $(if $(MODEL),--model "$(MODEL)")

# Speed and memory, measured in one run (never in timed unit tests). Takes a while on a
# 2-core CPU; bench-quick is a smaller run of the same measurements.
bench: setup
	@mkdir -p out
	$(PY) -m benchmarks --json out/bench.json

bench-quick: setup
	$(PY) -m benchmarks --quick

# Training: RECIPE=native|reference, HOURS of training in total (a rerun resumes),
# INIT_FROM=model.safetensors to start from a model file's weights.
RECIPE ?= native
HOURS ?= 2
RUN ?= runs/$(RECIPE)
train: setup
	$(PY) -m training.train --recipe $(RECIPE) --hours $(HOURS) --out $(RUN)$(if $(INIT_FROM), --init-from "$(INIT_FROM)")

# The issue-11 lever study (training/lever_study.py): 300-step continuations of one model, one
# recipe knob changed in each, then their comparison table; finished experiments are skipped.
LEVERS ?= ../runs/levers
levers: setup
	$(PY) -m training.lever_study --init-from "$(or $(INIT_FROM),models/dubai-native-v1.safetensors)" --out $(LEVERS)

# Scores a model file on the validation images: make evaluate MODEL=path (default: RUN's model).
evaluate: setup
	$(PY) -m training.evaluate $(or $(MODEL),$(RUN)/model.safetensors)

# int8 export + accuracy gate (training/int8_gate.py): writes MODEL.int8.onnx beside the
# model (a writable folder), scores it against float32 and records the verdict in it.
.PHONY: int8
int8: setup
	$(PY) -m training.int8_gate $(or $(MODEL),$(RUN)/model.safetensors) $(if $(CALIBRATION),--calibration "$(CALIBRATION)") $(if $(FP32_METRICS),--fp32-metrics "$(FP32_METRICS)")

clean:
	rm -rf dist .pytest_cache
