"""TensorFlow and ONNX Runtime side by side on the reference network, same tiles, one run.

The full InceptionResNetV2 U-Net (random weights: speed does not depend on them) is saved
as a model file and exported to ONNX (both sizes are reported: the limit is 130 MB). Each
(backend, intra-op threads) pair then runs in its own child process, because TensorFlow
fixes its thread pools when it starts; the child times batches of 1, 2 and 4 tiles (one
warm-up call per batch shape, then the best of a few calls) and reports:
- seconds per tile and megapixels per second;
- achieved GFLOP/s: the network's FLOPs per tile (2 x multiply-adds of every convolution
  and transposed convolution, counted from the Keras layers' shapes; batch norm, ReLU and
  softmax are a rounding error next to them) times tiles per second;
- that as a share of the float32 matrix-product peak measured in this run
  (``common.matmul_peak_flops``, numpy on every core): a convolution network cannot beat
  a large matmul on the same CPU, so this says how much of the machine the backend uses;
- the time to open the model (build + load weights, or ONNX session with its constant
  folding) and the child's peak memory.
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
        rows: list[dict[str, object]] = []
        for backend, path in (("onnx", onnx_path), ("tf", model_path)):
            for threads in THREADS:
                measured = measure_command(
                    [sys.executable, "-m", _MODULE, str(path), backend, str(threads), str(repeats),
                     ",".join(map(str, batches))],
                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                )
                timings = json.loads(measured.stdout.strip().splitlines()[-1])
                for batch, seconds in timings["best_seconds"].items():
                    per_tile = seconds / int(batch)
                    achieved = flops_per_tile / per_tile
                    rows.append({
                        "benchmark": f"IRV2 U-Net tile {tile} ({flops_per_tile / 1e9:.0f} GFLOP/tile)",
                        "backend": backend,
                        "threads": threads,
                        "batch": int(batch),
                        "s_per_tile": round(per_tile, 3),
                        "MP_per_s": round(tile * tile / per_tile / 1e6, 3),
                        "GFLOP_per_s": round(achieved / 1e9, 1),
                        "of_matmul_peak_pct": round(100 * achieved / peak, 1),
                        "open_s": round(timings["open_seconds"], 1),
                        "peak_rss_mb": round(measured.peak_rss_mb),
                    })
    return rows


def _time_backend(path: str, backend: str, threads: int, repeats: int, batches: list[int]) -> dict:
    """Child process: open the model with this backend and thread count, time each batch size."""
    if backend == "tf":
        import ctypes

        ctypes.CDLL("libsqlite3.so.0", mode=ctypes.RTLD_GLOBAL)  # before TensorFlow (ENVIRONMENT.md)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
    from dubai_segmenter.engine.predictors import open_predictor

    started = time.perf_counter()
    predictor = open_predictor(path, backend=backend, threads=threads if backend == "onnx" else None)
    open_seconds = time.perf_counter() - started
    rng = np.random.default_rng(0)
    best: dict[int, float] = {}
    for batch in batches:
        tiles = rng.random((batch, predictor.tile_size, predictor.tile_size, 3), dtype=np.float32)
        predictor.predict(tiles)  # warm-up: tracing, memory pools
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            predictor.predict(tiles)
            times.append(time.perf_counter() - started)
        best[batch] = min(times)
    return {"open_seconds": open_seconds, "best_seconds": best}


if __name__ == "__main__":
    model, backend_name, thread_count, repeat_count, batch_list = sys.argv[1:6]
    result = _time_backend(model, backend_name, int(thread_count), int(repeat_count),
                           [int(b) for b in batch_list.split(",")])
    print(json.dumps(result), flush=True)
