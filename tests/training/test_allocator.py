# SPDX-License-Identifier: GPL-2.0-or-later
"""After TensorFlow's generator dataset has changed glibc's thresholds, freed buffers are
reused again instead of being mapped afresh (the cause of slow CPU training steps)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import resource, sys
import numpy as np
import tensorflow as tf
from training.allocator import keep_freed_memory

def faults_of_buffer_churn():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        np.ones(1 << 20, np.float32)  # 4 MB, allocated, written and freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

data = tf.data.Dataset.from_generator(lambda: iter([np.zeros(3, np.float32)]),
                                      output_signature=tf.TensorSpec((3,), tf.float32))
next(iter(data))  # starting the iterator applies TensorFlow's thresholds
patched = faults_of_buffer_churn()
assert keep_freed_memory()
faults_of_buffer_churn()  # the first buffer grows the heap once
print(patched, faults_of_buffer_churn())
"""


def test_freed_buffers_are_reused_after_the_generator_dataset_started():
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    patched, fixed = map(int, done.stdout.split()[-2:])
    assert patched > 5_000  # 40 buffers of 4 MB, each faulted in afresh (about 20,000 measured)
    assert fixed < patched / 10
