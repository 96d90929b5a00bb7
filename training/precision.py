# SPDX-License-Identifier: GPL-2.0-or-later
"""The arithmetic of training steps: float32, or bfloat16 where the CPU computes it natively.

Measured on this project's 2-core AVX512-BF16 CPU (README, "Training"): a native-recipe
step in Keras's `mixed_bfloat16` policy takes about 0.64x the time of float32. Weights,
optimizer state, BatchNorm statistics and the softmax head stay float32 (Keras's mixed
policy plus the head's own dtype), so model files are the same either way; only the
convolutions' products are rounded to bfloat16. Where the CPU lacks BF16 instructions the
products are emulated and slower, so "auto" keeps float32 there.
"""
from __future__ import annotations

import keras

from dubai_segmenter.engine.cpu_features import bf16_support
from training.config import Recipe

POLICIES = ("float32", "mixed_bfloat16")


def resolve_precision(recipe: Recipe, flags: frozenset[str] | None = None) -> tuple[str, str]:
    """(Keras dtype policy, why) for the recipe's `precision` on this CPU (or on `flags`)."""
    if recipe.precision in POLICIES:
        return recipe.precision, "asked for by the recipe"
    if recipe.precision != "auto":
        raise ValueError(f"unknown precision {recipe.precision!r}; choose auto or one of: {', '.join(POLICIES)}")
    native, why = bf16_support(flags)
    return ("mixed_bfloat16" if native else "float32"), why


def use_policy(policy: str) -> None:
    """Networks built from now on compute in `policy` (Keras's global dtype policy)."""
    keras.mixed_precision.set_global_policy(policy)
