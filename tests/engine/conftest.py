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
