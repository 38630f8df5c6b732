"""Scoring with a PyTorch module (CUDA, and the CPU when no verified ONNX export is faster)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from framescore.models.spec import InputSpec
from framescore.preprocess import to_tensor


class TorchScorer:
    """Wraps a PyTorch model whose ``forward`` returns a score tensor or a dict with ``score``.

    On CUDA it runs in channels_last with fp16 autocast; on the CPU in fp32. ``source`` is the
    weights file the module was loaded from (None: weights given in memory).
    """

    runtime = "torch"

    def __init__(self, name: str, module: nn.Module, spec: InputSpec,
                 device: torch.device | str = "cpu", fp16: bool | None = None,
                 source: str | Path | None = None) -> None:
        self.name = name
        self.spec = spec
        self.source = str(source) if source is not None else None
        self.device = torch.device(device)
        self.fp16 = (self.device.type == "cuda") if fp16 is None else fp16
        self.channels_last = self.device.type == "cuda"
        module = module.eval().to(self.device)
        if hasattr(module, "folded"):  # the same function with fewer layers (a copy)
            module = module.folded()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module

    def __repr__(self) -> str:
        return f"TorchScorer({self.name!r}, {self.device}, source={self.source!r})"

    @torch.inference_mode()
    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        x = to_tensor(images, self.spec, self.device, channels_last=self.channels_last)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            out = self.module(x)
        if isinstance(out, torch.Tensor):
            out = {"score": out}
        if self.device.type != "cuda":
            return {k: v.float().numpy() for k, v in out.items()}
        # every output's copy queued at once, then one wait (not one sync per output)
        host = {k: v.float().to("cpu", non_blocking=True) for k, v in out.items()}
        torch.cuda.current_stream(self.device).synchronize()
        return {k: v.numpy() for k, v in host.items()}
