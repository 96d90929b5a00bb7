# SPDX-License-Identifier: GPL-2.0-or-later
"""Connecting to a cluster: a LocalCluster on this machine, or an existing Dask scheduler.

``local[:N]`` starts N single-threaded worker processes here (default: one per core);
``tcp://HOST:PORT`` joins a cluster someone started with ``dask scheduler`` and
``dask worker``, dask-jobqueue or the Dask Kubernetes operator. One thread per worker:
a worker runs one tile at a time and ONNX Runtime gets the host's cores / workers there.
"""
from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterator

from dubai_segmenter.engine.errors import ClusterError

#: Seconds to wait for a scheduler to answer, and for a cluster to have a worker.
CONNECT_TIMEOUT = 10


def parse_local(spec: str) -> int:
    """'local' -> cores here, 'local:N' -> N, else ClusterError."""
    name, _, count = spec.partition(":")
    if name != "local" or (count and not (count.isdigit() and int(count) > 0)):
        raise ClusterError(f"bad --cluster {spec!r}: use 'local' or 'local:N' with N workers, e.g. local:2")
    return int(count) if count else len(os.sched_getaffinity(0))


def _ignore_interrupts_plugin():
    """A WorkerPlugin for local workers (built on demand: importing this module needs no Dask)."""
    from distributed import WorkerPlugin

    class IgnoreInterrupts(WorkerPlugin):
        """Local workers share the terminal's process group, so Ctrl-C reaches them too; they
        ignore it and the client alone decides: it cancels the futures and closes the cluster."""

        name = "dubai-segmenter-ignore-sigint"
        idempotent = True

        def setup(self, worker) -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # worker processes run their event loop in the main thread

    return IgnoreInterrupts()


@contextlib.contextmanager
def connect(cluster: str | None = None, scheduler: str | None = None) -> Iterator:
    """A ``distributed.Client`` on a new LocalCluster (``cluster``) or on ``scheduler``; closed on exit.

    Raises ClusterError when the scheduler does not answer or has no worker.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise ClusterError(
            "Dask is not installed in this Python: pip install 'dask[distributed]' (or the engine's "
            "[distributed] extra) to run on a cluster"
        ) from error
    if (cluster is None) == (scheduler is None):
        raise ClusterError("give exactly one of a local cluster ('local[:N]') or a scheduler address")
    with contextlib.ExitStack() as stack:
        if cluster is not None:
            workers = parse_local(cluster)
            local = stack.enter_context(
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            )
            address = local
        else:
            address = scheduler
        where = scheduler or "the local cluster"
        try:
            client = stack.enter_context(Client(address, timeout=CONNECT_TIMEOUT))
        except (OSError, TimeoutError, ValueError) as error:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {where} within {CONNECT_TIMEOUT} s; "
                "check the address and that 'dask scheduler' is running there"
            ) from error
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise ClusterError(
                f"the Dask scheduler at {where} has no workers; start some with 'dask worker {where}'"
            ) from error
        if cluster is not None:
            client.register_plugin(_ignore_interrupts_plugin())
        yield client


def check_workers(client) -> None:
    """ClusterError unless every worker can import dubai_segmenter (the tasks and the model
    plugin are this package's code; a worker image needs ``pip install dubai-segmenter[onnx,distributed]``)."""
    import importlib.util

    found = client.run(lambda: importlib.util.find_spec("dubai_segmenter") is not None)  # sent by value
    missing = sorted(address for address, ok in found.items() if not ok)
    if missing:
        raise ClusterError(
            f"{len(missing)} of {len(found)} Dask workers (e.g. {missing[0]}) cannot import dubai_segmenter; "
            "install it there: pip install 'dubai-segmenter[onnx,distributed]'"
        )


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def threads_by_host(client) -> dict[str, int]:
    """ONNX Runtime threads for each host's workers: its cores shared evenly among them."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(_cores)
    on_host = Counter(info["host"] for info in workers.values())
    return {
        workers[address]["host"]: max(1, count // on_host[workers[address]["host"]])
        for address, count in cores.items() if address in workers
    }

