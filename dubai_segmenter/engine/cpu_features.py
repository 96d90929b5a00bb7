# SPDX-License-Identifier: GPL-2.0-or-later
"""Which instructions this CPU has for int8 inference and bfloat16 training, read at run time
(never assumed).

An int8 export only pays off where the CPU multiplies 8-bit integers natively: VNNI
(``vpdpbusd``, AVX512-VNNI or AVX-VNNI) or AMX-INT8. Without them ONNX Runtime emulates
the int8 products with AVX2 (``vpmaddubsw``), which is slower and can saturate, so
``open_predictor`` keeps float32 there. Machines of the same kind differ (one showed
AVX2 only, another AVX-512 with VNNI), hence the check on every run. Likewise bfloat16
training only pays off with AVX512-BF16 or AMX-BF16 (``training/precision.py``).
"""
from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
#: /proc/cpuinfo flag -> the name people know it by, in order of preference.
INT8_INSTRUCTIONS: dict[str, str] = {"amx_int8": "AMX-INT8", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI"}
BF16_INSTRUCTIONS: dict[str, str] = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The instruction-set flags of the first CPU in ``cpuinfo``, or None if they cannot be read
    (not Linux, or a sandbox without /proc)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def int8_support(flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """(whether int8 inference is fast here, the reason in words) for ``flags`` (default: this CPU's)."""
    return _support(INT8_INSTRUCTIONS, flags, "int8 would be emulated, slower")


def bf16_support(flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """(whether bfloat16 arithmetic is native here, the reason in words) for ``flags`` (default: this CPU's)."""
    return _support(BF16_INSTRUCTIONS, flags, "bfloat16 would be emulated, slower")


def _support(instructions: dict[str, str], flags: frozenset[str] | None, without: str) -> tuple[bool, str]:
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return False, f"the CPU's instruction sets cannot be read ({CPUINFO} is not readable)"
    found = [name for flag, name in instructions.items() if flag in flags]
    if found:
        return True, f"the CPU has {', '.join(found)}"
    return False, f"the CPU has none of {', '.join(instructions.values())} ({without})"
