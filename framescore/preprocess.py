"""Bring images to a model's input: views (warp, centre-crop, pad, patch) and normalization.

The views work on single RGB uint8 arrays (numpy, for images of any size); ``to_tensor``
turns a batch of same-size uint8 images into the normalized float tensor a model takes, on
whatever device the model lives (on CUDA the resize and the arithmetic run on the GPU).
Only ``to_tensor`` imports torch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # torch is imported only by to_tensor: preparing numpy images needs none
    import torch

    from framescore.models.spec import InputSpec


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[0] == height and image.shape[1] == width:
        return image
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0))


def view(image: np.ndarray, spec: InputSpec, rng: np.random.Generator | None = None) -> np.ndarray:
    """``image`` (H, W, 3 uint8) brought to ``spec.size`` by ``spec.view``.

    warp: resize the whole image, aspect ignored. center: resize so the short side fits, then
    centre-crop. pad: resize so the long side fits, then pad with the mean colour. patch: a crop
    of the full-resolution image (random when ``rng`` is given, else the centre), resized up only
    if the image is smaller than the crop.
    """
    h, w = spec.height, spec.width
    ih, iw = image.shape[:2]
    if spec.view == "warp":
        return _resize(image, h, w)
    if spec.view == "center":
        scale = max(h / ih, w / iw)
        rh, rw = max(h, round(ih * scale)), max(w, round(iw * scale))
        resized = _resize(image, rh, rw)
        top, left = (rh - h) // 2, (rw - w) // 2
        return resized[top:top + h, left:left + w]
    if spec.view == "pad":
        scale = min(h / ih, w / iw)
        rh, rw = max(1, round(ih * scale)), max(1, round(iw * scale))
        resized = _resize(image, rh, rw)
        fill = np.array([round(c * 255) for c in spec.mean], dtype=np.uint8)
        canvas = np.empty((h, w, 3), dtype=np.uint8)
        canvas[:] = fill
        top, left = (h - rh) // 2, (w - rw) // 2
        canvas[top:top + rh, left:left + rw] = resized
        return canvas
    if spec.view == "patch":
        if ih < h or iw < w:
            scale = max(h / ih, w / iw)
            image = _resize(image, max(h, round(ih * scale)), max(w, round(iw * scale)))
            ih, iw = image.shape[:2]
        if rng is None:
            top, left = (ih - h) // 2, (iw - w) // 2
        else:
            top, left = int(rng.integers(0, ih - h + 1)), int(rng.integers(0, iw - w + 1))
        return image[top:top + h, left:left + w]
    raise ValueError(f"unknown view {spec.view!r}")


GPU_DECODE_LINES = 720


def decode_size(spec: InputSpec, device: torch.device | str | None = None,
                source: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The size (h, w) a video decoder should hand frames over at for ``spec``.

    On the CPU, warp views are resized by swscale straight to the model's input (cheapest).
    On CUDA the frames stay large (aspect kept, at most 720 lines) and :func:`to_tensor`
    warps them on the GPU. Other views need the full frame (None).
    """
    if spec.view != "warp":
        return None
    kind = getattr(device, "type", None) or str(device).split(":", 1)[0]
    if device is not None and kind == "cuda" and source is not None:
        h, w = source
        scale = min(1.0, GPU_DECODE_LINES / min(h, w))
        return (max(2, round(h * scale) // 2 * 2), max(2, round(w * scale) // 2 * 2))
    return spec.size


@lru_cache(maxsize=16)
def _norm_constants(mean: tuple[float, ...], std: tuple[float, ...], device: str) -> tuple:
    """The normalization's ``(1, 3, 1, 1)`` mean and std (0..255 scale) on ``device``, made
    once: built from Python lists on every batch they cost a host-to-device copy (and a
    sync on CUDA) each time."""
    import torch

    return (torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255.0,
            torch.tensor(std, device=device).view(1, 3, 1, 1) * 255.0)


def to_tensor(images: np.ndarray | torch.Tensor, spec: InputSpec,
              device: torch.device | str = "cpu", channels_last: bool = False) -> torch.Tensor:
    """A uint8 batch ``(N, H, W, 3)`` as the normalized ``(N, 3, h, w)`` float tensor on ``device``.

    Images not yet at ``spec.size`` are warped there on ``device`` (antialiased bilinear), so on
    CUDA the resize runs on the GPU. Host memory is pinned before the copy to a GPU.
    """
    import torch
    import torch.nn.functional as F

    device = torch.device(device)
    batch = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) \
        else images
    if device.type == "cuda" and not batch.is_cuda:
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    x = batch.permute(0, 3, 1, 2).float()
    if tuple(x.shape[-2:]) != spec.size:
        x = F.interpolate(x, size=spec.size, mode="bilinear", antialias=True, align_corners=False)
    mean, std = _norm_constants(spec.mean, spec.std, str(device))
    x = (x - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
