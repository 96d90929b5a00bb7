# SPDX-License-Identifier: GPL-2.0-or-later
"""Segmentation on a Dask ``distributed`` cluster, bit for bit the single-process result.

The only part of the engine that imports dask: ``plan`` (what the client decides once
per scene), ``chunk_task`` (one task: a chunk of output on a worker), ``worker`` (the
model, uploaded and opened once per worker), ``cluster`` (LocalCluster or a scheduler
address) and ``run`` (submitting, saving parts, assembling, many scenes).
"""
