# SPDX-License-Identifier: GPL-2.0-or-later
"""Session-wide model files for the engine tests (tiny, deterministic)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.helpers import save_colour_model, save_small_unet


@pytest.fixture(scope="session")
def colour_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pixel_linear model (DUBAI_CLASSES, RGB, scale 1/255, tile 64, overlap 16) that is the
    exact nearest-colour classifier: an image painted with ``helpers.paint`` is classified
    exactly at every pixel."""
    return save_colour_model(tmp_path_factory.mktemp("models") / "colour.safetensors")


@pytest.fixture(scope="session")
def small_unet_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A unet_small model (filters 8/16/32) with seeded random weights, tile 64, overlap 16."""
    return save_small_unet(tmp_path_factory.mktemp("models") / "small_unet.safetensors")


@pytest.fixture(scope="session")
def irv2_model_256(tmp_path_factory: pytest.TempPathFactory):
    """The full reference network at tile 256 (random weights), saved once per session.

    Returns (keras model, path). Building it costs ~5 s of CPU: only tests that must see
    the real architecture use it.
    """
    from dubai_segmenter.engine.architectures import IRV2_UNET, build_model
    from dubai_segmenter.engine.model_file import save_model
    from tests.engine.helpers import irv2_metadata

    model = build_model(IRV2_UNET, None, 6, 3, 256)
    path = tmp_path_factory.mktemp("models") / "irv2.safetensors"
    save_model(path, model, irv2_metadata(256))
    return model, path
