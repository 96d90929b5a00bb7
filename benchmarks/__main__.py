# SPDX-License-Identifier: GPL-2.0-or-later
"""``python -m benchmarks [--quick] [--only NAME ...] [--json PATH]``: one report of every benchmark.

All modules run in this one process, after one measurement of the machine's matmul peak,
so every ratio in the report refers to the same machine state.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
import traceback
from itertools import groupby
from pathlib import Path

import benchmarks
from benchmarks.common import format_table, machine_summary, matmul_peak_flops


def _modules(only: list[str] | None) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
        names = [n for n in names if n in only]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer configurations (minutes)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these modules, e.g. bench_segment")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every row to this JSON file")
    args = parser.parse_args(argv)

    started = time.time()
    print(f"Benchmarks ({'quick' if args.quick else 'full'}) on {machine_summary()}", flush=True)
    print(f"float32 matmul peak ({4096}^2, numpy): {matmul_peak_flops() / 1e9:.0f} GFLOP/s", flush=True)
    report: dict[str, list[dict]] = {}
    for name in _modules(args.only):
        print(f"\nrunning {name} ...", flush=True)
        module_started = time.time()
        try:
            rows = importlib.import_module(f"benchmarks.{name}").run(args.quick)
        except Exception as error:  # one broken benchmark must not hide the others
            traceback.print_exc()
            rows = [{"benchmark": name, "note": f"failed: {type(error).__name__}: {error}"}]
        report[name] = rows
        print(f"{name} done in {time.time() - module_started:.0f} s", flush=True)

    print(f"\n===== Report ({time.time() - started:.0f} s) =====")
    for name, rows in report.items():
        print(f"\n[{name}]")
        for _, table in groupby(rows, key=lambda row: tuple(row)):
            print(format_table(list(table)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"matmul_peak_flops": matmul_peak_flops(), "results": report}, indent=2))
        print(f"\nrows written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
