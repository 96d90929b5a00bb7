# SPDX-License-Identifier: GPL-2.0-or-later
"""A stand-in for the engine's command line, to test the plugin's side of the protocol.

Usage: fake_engine.py OUT --steps N --sleep S [--exit CODE --error MSG] [--ignore-term]

Speaks like ``python -m dubai_segmenter segment ... --progress lines``: PROGRESS lines on
stdout, an ``ERROR:`` line on stderr, exit codes 0/1/2/3; claims OUT and writes it at the
end under a temporary name renamed into place, both as the engine does (its own modules);
on SIGTERM removes the temporary file and exits 3 (with --ignore-term it keeps going, as a
hung engine would, having already published OUT).
"""
import argparse
import os
import signal
import sys
import time

from dubai_segmenter.engine.output_claim import claimed
from dubai_segmenter.engine.temporary_names import temporary_path

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--exit", type=int, default=0)
parser.add_argument("--error", default="")
parser.add_argument("--ignore-term", action="store_true")
parser.add_argument("--pid-file")
args = parser.parse_args()

if args.pid_file:
    with open(args.pid_file, "w") as f:
        f.write(str(os.getpid()))
partial = str(temporary_path(os.path.abspath(args.out)))
claim = claimed([args.out])
claim.__enter__()  # held until the process ends, as the engine holds it for the whole run


def stop(signum, frame):
    if os.path.exists(partial):
        os.remove(partial)
    print("ERROR: cancelled", file=sys.stderr, flush=True)
    claim.__exit__(None, None, None)
    sys.exit(3)


if args.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(args.out, "w").close()  # a hung engine that already created the final file
else:
    signal.signal(signal.SIGTERM, stop)

print("model: fake", flush=True)
print("some warning on stderr", file=sys.stderr, flush=True)
with open(partial, "w") as f:
    for step in range(args.steps):
        time.sleep(args.sleep)
        f.write(f"tile {step}\n")
        f.flush()
        print(f"PROGRESS {100.0 * (step + 1) / args.steps:.1f} tile {step + 1}/{args.steps}", flush=True)
if args.exit:
    os.remove(partial)
    if args.error:
        print(f"ERROR: {args.error}", file=sys.stderr, flush=True)
    claim.__exit__(None, None, None)
    sys.exit(args.exit)
os.replace(partial, args.out)
claim.__exit__(None, None, None)
print("done", flush=True)
