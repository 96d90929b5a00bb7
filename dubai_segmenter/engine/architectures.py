# SPDX-License-Identifier: GPL-2.0-or-later
"""The segmentation networks, built in code from a name and a few parameters.

A model file stores only weights and metadata (see ``model_file.py``); the network is
always rebuilt here, so loading a model never deserializes code. Three architectures:

- ``unet_inception_resnet_v2``: the reference network (README, "Model files and backends"), a U-Net whose encoder
  is Keras's InceptionResNetV2 cut at 1/16 of the input size;
- ``unet_small``: a small plain-convolution U-Net for fast training tests and experiments;
- ``pixel_linear``: one 1x1 convolution + softmax, a per-pixel linear classifier whose
  weights can be written by hand, so tests can know the right answer.

Keras is imported inside the builders only: the names, parameter defaults and tile-size
rules below are needed by code that must not import TensorFlow (reading model files).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

IRV2_UNET = "unet_inception_resnet_v2"
UNET_SMALL = "unet_small"
PIXEL_LINEAR = "pixel_linear"

#: Parameters each architecture takes, with their defaults. ``build_model`` refuses others,
#: so a typo in a training recipe fails loudly instead of being silently ignored.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    # Keras's BatchNormalization default momentum (0.99) leaves the moving statistics near
    # their initial values after the few hundred steps a CPU training run can afford, so
    # inference-mode predictions lag far behind training-mode ones (``training/batchnorm.py``).
    IRV2_UNET: {"decoder_filters": [512, 256, 128, 64], "dropout": 0.3, "bn_momentum": 0.9},
    UNET_SMALL: {"filters": [8, 16, 32], "dropout": 0.0, "bn_momentum": 0.9},
    PIXEL_LINEAR: {},
}
ARCHITECTURES: tuple[str, ...] = tuple(DEFAULT_PARAMS)

#: Tile sizes accepted by the InceptionResNetV2 U-Net. Below 256 the encoder's valid
#: convolutions leave too little at 1/16 to be worth it; above 1024 a tile no longer fits
#: comfortably in memory on a CPU machine.
IRV2_MIN_TILE, IRV2_MAX_TILE, IRV2_TILE_STEP = 256, 1024, 32


def resolve_params(architecture: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The architecture's defaults overridden by ``params``; unknown names are an error."""
    if architecture not in DEFAULT_PARAMS:
        raise ValueError(
            f"unknown architecture {architecture!r}; known architectures: {', '.join(ARCHITECTURES)}"
        )
    defaults = DEFAULT_PARAMS[architecture]
    given = dict(params or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for architecture {architecture!r}; "
            f"it takes: {', '.join(defaults) or 'no parameters'}"
        )
    return {**defaults, **given}


def tile_size_step(architecture: str, params: Mapping[str, Any] | None = None) -> int:
    """The number every tile size must be a multiple of (each pooling level halves it)."""
    resolved = resolve_params(architecture, params)
    if architecture == IRV2_UNET:
        return IRV2_TILE_STEP
    if architecture == UNET_SMALL:
        return 2 ** (len(resolved["filters"]) - 1)
    return 1


def check_tile_size(architecture: str, tile_size: int, params: Mapping[str, Any] | None = None) -> None:
    """Raise ValueError with the accepted sizes if ``tile_size`` cannot run in this network."""
    step = tile_size_step(architecture, params)
    if architecture == IRV2_UNET:
        low, high = IRV2_MIN_TILE, IRV2_MAX_TILE
    else:
        low, high = step, None
    valid = isinstance(tile_size, int) and tile_size >= low and tile_size % step == 0
    if high is not None:
        valid = valid and tile_size <= high
    if not valid:
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(
            f"tile size {tile_size!r} does not fit architecture {architecture!r}: use a multiple "
            f"of {step} {span} (e.g. {_nearest_valid(tile_size, step, low, high)})"
        )


def _nearest_valid(tile_size: Any, step: int, low: int, high: int | None) -> int:
    try:
        nearest = int(round(float(tile_size) / step)) * step
    except (TypeError, ValueError):
        nearest = low
    nearest = max(low, nearest)
    return min(high, nearest) if high is not None else nearest


def build_model(
    architecture: str,
    params: Mapping[str, Any] | None,
    num_classes: int,
    input_bands: int,
    tile_size: int,
    encoder_weights: str | None = None,
) -> keras.Model:
    """Build one of ``ARCHITECTURES`` for square tiles of ``tile_size`` pixels.

    The output is (tile, tile, num_classes) softmax probabilities. ``encoder_weights``
    (only for the InceptionResNetV2 U-Net) is how the encoder starts: None (random),
    "imagenet" (Keras downloads them; not reachable on an offline machine) or the path of a
    local no-top InceptionResNetV2 weights file. It is not an architecture parameter: a
    trained model's weights replace it, so loading a model always builds with None.
    """
    resolved = resolve_params(architecture, params)
    check_tile_size(architecture, tile_size, resolved)
    if num_classes < 2:
        raise ValueError(f"a segmentation model needs at least 2 classes, got {num_classes}")
    if input_bands < 1:
        raise ValueError(f"input_bands must be at least 1, got {input_bands}")
    if encoder_weights is not None and architecture != IRV2_UNET:
        raise ValueError(f"encoder_weights only applies to {IRV2_UNET!r}, not {architecture!r}")
    if architecture == IRV2_UNET:
        return _build_irv2_unet(resolved, num_classes, input_bands, tile_size, encoder_weights)
    if architecture == UNET_SMALL:
        return _build_unet_small(resolved, num_classes, input_bands, tile_size)
    return _build_pixel_linear(num_classes, input_bands, tile_size)


def irv2_skip_layer_names(encoder: keras.Model, tile_size: int) -> list[str]:
    """Names of the encoder layers feeding the U-Net: skips at 1/2, 1/4, 1/8, bridge at 1/16.

    Rule: group the encoder's ReLU activations by stride level, level = floor(log2(tile /
    output size)) (valid convolutions trim a few pixels, so a 1/8 map is 61 pixels at 512,
    not 64, and the floor still puts it at level 3). Within a level take the largest
    spatial size (the level's full resolution, before its valid convolutions trim it), and
    of the ReLUs at that size the last one in the network's layer order: the deepest
    feature computed at that resolution before the next stride-2 reduction. At a 512 tile
    this gives the layers the reference used (sizes 255, 126, 61 and 30); it depends only
    on layer types and shapes, not on Keras's automatic layer names, which change with the
    session state.
    """
    best: dict[int, tuple[int, str]] = {}
    for layer in encoder.layers:
        if not _is_relu(layer):
            continue
        size = layer.output.shape[1]
        level = int(math.floor(math.log2(tile_size / size)))
        if level not in (1, 2, 3, 4):
            continue
        if level not in best or size >= best[level][0]:
            best[level] = (size, layer.name)
    missing = [level for level in (1, 2, 3, 4) if level not in best]
    if missing:
        raise ValueError(f"encoder has no ReLU at stride level(s) {missing}: not an InceptionResNetV2?")
    return [best[level][1] for level in (1, 2, 3, 4)]


def _is_relu(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.relu


def _set_bn_momentum(model: keras.Model, momentum: float) -> None:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def _pad_to(x: keras.KerasTensor, size: int, name: str) -> keras.KerasTensor:
    """Zero-pad a (valid-convolution-trimmed) feature map to ``size``, centred.

    A valid convolution trims its input equally on both borders, so centring the map
    (the odd pixel goes after) keeps each feature roughly over the image pixels it was
    computed from.
    """
    import keras

    missing = size - x.shape[1]
    if missing < 0:
        raise ValueError(f"feature map {x.shape[1]} is larger than the decoder's {size}")
    if missing == 0:
        return x
    before = missing // 2
    return keras.layers.ZeroPadding2D(((before, missing - before), (before, missing - before)), name=name)(x)


def _decoder_block(
    x: keras.KerasTensor, skip: keras.KerasTensor, filters: int, momentum: float, name: str
) -> keras.KerasTensor:
    """Upsample x2, concatenate the skip, then two 3x3 convolution -> BN -> ReLU."""
    import keras

    x = keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    x = keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
    return _conv_bn_relu_x2(x, filters, momentum, name)


def _conv_bn_relu_x2(x: keras.KerasTensor, filters: int, momentum: float, name: str) -> keras.KerasTensor:
    import keras

    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def _head(x: keras.KerasTensor, num_classes: int, dropout: float) -> keras.KerasTensor:
    import keras

    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # float32 even under a mixed-precision policy (training/precision.py): probabilities and
    # the loss on them keep full precision; with the default float32 policy this changes nothing.
    return keras.layers.Conv2D(num_classes, 1, activation="softmax", name="head_softmax", dtype="float32")(x)


def _build_irv2_unet(
    params: Mapping[str, Any], num_classes: int, input_bands: int, tile_size: int, encoder_weights: str | None
) -> keras.Model:
    import keras

    filters: Sequence[int] = params["decoder_filters"]
    if len(filters) != 4:
        raise ValueError(f"decoder_filters needs 4 values (1/8, 1/4, 1/2, 1/1), got {list(filters)}")
    encoder = keras.applications.InceptionResNetV2(
        include_top=False, weights=encoder_weights, input_shape=(tile_size, tile_size, input_bands)
    )
    _set_bn_momentum(encoder, params["bn_momentum"])
    inputs = encoder.input
    half, quarter, eighth, bridge = (encoder.get_layer(n).output for n in irv2_skip_layer_names(encoder, tile_size))
    # Decoder from the bridge up: the input itself is the 1/1 skip.
    x = _pad_to(bridge, tile_size // 16, "bridge_pad")
    for level, (skip, f) in enumerate(zip((eighth, quarter, half, inputs), filters), start=1):
        skip = _pad_to(skip, x.shape[1] * 2, f"skip{level}_pad")
        x = _decoder_block(x, skip, f, params["bn_momentum"], f"decoder{level}")
    # Layers of InceptionResNetV2 past the bridge are not on any path to the output, so
    # the functional model leaves them (and their weights) out.
    return keras.Model(inputs, _head(x, num_classes, params["dropout"]), name=IRV2_UNET)


def _build_unet_small(
    params: Mapping[str, Any], num_classes: int, input_bands: int, tile_size: int
) -> keras.Model:
    import keras

    filters: Sequence[int] = params["filters"]
    if len(filters) < 2:
        raise ValueError(f"unet_small needs at least 2 filter counts, got {list(filters)}")
    inputs = keras.Input((tile_size, tile_size, input_bands), name="image")
    x, skips = inputs, []
    for level, f in enumerate(filters[:-1], start=1):
        x = _conv_bn_relu_x2(x, f, params["bn_momentum"], f"encoder{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"encoder{level}_pool")(x)
    x = _conv_bn_relu_x2(x, filters[-1], params["bn_momentum"], "bridge")
    for level, (skip, f) in enumerate(zip(reversed(skips), reversed(filters[:-1])), start=1):
        x = _decoder_block(x, skip, f, params["bn_momentum"], f"decoder{level}")
    return keras.Model(inputs, _head(x, num_classes, params["dropout"]), name=UNET_SMALL)


def _build_pixel_linear(num_classes: int, input_bands: int, tile_size: int) -> keras.Model:
    import keras

    inputs = keras.Input((tile_size, tile_size, input_bands), name="image")
    return keras.Model(inputs, _head(inputs, num_classes, 0.0), name=PIXEL_LINEAR)
