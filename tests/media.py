"""Media the tests make: frame sequences and deliberately damaged clips."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np

from framescore.io.writer import write_clip


def gradient_frames(n: int, h: int = 64, w: int = 96, seed: int = 0) -> list[np.ndarray]:
    """Frames with a moving pattern, so every frame differs."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h, w * 2, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, i % w: i % w + w]) for i in range(n)]


def write_clip_with_bad_packets(path: Path, n: int, bad: set[int], seed: int = 0) -> Path:
    """An MJPEG clip in Matroska whose packets at ``bad`` carry garbage instead of a JPEG."""
    rng = np.random.default_rng(seed)
    frames = gradient_frames(n, seed=seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuvj420p"
        count = 0

        def mux(packet: av.Packet) -> None:
            nonlocal count
            if count in bad:
                junk = av.Packet(rng.integers(0, 255, packet.size, dtype=np.uint8).tobytes())
                junk.pts, junk.dts, junk.time_base = packet.pts, packet.dts, packet.time_base
                junk.stream = stream
                packet = junk
            out.mux(packet)
            count += 1

        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                mux(packet)
        for packet in stream.encode():
            mux(packet)
    return path


def write_audio_only(path: Path, frames: int = 10) -> Path:
    """An AAC file with sound and no video stream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(frames):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def reencode(src: Path, dest: Path, gop: int, scenecut: bool = True, bframes: int | None = None,
             seconds: float | None = None, faststart: bool = False,
             preset: str = "veryfast") -> Path:
    """``src``'s video again as H.264 through :func:`framescore.io.writer.write_clip` (x264
    through PyAV; no FFmpeg program needed): a key-frame at least every ``gop`` frames,
    x264's scene-cut key-frames unless ``scenecut`` is off, ``bframes`` B-frames (x264's
    default when None), the first ``seconds`` only; a ``.h264`` name gives a raw stream (no
    timestamps), ``faststart`` puts an MP4's index first."""
    options = {"preset": preset}
    if not scenecut:
        options["sc_threshold"] = "0"
    if bframes is not None:
        options["bf"] = str(bframes)
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        fps = float(stream.average_rate or 25)
        limit = None if seconds is None else round(seconds * fps)
        frames = (f.to_ndarray(format="rgb24") for f in inp.decode(stream))
        return write_clip(dest, itertools.islice(frames, limit), fps=fps, gop=gop,
                          options=options,
                          container_options={"movflags": "+faststart"} if faststart else None)
