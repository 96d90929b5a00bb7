# SPDX-License-Identifier: GPL-2.0-or-later
"""BatchNorm re-estimation and resumable checkpoints, on networks small enough to reason about."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from training.batchnorm import mode_agreement, recalibrate_batchnorm
from training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


def _bn_model() -> keras.Model:
    inputs = keras.Input((4, 4, 2))
    return keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-6)(inputs))


def test_recalibration_averages_the_batch_statistics():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, scale, (3, 4, 4, 2)).astype(np.float32) for loc, scale in ((1, 1), (5, 2), (-2, 3))]
    model = _bn_model()
    assert recalibrate_batchnorm(model, iter(batches), count=10) == 3
    mean, variance = model.layers[-1].moving_mean.numpy(), model.layers[-1].moving_variance.numpy()
    np.testing.assert_allclose(mean, np.mean([b.mean(axis=(0, 1, 2)) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, np.mean([b.var(axis=(0, 1, 2)) for b in batches], axis=0), rtol=1e-4)
    assert model.layers[-1].momentum == 0.99   # put back


def test_recalibration_makes_inference_mode_agree_with_training_mode():
    from dubai_segmenter.engine.architectures import UNET_SMALL, build_model

    keras.utils.set_random_seed(1)
    model = build_model(UNET_SMALL, {"filters": [4, 8], "dropout": 0.3}, 6, 3, 16)
    # Inputs far from the initial moving statistics (mean 0, variance 1), as real pixels are.
    batch = (np.random.default_rng(2).random((4, 16, 16, 3)) * 40 + 100).astype(np.float32)
    before = mode_agreement(model, batch)
    recalibrate_batchnorm(model, iter([batch] * 3), count=3)
    after = mode_agreement(model, batch)
    assert after > 0.99 and after > before
    # mode_agreement itself must not move the statistics.
    kept = [w.numpy().copy() for w in model.weights]
    mode_agreement(model, batch * 3)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(kept, model.weights))


def test_checkpoint_round_trip_restores_weights_and_optimizer(tmp_path):
    def make():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        return model

    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    model = make()
    model.fit(x, y, epochs=3, verbose=0)
    for epoch in (1, 2, 3):
        save_checkpoint(tmp_path, model, {"epoch": epoch, "steps": 3})
    assert latest_checkpoint(tmp_path).name == "epoch-0003"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch-*")) == ["epoch-0002", "epoch-0003"]
    restored = make()
    state = load_checkpoint(latest_checkpoint(tmp_path), restored)
    assert state == {"epoch": 3, "steps": 3}
    assert int(restored.optimizer.iterations.numpy()) == 3
    for a, b in zip(model.optimizer.variables + model.weights, restored.optimizer.variables + restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Training on from both gives the same next step.
    model.train_on_batch(x, y)
    restored.train_on_batch(x, y)
    np.testing.assert_allclose(model.get_weights()[0], restored.get_weights()[0], rtol=1e-6)


def test_checkpoint_of_another_network_is_refused(tmp_path):
    inputs = keras.Input((3,))
    small = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    small.compile(optimizer="adam", loss="mse")
    small.fit(np.ones((2, 3)), np.zeros((2, 2)), verbose=0)
    folder = save_checkpoint(tmp_path, small, {"epoch": 1})
    other = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(inputs)))
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError):
        load_checkpoint(folder, other)
    assert json.loads((folder / "state.json").read_text())["epoch"] == 1
