# SPDX-License-Identifier: GPL-2.0-or-later
"""The model on the workers: uploaded once, opened once per worker, found by its SHA-256.

A ``WorkerPlugin`` carries the ONNX file's bytes to every worker (also to workers that
join or are restarted later), so workers need no file system shared with the client.
At worker start it writes the file into the worker's local directory, checks its
SHA-256 and opens one ONNX Runtime session, kept for the worker's life. Tasks carry only
the SHA-256 and look the session up. Workers run ONNX Runtime only: TensorFlow is never
imported there.
"""
from __future__ import annotations

import os
from pathlib import Path

from distributed import WorkerPlugin, get_worker
from distributed.comm import get_address_host

from dubai_segmenter.engine.atomic_file import written_atomically
from dubai_segmenter.engine.onnx_file import file_sha256
from dubai_segmenter.engine.predictors import Predictor, open_predictor

PLUGIN_PREFIX = "dubai-segmenter-model-"


def plugin_name(sha256: str, tile_size: int) -> str:
    return f"{PLUGIN_PREFIX}{sha256[:16]}-{tile_size}"


class ModelPlugin(WorkerPlugin):
    """Puts one ONNX model on each worker and opens it there (see the module docstring).

    ``threads_by_host``: ONNX Runtime threads for workers on each host (cores / workers
    there, as the client saw them); a worker that joins on a new host uses all its cores.
    Idempotent: registering the same model again (another run) does not upload it again.
    """

    idempotent = True

    def __init__(self, onnx_path: str | os.PathLike, tile_size: int, threads_by_host: dict[str, int]) -> None:
        self.data = Path(onnx_path).read_bytes()
        self.sha256 = file_sha256(onnx_path)
        self.tile_size = tile_size
        self.threads_by_host = threads_by_host
        self.name = plugin_name(self.sha256, tile_size)
        self.predictor: Predictor | None = None

    def setup(self, worker) -> None:
        path = Path(worker.local_directory) / f"model-{self.sha256}.onnx"
        if not path.is_file() or file_sha256(path) != self.sha256:
            with written_atomically(path) as temporary:
                temporary.write_bytes(self.data)
        if file_sha256(path) != self.sha256:
            raise OSError(f"the model written to {path} does not match its SHA-256 {self.sha256}")
        self.data = b""  # the file on disk is enough now
        host = get_address_host(worker.address)
        threads = self.threads_by_host.get(host) or len(os.sched_getaffinity(0))
        self.predictor = open_predictor(path, self.tile_size, backend="onnx", threads=threads)


def worker_predictor(sha256: str, tile_size: int) -> Predictor:
    """The predictor the model plugin opened on this worker (inside a task)."""
    plugin = get_worker().plugins.get(plugin_name(sha256, tile_size))
    if plugin is None or plugin.predictor is None:
        raise RuntimeError(f"model {sha256[:16]} is not loaded on this worker; register ModelPlugin first")
    return plugin.predictor
