"""Bring images to a model's input: one resize, views (warp, centre-crop, pad, patch) and
normalization.

One resize (:func:`resize`) serves every path on every device: video frames (on the CPU and
for a CUDA model alike, :func:`video_frames`, whose first step runs in the decoder), photos,
and the training data pipelines (:func:`view`, ``hints.warp``). The views work on single RGB
uint8 arrays; ``to_tensor`` turns a batch of model-size uint8 images into the normalized float
tensor a model takes, on whatever device the model lives. torch, PyAV and OpenCV are imported
inside the functions that use them: importing this module costs numpy only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av
    import torch

    from framescore.io.video import DecodeStats, Frame, Sampling
    from framescore.models.spec import InputSpec, Resample

# The resize of every learned model ("antialias"), in two steps:
# 1. swscale's BILINEAR to an intermediate of k times the target on each side, k the largest
#    whole number <= MAX_FACTOR that the source has room for (1 when it is smaller: then this
#    step is the whole resize, an enlargement). For video the decoder takes this step in the
#    stream's own pixel format, then converts the (small) intermediate to RGB.
# 2. a shrink by the whole factor k with the triangle filter of Pillow's BILINEAR, the filter
#    the shipped weights were trained with (as a k-wide box after a small pre-blur, which for
#    whole factors is that triangle exactly; OpenCV: as fast as swscale's bilinear on an RGB
#    frame, which is not that filter, and faster than Pillow's).
# A training photo of 480 x 320 going to 160 x 160 skips step 1: it gets Pillow's resize.
# Chosen by measurement (bench/resize_parity.py, bench/resize_cost.py; bench/RESULTS.md).
MAX_FACTOR = 3
RESIZE_FILTER = "BILINEAR"
# the pre-blur before a k-wide box that makes the pair a triangle of width 2k (k = 2, 3)
_PRE_BLUR = {2: (0.25, 0.5, 0.25), 3: (1 / 3, 1 / 3, 1 / 3)}


def intermediate_size(
    source: tuple[int, int], target: tuple[int, int], resample: Resample = "antialias"
) -> tuple[int, int]:
    """The size (h, w) the first step of :func:`resize` takes a ``source`` image to on its way
    to ``target``: ``k`` x the target on each axis, ``k`` = source // target within
    1..:data:`MAX_FACTOR`. For ``"area"`` the target itself (one step)."""
    if resample == "area":
        return target
    return (
        target[0] * max(1, min(MAX_FACTOR, source[0] // target[0])),
        target[1] * max(1, min(MAX_FACTOR, source[1] // target[1])),
    )


def resize(
    image: np.ndarray, height: int, width: int, resample: Resample = "antialias"
) -> np.ndarray:
    """``image`` (H, W, 3 RGB uint8) resized to ``height`` x ``width`` (aspect ignored), the
    image itself when it already has that size. ``"antialias"``: swscale's bilinear to
    :func:`intermediate_size`, then :func:`shrink` (see :data:`MAX_FACTOR`); ``"area"``:
    swscale's box filter in one step."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"resize takes RGB uint8 images (H, W, 3), got {image.dtype} {image.shape}"
        )
    if image.shape[:2] == (height, width):
        return image
    mid = intermediate_size(image.shape[:2], (height, width), resample)
    if mid != image.shape[:2]:
        image = _swscale(image, mid, _first_step_filter(resample))
    return shrink(image, height, width)


def resize_batch(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A batch ``(N, H, W, 3)`` of RGB images each :func:`resize`-d to ``spec.size`` (aspect
    ignored): what a scorer does with images handed to it at another size."""
    return np.stack([resize(np.ascontiguousarray(im, dtype=np.uint8), *spec.size, spec.resample)
                     for im in images])


def _first_step_filter(resample: Resample) -> str:
    """swscale's filter for :func:`resize`'s first step (in the decoder, for video)."""
    return "AREA" if resample == "area" else RESIZE_FILTER


def shrink(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (H, W, C uint8) shrunk by whole factors (H = k·height, W = k'·width, k, k' in
    1..3) with the triangle filter of Pillow's bilinear resize, to within 1 level: OpenCV's
    box blur (or [1 2 1] for k = 2) then its INTER_AREA box for the interior, the outermost
    rows and columns computed with Pillow's edge weights."""
    ih, iw = image.shape[:2]
    ky, kx = ih // height, iw // width
    if (
        (ky * height, kx * width) != (ih, iw)
        or not (1 <= ky <= MAX_FACTOR)
        or not (1 <= kx <= MAX_FACTOR)
    ):
        raise ValueError(
            f"shrink takes whole factors 1..{MAX_FACTOR}: {ih}x{iw} to {height}x{width}"
        )
    if ky == kx == 1:
        return image
    cv2 = _cv2()
    image = np.ascontiguousarray(image)
    if ky == kx == 3:
        blurred = cv2.blur(image, (3, 3), borderType=cv2.BORDER_REPLICATE)
    else:
        blurred = cv2.sepFilter2D(
            image,
            -1,
            np.array(_PRE_BLUR.get(kx, (1.0,)), np.float32),
            np.array(_PRE_BLUR.get(ky, (1.0,)), np.float32),
            borderType=cv2.BORDER_REPLICATE,
        )
    out = cv2.resize(blurred, (width, height), interpolation=cv2.INTER_AREA)
    # the outermost rows and columns: the triangle cut at the image's edge and reweighted,
    # as Pillow does (a replicated edge there would weigh the edge pixel twice; it moved the
    # default model's scores of the shipped photos by up to 0.06)
    if ky > 1:  # the first and last rows, from the k + 1 input rows at each edge
        w = _triangle(ih, height)
        top = w[0, : ky + 1] @ image[: ky + 1].reshape(ky + 1, -1).astype(np.float32)
        bottom = w[-1, -ky - 1 :] @ image[-ky - 1 :].reshape(ky + 1, -1).astype(np.float32)
        edges = np.stack([top, bottom]).reshape(2, iw, -1)
        out[[0, -1]] = _to_uint8(_triangle(iw, width) @ edges if kx > 1 else edges)
    if kx > 1:  # the first and last columns, likewise
        w = _triangle(iw, width)
        left = w[0, : kx + 1] @ image[:, : kx + 1].astype(np.float32)
        right = w[-1, -kx - 1 :] @ image[:, -kx - 1 :].astype(np.float32)
        edges = np.stack([left, right])
        out[:, [0, -1]] = _to_uint8(_triangle(ih, height) @ edges if ky > 1 else edges).transpose(
            1, 0, 2
        )
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Rounded to the nearest level (``x`` is a weighted mean of uint8 values: in 0..255)."""
    return (x + 0.5).astype(np.uint8)


@lru_cache(maxsize=32)
def _triangle(n_in: int, n_out: int) -> np.ndarray:
    """The ``(n_out, n_in)`` weights of Pillow's bilinear (triangle) filter shrinking
    ``n_in`` samples to ``n_out``: each output's centre ``(i + 0.5) * scale``, support ``scale``,
    the weights inside the image normalized to sum to 1."""
    scale = n_in / n_out
    centres = (np.arange(n_out) + 0.5) * scale
    offsets = (np.arange(n_in) + 0.5)[None, :] - centres[:, None]
    weights = np.clip(1.0 - np.abs(offsets) / max(scale, 1.0), 0.0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


@lru_cache(maxsize=1)
def _cv2():
    """OpenCV, imported on first use (about 0.3 s) with one thread of its own: the resize runs
    in the decoding thread, beside the model's threads."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


_local = threading.local()


def _swscale(image: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """swscale's resize of an RGB array, through this thread's own context (kept from call
    to call: a fresh one per image, filter tables and all, costs more than the scaling)."""
    import av
    from av.video.reformatter import VideoReformatter

    reformatter = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return reformatter.reformat(
        frame, width=size[1], height=size[0], interpolation=interpolation, threads=1
    ).to_ndarray()


def view_size(spec: InputSpec, height: int, width: int) -> tuple[int, int]:
    """The size (h, w) ``spec.view`` resizes a ``height`` x ``width`` image to before it crops
    or pads (a patch view's is the image's own, unless smaller than the crop)."""
    h, w = spec.height, spec.width
    if spec.view == "warp":
        return h, w
    if spec.view in ("center", "patch"):
        if spec.view == "patch" and height >= h and width >= w:
            return height, width
        scale = max(h / height, w / width)
        return max(h, round(height * scale)), max(w, round(width * scale))
    if spec.view == "pad":
        scale = min(h / height, w / width)
        return max(1, round(height * scale)), max(1, round(width * scale))
    raise ValueError(f"unknown view {spec.view!r}")


def _place(
    resized: np.ndarray, spec: InputSpec, rng: np.random.Generator | None = None
) -> np.ndarray:
    """An image already at the view's size brought to ``spec.size``: cropped (centre, or a
    random patch with ``rng``) or padded with the mean colour."""
    h, w = spec.height, spec.width
    rh, rw = resized.shape[:2]
    if spec.view == "warp":
        return resized
    if spec.view == "pad":
        fill = np.array([round(c * 255) for c in spec.mean], dtype=np.uint8)
        canvas = np.empty((h, w, 3), dtype=np.uint8)
        canvas[:] = fill
        top, left = (h - rh) // 2, (w - rw) // 2
        canvas[top : top + rh, left : left + rw] = resized
        return canvas
    if spec.view == "patch" and rng is not None:
        top, left = int(rng.integers(0, rh - h + 1)), int(rng.integers(0, rw - w + 1))
    else:
        top, left = (rh - h) // 2, (rw - w) // 2
    return resized[top : top + h, left : left + w]


def view(image: np.ndarray, spec: InputSpec, rng: np.random.Generator | None = None) -> np.ndarray:
    """``image`` (H, W, 3 uint8) brought to ``spec.size`` by ``spec.view``.

    warp: resize the whole image, aspect ignored. center: resize so the short side fits, then
    centre-crop. pad: resize so the long side fits, then pad with the mean colour. patch: a crop
    of the full-resolution image (random when ``rng`` is given, else the centre), resized up only
    if the image is smaller than the crop. Every resize is :func:`resize` by ``spec.resample``.
    """
    return _place(resize(image, *view_size(spec, *image.shape[:2]), spec.resample), spec, rng)


def decode_size(spec: InputSpec, source: tuple[int, int]) -> tuple[int, int] | None:
    """The size (h, w) a video decoder scales ``source`` = (h, w) frames to for ``spec``, the
    same on every device: the first step of :func:`resize`, taken in the stream's own pixel
    format. None (the full frame, both steps on the RGB frame) when that step would shrink
    less than 2x on an axis: 4:2:0 video scaled there would keep its chroma at half the
    model's size (carphone, 176 x 144: Spearman 0.974 against the training resize, 0.994 on
    RGB). ``"area"`` specs always get the one step in the decoder."""
    target = view_size(spec, *source)
    mid = intermediate_size(source, target, spec.resample)
    if spec.resample == "area" or (mid[0] >= 2 * target[0] and mid[1] >= 2 * target[1]):
        return mid
    return None


def video_hwaccel() -> str | None:
    """The hardware decoder asked for by ``FRAMESCORE_HWACCEL`` (``cuda``/``nvdec``: NVIDIA's
    NVDEC), None (software) when unset. Opt-in: hardware-decoded pixels may differ from
    software-decoded ones by a level, and without a usable driver it falls back (one line)."""
    value = os.environ.get("FRAMESCORE_HWACCEL", "").strip().lower()
    return "cuda" if value in ("cuda", "nvdec", "on", "1") else None


def video_frames(
    path: str | Path,
    spec: InputSpec,
    sampling: Sampling | None = None,
    stats: DecodeStats | None = None,
    on_decoded: Callable[[int, float, av.VideoFrame], None] | None = None,
    source: tuple[int, int] | None = None,
    hwaccel: str | None = None,
) -> Iterator[Frame]:
    """The sampled frames of a video, each brought to ``spec.size`` by ``spec.view`` through
    :func:`resize`'s two steps, the first taken by the decoder (:func:`decode_size`), the
    second (:func:`shrink`) right after it in the same thread (both on the RGB frame for a
    small source). The one video path of the
    key-frames, best-shot and API calls, whatever the device. ``source`` is the display size
    (h, w) when known (else it is probed); ``hwaccel`` as for
    :func:`~framescore.io.video.iter_frames` (default: :func:`video_hwaccel`)."""
    from framescore.io.video import Sampling, iter_frames, probe

    if source is None:
        info = probe(path)
        source = (info.height, info.width)
    size = decode_size(spec, source)
    frames = iter_frames(
        path,
        sampling or Sampling(),
        size=size,
        stats=stats,
        on_decoded=on_decoded,
        interpolation=_first_step_filter(spec.resample),
        hwaccel=hwaccel if hwaccel is not None else video_hwaccel(),
    )
    finish = _second_step(spec, source, size)
    try:
        for frame in frames:
            frame.image = finish(frame.image)
            yield frame
    finally:
        frames.close()


def _second_step(
    spec: InputSpec, source: tuple[int, int], size: tuple[int, int] | None
) -> Callable[[np.ndarray], np.ndarray]:
    """What follows the decoder's scaling: at ``decode_size`` (a whole k x target) the shrink,
    else the whole resize; then the view's placement."""
    target = view_size(spec, *source)

    def finish(image: np.ndarray) -> np.ndarray:
        if size is not None:
            image = shrink(image, *target)
        else:
            image = resize(image, *target, spec.resample)
        return _place(image, spec)

    return finish


def frame_converter(
    spec: InputSpec, source: tuple[int, int]
) -> Callable[[av.VideoFrame, int], np.ndarray]:
    """``convert(frame, rotation)``: one decoded frame of a ``source`` = (h, w) video as the
    model's input, by the same two steps as :func:`video_frames` (for decoders that seek,
    such as the key-frames job's fast path)."""
    from framescore.io.video import RGBConverter

    size = decode_size(spec, source)
    rgb = RGBConverter(_first_step_filter(spec.resample))
    finish = _second_step(spec, source, size)
    return lambda frame, rotation: finish(rgb(frame, size, rotation))


@lru_cache(maxsize=16)
def _norm_constants(mean: tuple[float, ...], std: tuple[float, ...], device: str) -> tuple:
    """The normalization's ``(1, 3, 1, 1)`` mean and std (0..255 scale) on ``device``, made
    once: built from Python lists on every batch they cost a host-to-device copy (and a
    sync on CUDA) each time."""
    import torch

    return (
        torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255.0,
        torch.tensor(std, device=device).view(1, 3, 1, 1) * 255.0,
    )


def to_tensor(
    images: np.ndarray | torch.Tensor,
    spec: InputSpec,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
) -> torch.Tensor:
    """A uint8 batch ``(N, H, W, 3)`` as the normalized ``(N, 3, h, w)`` float tensor on ``device``.

    Images are expected at ``spec.size`` (brought there by :func:`view` or
    :func:`video_frames`); others are warped there on the host by :func:`resize`, never by
    another filter on the device, so every device sees the same pixels. Host memory is pinned
    before the copy to a GPU.
    """
    import torch

    device = torch.device(device)
    if tuple(images.shape[1:3]) != spec.size:
        images = resize_batch(
            images.cpu().numpy() if isinstance(images, torch.Tensor) else images, spec
        )
    batch = (
        torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    )
    if device.type == "cuda" and not batch.is_cuda:
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    x = batch.permute(0, 3, 1, 2).float()
    mean, std = _norm_constants(spec.mean, spec.std, str(device))
    x = (x - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
