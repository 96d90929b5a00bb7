# SPDX-License-Identifier: GPL-2.0-or-later
"""Every field of a model's metadata checked by type and range before anything is built.

Why a module of its own: a model file is shared and downloaded, so its header is
untrusted input. A wrong type (``"input_bands": 3.0``) used to surface as a Python
comparison error once the network was half built, and an absurd value (decoder filter
counts of 200000) made Keras allocate many gigabytes before anything failed. These checks
look only at the JSON, name the field and say what was expected; ``weight_count`` tells,
from the header alone, how many weight values the claimed architecture has, so a file
whose stored weights do not add up is refused before a single layer exists.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dubai_segmenter.engine.architectures import (
    ARCHITECTURES,
    IRV2_UNET,
    PIXEL_LINEAR,
    UNET_SMALL,
    check_tile_size,
    resolve_params,
)
from dubai_segmenter.engine.errors import MetadataError

#: Bounds far beyond any sensible model, tight enough that nothing built from them is huge.
MAX_INPUT_BANDS = 64
MAX_CLASSES = 255  # class ids are uint8 and 255 means "no data"
MAX_FILTERS = 4096
MAX_UNET_SMALL_LEVELS = 8
MAX_TILE = 4096
MAX_NAME_LENGTH = 200
REQUIRED_FIELDS = (
    "architecture", "architecture_params", "classes", "input_bands", "input_scale", "tile_size", "overlap",
)
OPTIONAL_FIELDS = ("resolution", "provenance")

#: InceptionResNetV2 encoder up to the U-Net's bridge (the layers ``build_model`` keeps):
#: weight values besides the first convolution, and that convolution's values per input
#: band (3x3 kernel, 32 filters, no bias). Checked against Keras in test_metadata_checks.
IRV2_ENCODER_VALUES_WITHOUT_STEM = 27_834_208
IRV2_STEM_VALUES_PER_BAND = 3 * 3 * 32
#: Channels of the encoder maps the decoder joins: skips at 1/2, 1/4, 1/8, bridge at 1/16.
IRV2_SKIP_CHANNELS = (32, 80, 256)
IRV2_BRIDGE_CHANNELS = 288


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _integer(data: Mapping[str, Any], field: str, low: int, high: int) -> int:
    value = data[field]
    if not _is_int(value):
        raise MetadataError(field, f"{value!r} is not a whole number; expected an integer from {low} to {high}")
    if not low <= value <= high:
        raise MetadataError(field, f"{value} is out of range; expected an integer from {low} to {high}")
    return value


def _filter_list(field: str, value: Any, lengths: tuple[int, int]) -> list[int]:
    low, high = lengths
    count = f"{low}" if low == high else f"{low} to {high}"
    expected = f"expected a list of {count} integers from 1 to {MAX_FILTERS}"
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise MetadataError(field, f"{value!r} is not a list of {count} values; {expected}")
    for item in value:
        if not _is_int(item) or not 1 <= item <= MAX_FILTERS:
            raise MetadataError(field, f"filter count {item!r} is not allowed; {expected}")
    return value


def _fraction(field: str, value: Any, closed: bool) -> None:
    high = "1" if closed else "below 1"
    if not _is_number(value) or not (0 <= value <= 1 if closed else 0 <= value < 1):
        raise MetadataError(field, f"{value!r} is not allowed; expected a number from 0 to {high}")


def check_params(architecture: str, params: Any) -> dict[str, Any]:
    """The architecture's parameters with defaults, each checked; MetadataError otherwise."""
    field = "architecture_params"
    if not isinstance(params, dict):
        raise MetadataError(field, f"{params!r} is not a JSON object of parameter names and values")
    try:
        resolved = resolve_params(architecture, params)
    except ValueError as error:
        raise MetadataError(field, str(error)) from None
    if architecture == IRV2_UNET:
        _filter_list(f"{field}.decoder_filters", resolved["decoder_filters"], (4, 4))
    elif architecture == UNET_SMALL:
        _filter_list(f"{field}.filters", resolved["filters"], (2, MAX_UNET_SMALL_LEVELS))
    if "dropout" in resolved:
        _fraction(f"{field}.dropout", resolved["dropout"], closed=False)
    if "bn_momentum" in resolved:
        _fraction(f"{field}.bn_momentum", resolved["bn_momentum"], closed=True)
    return resolved


def _check_classes(value: Any) -> int:
    field = "classes"
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_CLASSES:
        raise MetadataError(field, f"expected a list of 2 to {MAX_CLASSES} classes, got {_short(value)}")
    for position, entry in enumerate(value):
        if not isinstance(entry, dict) or set(entry) != {"id", "name", "color"}:
            raise MetadataError(field, f"entry {position} {_short(entry)} is not an object with id, name and color")
        if entry["id"] != position or not _is_int(entry["id"]):
            ids = [e.get("id") if isinstance(e, dict) else None for e in value]
            raise MetadataError(field, f"class ids must be 0..C-1 in order (C >= 2), got {_short(ids)}")
        name = entry["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise MetadataError(
                field, f"class {position} name {_short(name)} is not a text of 1 to {MAX_NAME_LENGTH} characters")
        color = entry["color"]
        if not isinstance(color, list) or len(color) != 3 or not all(_is_int(v) and 0 <= v <= 255 for v in color):
            raise MetadataError(field, f"class {name!r} colour {_short(color)} is not 3 integers 0..255")
    return len(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_metadata(data: Any) -> None:
    """Raise MetadataError for the first field of the metadata JSON object that cannot be right.

    Order matters: the architecture and its parameters first, since the tile-size rule
    depends on them; the overlap after the tile size.
    """
    if not isinstance(data, dict):
        raise MetadataError("metadata", f"expected a JSON object, got {_short(data)}")
    for field in REQUIRED_FIELDS:
        if field not in data:
            raise MetadataError(field, "is missing")
    unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise MetadataError(unknown[0], "is not a field of this model format: update dubai_segmenter")
    architecture = data["architecture"]
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise MetadataError(
            "architecture",
            f"unknown architecture {architecture!r} (known: {', '.join(ARCHITECTURES)}); "
            "the model was probably made by a newer version of dubai_segmenter: update it",
        )
    params = check_params(architecture, data["architecture_params"])
    _check_classes(data["classes"])
    _integer(data, "input_bands", 1, MAX_INPUT_BANDS)
    scale = data["input_scale"]
    if not _is_number(scale) or not scale > 0:
        raise MetadataError("input_scale", f"{scale!r} is not allowed; expected a number greater than 0")
    tile = data["tile_size"]
    if not _is_int(tile) or tile > MAX_TILE:
        raise MetadataError("tile_size", f"{tile!r} is not allowed; expected an integer up to {MAX_TILE}")
    try:
        check_tile_size(architecture, tile, params)
    except ValueError as error:
        raise MetadataError("tile_size", str(error)) from None
    overlap = data["overlap"]
    if not _is_int(overlap) or not 0 <= overlap < tile // 2:
        raise MetadataError(
            "overlap", f"overlap {overlap!r} must be a whole number >= 0 and less than half the tile ({tile})"
        )
    resolution = data.get("resolution")
    if resolution is not None and not (_is_number(resolution) and resolution > 0):
        raise MetadataError("resolution", f"{resolution!r} is not allowed; expected a number greater than 0, or null")
    if not isinstance(data.get("provenance", {}), dict):
        raise MetadataError("provenance", f"{_short(data['provenance'])} is not a JSON object")


def _conv_bn_relu_x2_values(inputs: int, filters: int) -> int:
    """Two 3x3 convolutions (with bias), each followed by BatchNorm (4 values per channel)."""
    return (9 * inputs * filters + filters + 4 * filters) + (9 * filters * filters + filters + 4 * filters)


def _decoder_block_values(inputs: int, skip: int, filters: int) -> int:
    """A 2x2 transposed convolution, then the skip concatenated and two conv-BN layers."""
    return 4 * inputs * filters + filters + _conv_bn_relu_x2_values(filters + skip, filters)


def weight_count(architecture: str, params: Mapping[str, Any], num_classes: int, input_bands: int) -> int:
    """Number of weight values (every tensor of ``build_model``'s model.weights) of this network.

    Independent of the tile size: every architecture here is fully convolutional.
    """
    params = resolve_params(architecture, params)
    head = lambda channels: channels * num_classes + num_classes  # noqa: E731 - 1x1 conv with bias
    if architecture == PIXEL_LINEAR:
        return head(input_bands)
    if architecture == UNET_SMALL:
        filters = list(params["filters"])
        total, channels = 0, input_bands
        for f in filters[:-1]:
            total += _conv_bn_relu_x2_values(channels, f)
            channels = f
        total += _conv_bn_relu_x2_values(channels, filters[-1])
        channels = filters[-1]
        for f in reversed(filters[:-1]):
            total += _decoder_block_values(channels, f, f)
            channels = f
        return total + head(channels)
    total = IRV2_ENCODER_VALUES_WITHOUT_STEM + IRV2_STEM_VALUES_PER_BAND * input_bands
    channels = IRV2_BRIDGE_CHANNELS
    skips = (*reversed(IRV2_SKIP_CHANNELS), input_bands)
    for skip, f in zip(skips, params["decoder_filters"]):
        total += _decoder_block_values(channels, skip, f)
        channels = f
    return total + head(channels)
