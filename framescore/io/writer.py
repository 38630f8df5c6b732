"""Encoding clips with PyAV (for ``framescore demo``, the tests and the benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_clip(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0,
               codec: str = "libx264", times: Sequence[float] | None = None,
               rotation: int = 0, pix_fmt: str = "yuv420p", crf: int = 20,
               gop: int | None = None, options: Mapping[str, str] | None = None,
               container_options: Mapping[str, str] | None = None) -> Path:
    """Encode RGB uint8 frames into ``path``.

    ``times`` (seconds, increasing) gives each frame its own timestamp for variable-frame-rate
    clips; ``rotation`` (degrees counter-clockwise) is stored as display-matrix metadata.
    ``options`` are the encoder's own (for x264 e.g. ``preset``, ``sc_threshold``, ``bf``),
    over the defaults; ``container_options`` the muxer's (e.g. ``movflags``).
    Frame sizes are made even where the pixel format needs it (by cropping one pixel).
    The clip is encoded under a temporary name and renamed into place when complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    iterator = iter(frames)
    first = next(iterator)
    h, w = first.shape[:2]
    if pix_fmt in ("yuv420p", "yuvj420p"):
        h, w = h - h % 2, w - w % 2
    container = av.open(str(tmp), mode="w", options=dict(container_options or {}))
    try:
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        defaults = {"crf": str(crf), "preset": "veryfast"} if codec in ("libx264", "libx265") \
            else {}
        if defaults or options:
            stream.options = {**defaults, **(options or {})}
        if gop:
            stream.codec_context.gop_size = gop
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, image in enumerate(_chain(first, iterator)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]),
                                               format="rgb24")
            if times is not None:
                frame.pts = round(times[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    container.close()
    os.replace(tmp, path)
    return path


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]):
    yield first
    yield from rest
