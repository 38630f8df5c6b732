"""Which device a scorer runs on: ``auto``, ``cpu`` or ``cuda[:N]``.

Only :func:`resolve_device` imports torch (to ask whether CUDA is there); a scorer that needs no
torch (``rules``, an ONNX file on the CPU) never calls it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from framescore.errors import UsageError

if TYPE_CHECKING:
    import torch

DEVICES = "auto, cpu or cuda"


def check_device(name: str) -> str:
    """``name`` when it is a device framescore knows (without asking the hardware)."""
    if name in ("auto", "cpu") or name == "cuda" or (name.startswith("cuda:")
                                                     and name[5:].isdigit()):
        return name
    raise UsageError(f"unknown device {name!r} (use {DEVICES})")


def device_type(device: object) -> str:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` of a name or a ``torch.device`` (no torch import)."""
    kind = getattr(device, "type", None)
    if isinstance(kind, str):
        return kind
    return str(device).split(":", 1)[0]


def cuda_possible() -> bool:
    """False when this machine certainly has no GPU torch could use (no NVIDIA or ROCm driver),
    found without importing torch; True means "ask torch"."""
    if "torch" in sys.modules:
        return True
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia/version",
                                               "/dev/kfd"))
    if sys.platform == "darwin":
        return False
    import ctypes.util

    return ctypes.util.find_library("nvcuda") is not None


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; asking for CUDA without one is a usage error."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA GPU is available")
    return torch.device(name)
