# SPDX-License-Identifier: GPL-2.0-or-later
"""Model files with a known answer, shared by the engine tests (and importable elsewhere).

``paint`` turns a class-id map into an image in the class colours; the colour model
classifies such an image exactly, at every pixel and whatever the tiling, so a test of
tiling, blending or I/O can compare the engine's output with the ids it painted.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from dubai_segmenter.engine.architectures import IRV2_UNET, PIXEL_LINEAR, UNET_SMALL, build_model
from dubai_segmenter.engine.classes import DUBAI_CLASSES
from dubai_segmenter.engine.model_file import ModelMetadata, save_model

PALETTE = np.array([c.color for c in DUBAI_CLASSES], dtype=np.uint8)
INPUT_SCALE = 1 / 255
#: Logit gain of the colour model. The closest class colours (Vegetation and Water) are
#: 0.058 apart in squared distance (colours scaled to 0..1), so their logit gap is
#: 100 * 0.058 = 5.8: softmax above 0.99 on painted pixels, and far above the float16
#: rounding of the stored weights (< 0.3 logits).
COLOUR_SCALE = 100.0


def paint(class_ids: np.ndarray) -> np.ndarray:
    """(H, W) class ids 0..5 -> (H, W, 3) uint8 image in the DUBAI_CLASSES colours."""
    return PALETTE[np.asarray(class_ids)]


def colour_metadata(tile_size: int = 64, overlap: int = 16, **overrides) -> ModelMetadata:
    fields = dict(
        architecture=PIXEL_LINEAR,
        architecture_params={},
        classes=DUBAI_CLASSES,
        input_bands=3,
        input_scale=INPUT_SCALE,
        tile_size=tile_size,
        overlap=overlap,
        resolution=None,
        provenance={"recipe": "nearest class colour (hand-written weights)"},
    )
    fields.update(overrides)
    return ModelMetadata(**fields)


def colour_classifier_weights() -> list[np.ndarray]:
    """Kernel and bias of the nearest-colour classifier: logit_k = s (2 c_k.x - |c_k|^2).

    argmax_k of that is argmin_k |x - c_k|^2 (|x|^2 is the same for every k).
    """
    centres = PALETTE.astype(np.float64) / 255
    kernel = (2 * COLOUR_SCALE * centres.T)[None, None].astype(np.float32)  # (1, 1, 3, 6)
    bias = (-COLOUR_SCALE * (centres**2).sum(axis=1)).astype(np.float32)
    return [kernel, bias]


def save_colour_model(path: Path, tile_size: int = 64, overlap: int = 16) -> Path:
    model = build_model(PIXEL_LINEAR, {}, len(DUBAI_CLASSES), 3, tile_size)
    model.set_weights(colour_classifier_weights())
    save_model(path, model, colour_metadata(tile_size, overlap))
    return path


def save_small_unet(path: Path, seed: int = 0, tile_size: int = 64, overlap: int = 16) -> Path:
    """A unet_small with seeded random weights (BatchNorm statistics randomised too, so
    inference mode differs from the identity and a wrong weight order would show)."""
    model = build_model(UNET_SMALL, None, len(DUBAI_CLASSES), 3, tile_size)
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        shape, kind = tuple(variable.shape), variable.path.rsplit("/", 1)[-1]
        if kind == "moving_variance":
            weights.append(rng.uniform(0.5, 2.0, shape).astype(np.float32))
        elif kind == "gamma":
            weights.append(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        else:
            weights.append(rng.normal(0.0, 0.3, shape).astype(np.float32))
    model.set_weights(weights)
    metadata = colour_metadata(
        tile_size,
        overlap,
        architecture=UNET_SMALL,
        architecture_params={},
        provenance={"recipe": f"random weights, seed {seed}"},
    )
    save_model(path, model, metadata)
    return path


def irv2_metadata(tile_size: int = 256, overlap: int = 32) -> ModelMetadata:
    return colour_metadata(
        tile_size, overlap, architecture=IRV2_UNET, provenance={"recipe": "random initial weights"}
    )


#: Python code that makes every later ``import tensorflow`` (or keras) fail, as on a
#: machine where TensorFlow is not installed.
BLOCK_TENSORFLOW = """
import sys
class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is blocked: this test runs without TensorFlow")
        return None
sys.meta_path.insert(0, _NoTensorFlow())
"""


def run_without_tensorflow(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv where TensorFlow cannot be imported.

    Returns the finished process (stdout/stderr as text); the caller asserts on it.
    """
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TENSORFLOW + "\n" + code],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=root,
    )
