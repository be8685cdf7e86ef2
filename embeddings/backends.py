"""How the model runs on this CPU: plain fp32, or bf16 autocast where the CPU does bf16 natively."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Final

BACKENDS: Final = ("auto", "fp32", "bf16")
# Either flag means bf16 matrix maths run in hardware; without them torch emulates bf16 and it is
# slower than fp32, so "auto" would lose.
_BF16_FLAGS: Final = frozenset({"amx_bf16", "avx512_bf16"})


def _cpu_flags(cpuinfo: Path) -> frozenset[str]:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            flags.update(value.split())
    return frozenset(flags)


@lru_cache(maxsize=4)
def cpu_supports_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU advertises native bf16 (AMX-BF16 or AVX512-BF16); False if unknown."""
    return bool(_cpu_flags(cpuinfo) & _BF16_FLAGS)


def resolve_backend(backend: str) -> str:
    """Map "auto" to what this machine should use; "fp32" and "bf16" are kept as asked."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        # Measured by bench/bench_embed_backends.py: bf16 autocast is ~2-3x faster than fp32 on a
        # CPU with AMX, with mean cosine to fp32 above 0.9999.
        return "bf16" if cpu_supports_bf16() else "fp32"
    return backend


@contextlib.contextmanager
def precision(backend: str) -> Iterator[None]:
    """Context for one forward pass: inference mode, plus bf16 autocast for the "bf16" backend.

    Autocast (rather than casting the weights to bf16) keeps layer norms and softmax in fp32:
    it measured both faster and closer to fp32 on this model.
    """
    import torch

    with torch.inference_mode():
        if backend == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield
