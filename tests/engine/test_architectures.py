# SPDX-License-Identifier: GPL-2.0-or-later
"""The networks are built in code with the shapes a user's tiles need."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from dubai_segmenter.engine.architectures import (
    IRV2_UNET,
    PIXEL_LINEAR,
    UNET_SMALL,
    build_model,
    check_tile_size,
)


def _pads(model: keras.Model) -> dict[str, tuple[int, int, int]]:
    """{pad layer name: (input size, output size, channels)} of the skip/bridge paddings."""
    return {
        layer.name: (layer.input.shape[1], layer.output.shape[1], layer.output.shape[3])
        for layer in model.layers
        if isinstance(layer, keras.layers.ZeroPadding2D)
    }


def test_reference_network_at_512_uses_the_reference_skips():
    model = build_model(IRV2_UNET, None, 6, 3, 512)
    assert model.output_shape == (None, 512, 512, 6)
    # The reference's skips (README, "Model files and backends"): `activation` (255),
    # `activation_3` (126), `activation_74` (61), bridge `activation_161` (30); those layers
    # have 32, 80, 256 and 288 channels.
    assert _pads(model) == {
        "bridge_pad": (30, 32, 288),
        "skip1_pad": (61, 64, 256),
        "skip2_pad": (126, 128, 80),
        "skip3_pad": (255, 256, 32),
    }
    for name in ("bridge_pad", "skip1_pad", "skip2_pad", "skip3_pad"):
        source = model.get_layer(name).input._keras_history.operation
        assert isinstance(source, keras.layers.Activation) and source.activation is keras.activations.relu
    # Cut at the bridge: the reference model is 36.8 M parameters (the whole
    # InceptionResNetV2 alone is 54.3 M).
    assert model.count_params() == 36_793_414
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.momentum == 0.9 for layer in bns)
    assert model.get_layer("head_dropout").rate == 0.3


def test_reference_network_builds_at_other_tile_sizes(irv2_model_256):
    model_256, _ = irv2_model_256
    model_768 = build_model(IRV2_UNET, None, 6, 3, 768)
    for model, tile in ((model_256, 256), (model_768, 768)):
        assert model.output_shape == (None, tile, tile, 6)
        assert model.count_params() == 36_793_414  # weights do not depend on the tile size
    # Valid convolutions leave 14 at 1/16 for 256 and 46 for 768: padding follows the shapes.
    assert _pads(model_256)["bridge_pad"][:2] == (14, 16)
    assert _pads(model_768)["bridge_pad"][:2] == (46, 48)


@pytest.mark.parametrize("tile", [250, 1056, 528, 224])
def test_reference_network_refuses_tile_sizes_it_cannot_run(tile):
    with pytest.raises(ValueError, match=r"multiple of 32 from 256 to 1024"):
        build_model(IRV2_UNET, None, 6, 3, tile)


def test_every_valid_tile_size_is_accepted_by_the_rule():
    for tile in range(256, 1025, 32):
        check_tile_size(IRV2_UNET, tile)


def test_small_unet_and_pixel_linear():
    small = build_model(UNET_SMALL, {"bn_momentum": 0.95}, 6, 4, 64)
    assert small.output_shape == (None, 64, 64, 6)
    assert 5_000 < small.count_params() < 100_000
    assert all(
        layer.momentum == 0.95 for layer in small.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    out = small(np.random.default_rng(0).random((2, 64, 64, 4), dtype=np.float32), training=False).numpy()
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="multiple of 4"):
        build_model(UNET_SMALL, None, 6, 3, 66)

    linear = build_model(PIXEL_LINEAR, None, 3, 2, 5)
    assert linear.output_shape == (None, 5, 5, 3)
    assert linear.count_params() == 2 * 3 + 3


def test_bad_names_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="known architectures: unet_inception_resnet_v2, unet_small, pixel_linear"):
        build_model("unet_resnet", None, 6, 3, 256)
    with pytest.raises(ValueError, match="unknown parameter.*filtres.*takes: filters"):
        build_model(UNET_SMALL, {"filtres": [8, 16]}, 6, 3, 64)
    with pytest.raises(ValueError, match="encoder_weights"):
        build_model(UNET_SMALL, None, 6, 3, 64, encoder_weights="imagenet")
