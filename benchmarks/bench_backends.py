# SPDX-License-Identifier: GPL-2.0-or-later
"""TensorFlow and ONNX Runtime side by side on the reference network, same tiles, one run.

The full InceptionResNetV2 U-Net (random weights: speed does not depend on them) is saved
as a model file and exported to ONNX (both sizes are reported: the limit is 130 MB).
For each intra-op thread count a child process opens the model with both backends
(TensorFlow fixes its thread pools when it starts, hence one process per count) and, for
batches of 1, 2 and 4 tiles, warms each up once and then alternates ONNX and TensorFlow
calls: on a machine shared with other jobs both backends see the same load, so the paired
``speed_vs_tf`` is meaningful even when absolute figures are not. Reported per row:
- seconds per tile and megapixels per second (best of the repeats);
- achieved GFLOP/s: the network's FLOPs per tile (2 x multiply-adds of every convolution
  and transposed convolution, counted from the Keras layers' shapes by
  ``bench_segment.convolution_flops``; batch norm, ReLU and softmax are a rounding error
  next to them) times tiles per second;
- that as a share of the float32 matrix-product peak measured once in this run
  (``common.matmul_peak_flops``, numpy on every core): a convolution network cannot beat
  a large matmul on the same CPU, so this says how much of the machine the backend uses
  (above 100 % means the machine was busier when the peak was measured);
- the time to open the model (build + load weights, or an ONNX session with its constant
  folding) and the peak memory of a separate child that opens it and runs one batch of 4.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_segment import convolution_flops, save_random_model
from benchmarks.common import matmul_peak_flops, measure_command

FULL_TILE, QUICK_TILE = 512, 256
BATCHES, QUICK_BATCHES = (1, 2, 4), (1, 2)
THREADS = (1, 2)
REPEATS, QUICK_REPEATS = 2, 1
_MODULE = "benchmarks.bench_backends"


def run(quick: bool) -> list[dict[str, object]]:
    from dubai_segmenter.engine.architectures import IRV2_UNET
    from dubai_segmenter.engine.model_file import load_keras_model
    from dubai_segmenter.engine.onnx_file import export_onnx

    tile = QUICK_TILE if quick else FULL_TILE
    batches = QUICK_BATCHES if quick else BATCHES
    repeats = QUICK_REPEATS if quick else REPEATS
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as folder:
        model_path = save_random_model(Path(folder) / "irv2_unet.safetensors", IRV2_UNET, tile, tile // 4)
        flops_per_tile = convolution_flops(load_keras_model(model_path, tile))
        started = time.perf_counter()
        onnx_path = export_onnx(model_path, Path(folder) / "irv2_unet.onnx")
        export_seconds = time.perf_counter() - started
        print(
            f"IRV2 U-Net at tile {tile}: {flops_per_tile / 1e9:.1f} GFLOP per tile; model file "
            f"{model_path.stat().st_size / 1e6:.1f} MB, ONNX {onnx_path.stat().st_size / 1e6:.1f} MB "
            f"(export {export_seconds:.0f} s)",
            flush=True,
        )
        peak = matmul_peak_flops()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        paths = {"onnx": onnx_path, "tf": model_path}
        memory = {  # each backend alone: open, then one call with the largest batch
            backend: measure_command(_child_command("memory", {backend: path}, 2, 0, [max(batches)]), env).peak_rss_mb
            for backend, path in paths.items()
        }
        rows: list[dict[str, object]] = []
        for threads in THREADS:
            measured = measure_command(_child_command("time", paths, threads, repeats, batches), env)
            timings = json.loads(measured.stdout.strip().splitlines()[-1])
            for batch in batches:
                tf_seconds = timings["best_seconds"]["tf"][str(batch)]
                for backend in ("onnx", "tf"):
                    per_tile = timings["best_seconds"][backend][str(batch)] / batch
                    achieved = flops_per_tile / per_tile
                    rows.append({
                        "benchmark": f"IRV2 U-Net tile {tile} ({flops_per_tile / 1e9:.0f} GFLOP/tile)",
                        "backend": backend,
                        "threads": threads,
                        "batch": batch,
                        "s_per_tile": round(per_tile, 3),
                        "MP_per_s": round(tile * tile / per_tile / 1e6, 3),
                        "GFLOP_per_s": round(achieved / 1e9, 1),
                        "of_matmul_peak_pct": round(100 * achieved / peak, 1),
                        "speed_vs_tf": round(tf_seconds / batch / per_tile, 2),
                        "open_s": round(timings["open_seconds"][backend], 1),
                        "peak_rss_mb": round(memory[backend]),
                    })
    return rows


def _child_command(mode: str, paths: dict[str, Path], threads: int, repeats: int, batches: list[int]) -> list[str]:
    backends = ",".join(f"{backend}={path}" for backend, path in paths.items())
    return [sys.executable, "-m", _MODULE, mode, backends, str(threads), str(repeats), ",".join(map(str, batches))]


def _time_backends(paths: dict[str, str], threads: int, repeats: int, batches: list[int]) -> dict:
    """Child process: open the model with each backend, then time the batches, alternating backends."""
    if "tf" in paths:
        import dubai_segmenter.engine  # noqa: F401 - loads the system SQLite before TensorFlow
        # isort: split
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
    from dubai_segmenter.engine.predictors import open_predictor

    predictors, open_seconds = {}, {}
    for backend, path in paths.items():
        started = time.perf_counter()
        predictors[backend] = open_predictor(path, backend=backend, threads=threads if backend == "onnx" else None)
        open_seconds[backend] = time.perf_counter() - started
    rng = np.random.default_rng(0)
    best: dict[str, dict[int, float]] = {backend: {} for backend in paths}
    for batch in batches:
        tile = next(iter(predictors.values())).tile_size
        tiles = rng.random((batch, tile, tile, 3), dtype=np.float32)
        for predictor in predictors.values():
            predictor.predict(tiles)  # warm-up: tracing, memory pools
        for _ in range(repeats):
            for backend, predictor in predictors.items():
                started = time.perf_counter()
                predictor.predict(tiles)
                seconds = time.perf_counter() - started
                best[backend][batch] = min(seconds, best[backend].get(batch, float("inf")))
    return {"open_seconds": open_seconds, "best_seconds": best}


if __name__ == "__main__":
    _mode, backend_paths, thread_count, repeat_count, batch_list = sys.argv[1:6]  # mode: for `ps` only
    result = _time_backends(
        dict(item.split("=", 1) for item in backend_paths.split(",")),
        int(thread_count),
        int(repeat_count),
        [int(b) for b in batch_list.split(",")],
    )
    print(json.dumps(result), flush=True)
