"""Loading checkpoints safely: local files only, ``weights_only=True``, checksums checked."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from framescore.errors import WeightsError
from framescore.hashing import sha256_of

_NESTED_KEYS = ("state_dict", "model", "model_state", "net")


def read_state_dict(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, checked against ``sha256`` (or a ``FILE.sha256`` beside it).

    Accepts a plain state dict or one nested under ``state_dict``/``model``; strips the
    ``module.`` prefix DataParallel/DDP adds. Never unpickles arbitrary objects.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    expected = sha256
    sidecar = path.with_name(path.name + ".sha256")
    if expected is None and sidecar.is_file():
        expected = sidecar.read_text().split()[0] if sidecar.read_text().strip() else None
    if expected is not None:
        actual = sha256_of(path)
        if actual.lower() != expected.lower():
            raise WeightsError(f"{path}: checksum mismatch (sha256 {actual[:12]}…, "
                               f"expected {expected[:12]}…); the file is corrupt or not the "
                               "one expected")
    try:
        with warnings.catch_warnings():  # its protocol notes would add lines to stderr
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({first[:120]})") from None
    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: checkpoint holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def mismatch(module: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """What stops ``state`` from loading strictly into ``module`` (None when it fits)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} of wrong shape (e.g. {k}: {tuple(state[k].shape)} vs "
                     f"{tuple(own[k].shape)})")
    return "; ".join(parts) or None


def load_into(module: nn.Module, path: str | Path, sha256: str | None = None) -> nn.Module:
    """Load a checkpoint into ``module`` strictly; a mismatch is one clear :class:`WeightsError`."""
    state = read_state_dict(path, sha256)
    problem = mismatch(module, state)
    if problem:
        raise WeightsError(f"{path}: weights do not fit {type(module).__name__}: {problem}")
    module.load_state_dict(state, strict=True)
    return module


def load_torchvision_part(target: nn.Module, path: str | Path, arch: str,
                          rename: Callable[[str], str | None]) -> nn.Module:
    """Load the part of a torchvision ImageNet state dict that ``target`` holds.

    ``rename`` maps a torchvision key to ``target``'s key, or None to drop it (e.g. fc8).
    Every tensor of ``target`` must be filled with the right shape, else one
    :class:`WeightsError` line says the file is not a torchvision ``arch`` checkpoint.
    """
    state = read_state_dict(path)
    mapped = {new: value for key, value in state.items() if (new := rename(key)) is not None}
    problem = mismatch(target, mapped)
    if problem:
        raise WeightsError(f"{path}: not a torchvision {arch} ImageNet state dict ({problem})")
    target.load_state_dict(mapped, strict=True)
    return target
