"""How the model runs on this CPU: PyTorch fp32 or bf16, or OpenVINO (f32 or bf16 inference).

Every backend runs the same model, so vectors from one are comparable with vectors from another
(an index built with one can be queried with any other).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Final

BACKENDS: Final = ("auto", "fp32", "bf16", "openvino-fp32", "openvino-bf16")
OPENVINO_BACKENDS: Final = frozenset({"openvino-fp32", "openvino-bf16"})
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
    """Map "auto" to what this machine should use; any other name is kept as asked.

    "auto": OpenVINO bf16 where the CPU does bf16 natively and openvino is installed, else
    PyTorch bf16 where the CPU does bf16, else PyTorch fp32.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        # Measured by bench/bench_embed_backends.py on a CPU with AMX: OpenVINO bf16 is the
        # fastest route with mean cosine to fp32 above 0.9999; torch bf16 is next. Without
        # native bf16 both would emulate bf16 and lose to fp32.
        if not cpu_supports_bf16():
            return "fp32"
        from embeddings.ov_backend import openvino_available

        return "openvino-bf16" if openvino_available() else "bf16"
    return backend


@contextlib.contextmanager
def precision(backend: str) -> Iterator[None]:
    """Context for one PyTorch forward pass: inference mode.

    The "bf16" backend casts the weights to bf16 once at load (see ``torch_dtype``) rather than
    autocasting every pass: bench/bench_embed_backends.py measured weights 1.65x and autocast
    1.08x fp32's speed in the same run on an AMX CPU, both with mean cosine to fp32 >= 0.99995.
    """
    import torch

    del backend  # every PyTorch backend runs the same way once its weights are in place
    with torch.inference_mode():
        yield


def torch_dtype(backend: str) -> str:
    """Weights dtype of a PyTorch backend: "bfloat16" for "bf16", else "float32"."""
    return "bfloat16" if backend == "bf16" else "float32"
