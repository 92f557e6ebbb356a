"""Where and in what precision networks run: ``--device`` and ``--precision`` resolved to torch objects.

A leaf module: it imports nothing of pix2gan's, so training, inference and the benchmarks can all use it.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_precision("auto", torch.device("cpu")) is None
    True
"""

from __future__ import annotations

import torch

__all__ = ["PRECISIONS", "resolve_device", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` and ``cuda[:N]`` as given (CUDA must exist).

    Raises:
        ValueError: an unknown device name, or CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r} (use auto, cpu or cuda[:N])") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return device


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``--precision`` (None = fp32): ``auto`` is bf16 on a GPU that has it, else fp32.

    Example:
        >>> resolve_precision("bf16", torch.device("cpu"))
        torch.bfloat16
    """
    if name not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 support; use fp16")
    return _DTYPES[name]
