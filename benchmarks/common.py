# SPDX-License-Identifier: GPL-2.0-or-later
"""What every benchmark shares: the machine's matmul peak, peak-RSS measurement, the report.

The benchmark module contract (``python -m benchmarks`` runs them all in one process):
each ``benchmarks/bench_<name>.py`` defines

    def run(quick: bool) -> list[dict[str, object]]

returning one dict per table row. The key ``"benchmark"`` names the row; the other keys
are its columns (rows of one module should share their keys: each module prints as one
table). Values are printed as they are, so round them. ``quick=True`` (``--quick``) must
finish in a few minutes: smaller inputs, fewer configurations, same columns. A module
that cannot run here returns rows with a ``"note"`` saying why instead of raising.

Peak memory must be measured in a fresh process: a child's ``ru_maxrss`` includes the
memory of the process that forked it (Linux carries the old memory map's high-water mark
across ``exec``), and the benchmark process holds a full model. ``measure_command`` runs
the command under a small launcher (``python -m benchmarks.common measure ...``) that
imports nothing heavy, so the figure is the command's own.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Side of the square float32 matrices whose product defines the machine's peak.
MATMUL_SIZE = 4096


@functools.cache
def matmul_peak_flops(repeats: int = 5) -> float:
    """Best FLOP/s of a large float32 matrix product (numpy/BLAS): what this CPU can do.

    Measured once per run (cached) and shared by every benchmark, so ratios against it
    compare like with like on the same (shared, noisy) machine.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    b = rng.random((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2.0 * MATMUL_SIZE**3 / best


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    stdout: str


def measure_command(command: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``command`` (an argument list) in a fresh process: wall time, its own peak RSS, stdout.

    Raises RuntimeError with the end of stderr if it fails.
    """
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.common", "measure", *command],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {result.stderr.strip()[-1500:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return Measured(report["seconds"], report["peak_rss_mb"], report["stdout"])


def _launch_and_measure(command: Sequence[str]) -> None:
    """The launcher: run ``command``, print its wall time, peak RSS (wait4) and stdout as JSON."""
    started = time.perf_counter()
    child = subprocess.Popen(list(command), stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"exit code {code}")
    print(json.dumps({"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": out}))


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """Rows (dicts) as an aligned plain-text table, columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def machine_summary() -> str:
    """CPU model, core count and memory: the context every figure depends on."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM"


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "measure":
        sys.exit("usage: python -m benchmarks.common measure COMMAND [ARGS...]")
    _launch_and_measure(sys.argv[2:])
