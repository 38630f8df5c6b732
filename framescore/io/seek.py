"""Decoding a long video without decoding all of it: a key-frame pass, then stretches.

:class:`KeyPass` reads every video packet of a file once (demuxing is cheap) and has the
decoder decode only the key (intra) frames (``skip_frame = "NONKEY"``): it yields those, and
leaves a :class:`PacketIndex` of every frame's timestamp, so that a frame found later by
seeking gets the same index the exhaustive decoder gives it (its position in display order).
:class:`StretchDecoder` then decodes chosen stretches at full rate: it seeks to the key-frame
at or before a stretch's start (``container.seek(pts, backward=True, any_frame=False)``) and
decodes forward to its end.

What cannot be indexed or sought this way raises :class:`NotSeekable` with a one-line reason
(the caller falls back to decoding every frame): packets without timestamps (a raw elementary
stream), repeated timestamps, decoding errors, a file cut short, fewer than two key-frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from framescore.io.video import (
    DecodeStats,
    Frame,
    Sampling,
    _ended_early,
    _open,
    _reason,
    _snap,
    _stream_rotation,
    _video_stream,
    stream_start,
)


class NotSeekable(Exception):
    """The file cannot be decoded key-frame first; ``str(exc)`` says why in one line."""


@dataclass(frozen=True)
class PacketIndex:
    """Every frame of the video stream, in display order (frame index = position)."""

    pts: np.ndarray          # int64, stream time base, sorted
    times: np.ndarray        # player seconds (see framescore.io.video.frame_time)
    sizes: np.ndarray        # packet bytes
    sync: np.ndarray         # bool: the container marks the packet as a key (seek point)

    def __len__(self) -> int:
        return len(self.pts)

    def index_of(self, pts: int) -> int:
        """The display-order index of the frame with timestamp ``pts`` (-1 if none)."""
        i = int(np.searchsorted(self.pts, pts))
        return i if i < len(self.pts) and self.pts[i] == pts else -1


def sample_mask(times: np.ndarray, sampling: Sampling) -> np.ndarray:
    """Which frames (by display order, with player ``times``) the exhaustive decoder keeps
    under ``sampling`` — the same rule as :func:`framescore.io.video.iter_frames`, so both
    paths score the same frames where both decode them."""
    n = len(times)
    if not sampling.fps:
        return np.arange(n) % sampling.every == 0
    keep = np.zeros(n, dtype=bool)
    step = 1.0 / sampling.fps
    next_time: float | None = None
    for i, t in enumerate(times.tolist()):
        if next_time is not None and t < next_time - 1e-6:
            continue
        keep[i] = True
        next_time = (t if next_time is None else next_time) + step
        while next_time <= t:
            next_time += step
    return keep


class KeyPass:
    """Iterate the key-frames of ``path`` as :class:`Frame` (``convert(frame, rotation)``: the
    model's input, see :func:`framescore.preprocess.frame_converter`) with their
    decoded-frame ``on_decoded(pts, time, av_frame)`` hook; afterwards :attr:`index` holds
    every packet's timestamp, and each yielded frame's ``index`` field its ``pts`` (turn it
    into a frame index with :meth:`PacketIndex.index_of`)."""

    def __init__(self, path: str | Path,
                 convert: Callable[[av.VideoFrame, int], np.ndarray],
                 stats: DecodeStats,
                 on_decoded: Callable[[int, float, av.VideoFrame], None] | None = None
                 ) -> None:
        self.path = Path(path)
        self.convert = convert
        self.stats = stats
        self.on_decoded = on_decoded
        self.index: PacketIndex | None = None
        self.key_pts: list[int] = []

    def __iter__(self) -> Iterator[Frame]:
        path, stats = self.path, self.stats
        pts_list: list[int] = []
        sizes: list[int] = []
        sync: list[bool] = []
        with _open(path) as container:
            stream = _video_stream(container, path)
            stream.codec_context.skip_frame = "NONKEY"
            stats.header_frames = stream.frames or None
            tb = stream.time_base
            if tb is None:
                raise NotSeekable("the stream has no time base")
            start = stream_start(stream)
            rot = _stream_rotation(stream)
            demux = container.demux(stream)
            while True:
                try:
                    packet = next(demux)
                except StopIteration:
                    break
                except av.FFmpegError as exc:
                    raise NotSeekable(f"demuxing failed ({_reason(exc)})") from None
                if packet.size:
                    if packet.pts is None:
                        raise NotSeekable("packets without timestamps (no container index)")
                    stats.packets += 1
                    pts_list.append(int(packet.pts))
                    sizes.append(packet.size)
                    sync.append(bool(packet.is_keyframe))
                    end = packet.pts + (packet.duration or 0)
                    stats.last_end = end if stats.last_end is None else max(stats.last_end,
                                                                            end)
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:
                    raise NotSeekable(f"a packet failed to decode ({_reason(exc)})") from None
                for frame in frames:
                    if frame.pts is None:
                        raise NotSeekable("decoded frames without timestamps")
                    t = round(float(frame.pts * tb) - start, 9)
                    stats.decoded += 1
                    self.key_pts.append(int(frame.pts))
                    if self.on_decoded is not None:
                        self.on_decoded(int(frame.pts), t, frame)
                    stats.kept += 1
                    yield Frame(index=int(frame.pts), time=t,
                                image=self.convert(frame, _snap(frame.rotation) or rot))
            stats.truncated = _ended_early(stream, stats)
        if stats.truncated:
            raise NotSeekable("the file ended early")
        order = np.argsort(np.asarray(pts_list, dtype=np.int64), kind="stable")
        pts = np.asarray(pts_list, dtype=np.int64)[order]
        if pts.size and np.any(np.diff(pts) <= 0):
            raise NotSeekable("repeated timestamps")
        times = np.round(pts * float(tb) - start, 9)
        self.index = PacketIndex(pts=pts, times=times,
                                 sizes=np.asarray(sizes, dtype=np.int64)[order],
                                 sync=np.asarray(sync, dtype=bool)[order])
        if len(set(self.key_pts)) < 2:
            raise NotSeekable(f"{len(set(self.key_pts))} key-frame(s) only")
        if any(self.index.index_of(p) < 0 for p in self.key_pts):
            raise NotSeekable("key-frames whose timestamps match no packet")


class StretchDecoder:
    """Decode stretches of ``path`` at full rate by seeking (one open container for all).

    :meth:`frames` yields ``(index, time, av_frame)`` for every frame from the seek point
    (the key-frame at or before ``first``) up to frame ``last`` (indices into ``index``)."""

    def __init__(self, path: str | Path, index: PacketIndex, stats: DecodeStats) -> None:
        self.path = Path(path)
        self.index = index
        self.stats = stats
        self._container = _open(self.path)
        self._stream = _video_stream(self._container, self.path)
        self._tb = self._stream.time_base
        self._start = stream_start(self._stream)
        self.rotation = _stream_rotation(self._stream)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> StretchDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(self, first: int, last: int) -> Iterator[tuple[int, float, av.VideoFrame]]:
        idx = self.index
        try:
            self._container.seek(int(idx.pts[first]), stream=self._stream, backward=True,
                                 any_frame=False)
            self._stream.codec_context.flush_buffers()
        except av.FFmpegError as exc:
            raise NotSeekable(f"seeking failed ({_reason(exc)})") from None
        landed = False
        for packet in self._container.demux(self._stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                raise NotSeekable(f"a packet failed to decode ({_reason(exc)})") from None
            for frame in decoded:
                i = idx.index_of(int(frame.pts)) if frame.pts is not None else -1
                if i < 0:
                    raise NotSeekable("a decoded frame's timestamp matches no packet")
                if not landed:
                    if i > first:
                        raise NotSeekable("seeking landed after the stretch's start")
                    landed = True
                self.stats.decoded += 1
                yield i, float(idx.times[i]), frame
                if i >= last:
                    return
