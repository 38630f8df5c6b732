"""Batched scoring: a decoding thread feeds batches to the model while it scores the last one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from framescore.errors import UsageError
from framescore.io.video import Frame
from framescore.models.spec import InputSpec, Scorer
from framescore.preprocess import to_tensor


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; asking for CUDA without one is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA GPU is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UsageError(f"unknown device {name!r} (use auto, cpu or cuda)")
    return torch.device(name)


class TorchScorer:
    """Wraps a PyTorch model whose ``forward`` returns a score tensor or a dict with ``score``.

    On CUDA it runs in channels_last with fp16 autocast; on the CPU in fp32.
    """

    def __init__(self, name: str, module: nn.Module, spec: InputSpec,
                 device: torch.device | str = "cpu", fp16: bool | None = None) -> None:
        self.name = name
        self.spec = spec
        self.device = torch.device(device)
        self.fp16 = (self.device.type == "cuda") if fp16 is None else fp16
        self.channels_last = self.device.type == "cuda"
        module = module.eval().to(self.device)
        if hasattr(module, "folded"):  # the same function with fewer layers (a copy)
            module = module.folded()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module

    @torch.inference_mode()
    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        x = to_tensor(images, self.spec, self.device, channels_last=self.channels_last)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            out = self.module(x)
        if isinstance(out, torch.Tensor):
            out = {"score": out}
        return {k: v.float().cpu().numpy() for k, v in out.items()}


@dataclass
class ScoredFrames:
    """Per-frame results of a scoring pass, in decode order."""

    indices: np.ndarray
    times: np.ndarray
    scores: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.indices)


_END = object()


def _batches(frames: Iterable[Frame], batch_size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` ahead; errors re-raise here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=work, name="framescore-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


# extras worth keeping per frame; big per-frame arrays (encodings, histograms) are dropped
_KEEP_EXTRA_MAX_DIM = 16


def score_frames(frames: Iterable[Frame], scorer: Scorer, batch_size: int = 32,
                 on_batch: Callable[[int], None] | None = None,
                 observe: Callable[[np.ndarray], None] | None = None) -> ScoredFrames:
    """Score every frame, decoding the next batch in a background thread meanwhile.

    ``observe`` sees each stacked batch ``(N, H, W, 3)`` before the model does (the key-frames
    job takes its cut/fade signatures there). Memory stays bounded: two batches of images in
    flight, scalars kept per frame.
    """
    indices: list[int] = []
    times: list[float] = []
    scores: list[np.ndarray] = []
    extras: dict[str, list[np.ndarray]] = {}
    for batch in prefetch(_batches(frames, batch_size)):
        images = np.stack([f.image for f in batch])
        if observe is not None:
            observe(images)
        out = scorer.score_batch(images)
        indices.extend(f.index for f in batch)
        times.extend(f.time for f in batch)
        scores.append(np.asarray(out["score"], dtype=np.float64).reshape(-1))
        for key, value in out.items():
            if key == "score":
                continue
            value = np.asarray(value)
            if value.ndim == 1 or (value.ndim == 2 and value.shape[1] <= _KEEP_EXTRA_MAX_DIM):
                extras.setdefault(key, []).append(value)
        if on_batch is not None:
            on_batch(len(batch))
    return ScoredFrames(
        indices=np.asarray(indices, dtype=np.int64),
        times=np.asarray(times, dtype=np.float64),
        scores=np.concatenate(scores) if scores else np.zeros(0),
        extras={k: np.concatenate(v) for k, v in extras.items()},
    )
