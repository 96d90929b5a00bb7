# SPDX-License-Identifier: GPL-2.0-or-later
"""Seconds per training step of the native recipe in float32 and in mixed bfloat16, one process.

Two copies of the recipe's network (same weights, same loss and optimizer), one built under
each Keras dtype policy, take turns on the same batch of 8 crops of 256 pixels: both see the
same machine load, so `speed_vs_float32` is meaningful on a shared machine even when the
absolute seconds are not. Each is warmed up once (graph tracing) before timing. Whether the
mixed policy is the recipe's choice is decided by quality over whole runs (README,
"Training"), not here; this row only says what a step costs.
"""
from __future__ import annotations

import time

import numpy as np

STEPS, QUICK_STEPS = 12, 4


def run(quick: bool) -> list[dict[str, object]]:
    import keras

    from dubai_segmenter.engine.cpu_features import bf16_support
    from training.config import NATIVE
    from training.export import build_network
    from training.losses import build_loss
    from training.precision import POLICIES, use_policy

    rng = np.random.default_rng(0)
    crops = rng.random((NATIVE.batch_size, NATIVE.image_size, NATIVE.image_size, 3), dtype=np.float32)
    labels = rng.integers(0, 6, crops.shape[:3]).astype(np.uint8)
    networks = {}
    try:
        for policy in POLICIES:
            use_policy(policy)
            network = build_network(NATIVE, NATIVE.image_size)
            if networks:
                network.set_weights(next(iter(networks.values())).get_weights())
            network.compile(optimizer=keras.optimizers.Adam(1e-4), loss=build_loss(NATIVE, np.full(6, 1 / 6)))
            network.train_on_batch(crops, labels)  # traces the step
            networks[policy] = network
    finally:
        use_policy("float32")
    seconds: dict[str, list[float]] = {policy: [] for policy in networks}
    for _ in range(QUICK_STEPS if quick else STEPS):
        for policy, network in networks.items():
            started = time.perf_counter()
            network.train_on_batch(crops, labels)
            seconds[policy].append(time.perf_counter() - started)
    native, why = bf16_support()
    reference = float(np.median(seconds["float32"]))
    return [{"precision": policy, "seconds_per_step": round(float(np.median(times)), 2),
             "speed_vs_float32": round(reference / float(np.median(times)), 2),
             "cpu_bf16": f"{'yes' if native else 'no'}: {why}"}
            for policy, times in seconds.items()]
