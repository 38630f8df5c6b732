"""Decode videos with PyAV: threaded decoding, pts timestamps, rotation, frame sampling.

Frames come out in display orientation (rotation metadata applied) as RGB uint8 arrays,
resized by FFmpeg's swscale when a target size is asked for. Corrupt packets in the middle of
a stream are skipped and counted; a file with no decodable video frame is a :class:`MediaError`.
"""

from __future__ import annotations

import math
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from framescore.errors import MediaError

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
                  ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"}


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the first video stream (sizes in display orientation)."""

    path: Path
    width: int
    height: int
    rotation: int
    fps: float
    duration: float | None
    frames: int | None
    codec: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "width": self.width, "height": self.height,
                "rotation": self.rotation, "fps": self.fps, "duration": self.duration,
                "frames": self.frames, "codec": self.codec}


@dataclass
class Frame:
    """One decoded frame: its index among all decoded frames, time in seconds, RGB pixels."""

    index: int
    time: float
    image: np.ndarray


@dataclass
class DecodeStats:
    """Counts a decode pass fills in as it goes.

    ``header_frames`` is the frame count the container's index or header claims (None when it
    has none, as in Matroska); ``packets`` the video packets the file actually held. A file
    whose index promises more packets than it holds ended early (``truncated``): a copy cut
    short with its index at the front (MP4 "fast start"); its frames up to the cut are used.
    """

    decoded: int = 0
    kept: int = 0
    skipped_packets: int = 0
    errors: list[str] = field(default_factory=list)
    packets: int = 0
    header_frames: int | None = None
    truncated: bool = False
    last_end: int | None = field(default=None, repr=False)  # latest packet end (stream units)
    hwaccel: str | None = None  # the hardware decoder's device type when one decoded the file

    def to_dict(self, scored: int | None = None) -> dict:
        """The ``decode`` section of an output document."""
        out: dict = {"decoded": self.decoded}
        if scored is not None:
            out["scored"] = scored
        out.update({"skipped_packets": self.skipped_packets,
                    "header_frames": self.header_frames, "packets": self.packets,
                    "truncated": self.truncated})
        return out

    def warning(self) -> str | None:
        """One line for the user when the file ended early, else None."""
        if not self.truncated:
            return None
        return (f"the file ended early: its index promises {self.header_frames} frames, "
                f"it holds {self.packets} ({self.decoded} decoded); it was cut short")


@dataclass(frozen=True)
class Sampling:
    """Which frames to keep: every ``every``-th decoded frame, or about ``fps`` frames a second."""

    every: int = 1
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be >= 1")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps must be > 0")


def check_regular_file(path: Path, what: str = "a video") -> None:
    """A one-line :class:`MediaError` unless ``path`` is a regular file (following links).

    A FIFO, socket or device would make the decoder block or read forever, so it is refused
    before anything opens it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except OSError as exc:
        raise MediaError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise MediaError(f"{path}: is a folder, not {what}")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special")
        raise MediaError(f"{path}: is {kind}, not a regular file")


def _open(path: Path, hwaccel: str | None = None) -> av.container.InputContainer:
    check_regular_file(path)
    if hwaccel is not None:
        container = open_hwaccel(path, hwaccel)
        if container is not None:
            return container
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable video ({_reason(exc)})") from None


_HWACCEL_WARNED: set[str] = set()


def open_hwaccel(path: Path, device_type: str) -> av.container.InputContainer | None:
    """``path`` opened for decoding on the ``device_type`` hardware (``"cuda"``: NVDEC), or None
    when that cannot be had here (no such device in this FFmpeg build, no driver, no GPU): the
    first failure per device type is said in one line on stderr, then software decoding is
    used. A stream the hardware cannot decode falls back to software inside FFmpeg. Frames
    are downloaded to host memory, so everything after the decoder is unchanged."""
    from av.codec.hwaccel import HWAccel, hwdevices_available

    try:
        available = hwdevices_available()
        if device_type not in available:
            raise ValueError(f"this FFmpeg build has no {device_type!r} device (it has: "
                             f"{', '.join(available) or 'none'})")
        return av.open(str(path), mode="r",
                       hwaccel=HWAccel(device_type, allow_software_fallback=True))
    except (av.FFmpegError, ValueError, OSError, RuntimeError) as exc:
        if device_type not in _HWACCEL_WARNED:
            _HWACCEL_WARNED.add(device_type)
            why = _reason(exc) if isinstance(exc, av.FFmpegError) else exc
            print(f"framescore: warning: {device_type} hardware decoding unavailable ({why}); "
                  "decoding in software", file=sys.stderr, flush=True)
        return None


def _is_hwaccel(stream: av.VideoStream) -> bool:
    try:
        return bool(stream.codec_context.is_hwaccel)
    except (AttributeError, av.FFmpegError):
        return False


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if text else type(exc).__name__


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise MediaError(f"{path}: has no video stream ({', '.join(kinds)} only)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads; must be set before the codec opens
    return stream


def _stream_rotation(stream: av.VideoStream) -> int:
    """Rotation from the stream's display matrix (degrees counter-clockwise, multiple of 90)."""
    try:
        for data in stream.side_data if hasattr(stream, "side_data") else []:
            rot = getattr(data, "rotation", None)
            if rot is not None:
                return _snap(rot)
    except Exception:  # noqa: BLE001 - side data is optional metadata
        pass
    tag = stream.metadata.get("rotate")
    if tag:
        try:
            return _snap(-float(tag))
        except ValueError:
            return 0
    return 0


def _snap(angle: float) -> int:
    if angle is None or math.isnan(angle):
        return 0
    return int(round(angle / 90.0)) * 90 % 360


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header: size, rotation, frame rate, duration. Decodes at most one frame."""
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        rotation = _stream_rotation(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation == 0:
            # the display matrix usually travels with frames; look at the first one
            for frame in _frames(container, stream, DecodeStats()):
                rotation = _snap(frame.rotation)
                width, height = frame.width, frame.height
                break
        if width <= 0 or height <= 0:
            raise MediaError(f"{path}: video stream has no frame size")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        frames = stream.frames or (round(duration * fps) if duration and fps else None)
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(path=path, width=width, height=height, rotation=rotation, fps=fps,
                         duration=duration, frames=frames or None,
                         codec=stream.codec_context.name)


def _frames(container, stream, stats: DecodeStats) -> Iterator[av.VideoFrame]:
    """Decode every frame of ``stream``, skipping (and counting) packets that fail to decode."""
    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except av.FFmpegError as exc:  # a broken container: stop at the last good packet
            stats.errors.append(f"demux: {_reason(exc)}")
            return
        if packet.pts is not None or packet.size:  # not the flush packet at the end
            stats.packets += 1
            if packet.pts is not None:
                end = packet.pts + (packet.duration or 0)
                stats.last_end = end if stats.last_end is None else max(stats.last_end, end)
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            stats.skipped_packets += 1
            if len(stats.errors) < 20:
                stats.errors.append(f"packet {packet.pts}: {_reason(exc)}")
            continue
        yield from frames


def _ended_early(stream: av.VideoStream, stats: DecodeStats) -> bool:
    """True when the stream's index promised more than the file held: fewer packets than the
    header's frame count, and the last one ends more than a frame and a half before the
    stream's stated end. (Counting alone misleads: AVI indexes count empty "repeat the last
    frame" entries, which the demuxer drops; tree.avi has 444 entries and 68 frames.)"""
    frames, duration = stats.header_frames, stream.duration
    if not frames or not duration or stats.packets >= frames or stats.last_end is None:
        return False
    start = stream.start_time or 0
    return stats.last_end < start + duration - 1.5 * duration / frames


def stream_start(stream: av.VideoStream) -> float:
    """The stream's start time in seconds (0 when the container does not say)."""
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def frame_time(frame: av.VideoFrame, fallback_index: int, fps: float,
               start: float = 0.0) -> float:
    """A frame's player time in seconds: pts x time_base minus the stream's ``start`` (what a
    player shows; an MPEG-PS or TS file often starts at a pts other than 0), or index / fps
    for a frame without pts."""
    if frame.pts is not None and frame.time_base is not None:
        return round(float(frame.pts * frame.time_base) - start, 9)
    return fallback_index / fps if fps else float(fallback_index)


class RGBConverter:
    """Turns decoded frames into RGB arrays, resized by swscale, in display orientation.

    One converter serves all the frames of a stream: it keeps swscale's contexts (their filter
    tables) from frame to frame; a fresh context per frame cost about as much as decoding a
    720p frame. A resize runs in two steps, scaling in the stream's own pixel format (for
    4:2:0 video that is a quarter of the chroma) and then converting the small frame to RGB:
    half the work of converting at full size (720p to 256 x 256: 0.31 against 0.68 ms).
    ``interpolation`` is swscale's filter for the resize (``"AREA"``, ``"BILINEAR"``...).
    """

    def __init__(self, interpolation: str = "AREA") -> None:
        self._scale = VideoReformatter()
        self._rgb = VideoReformatter()
        self.interpolation = interpolation

    def __call__(self, frame: av.VideoFrame, size: tuple[int, int] | None = None,
                 rotation: int | None = None) -> np.ndarray:
        rot = _snap(frame.rotation) if rotation is None else rotation
        if size is not None:
            h, w = size
            if rot in (90, 270):
                h, w = w, h
            if (frame.width, frame.height) != (w, h):
                frame = self._scale.reformat(frame, width=w, height=h,
                                             interpolation=self.interpolation, threads=1)
        image = self._rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()
        if rot:
            image = np.ascontiguousarray(np.rot90(image, k=rot // 90))
        return image


def to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None = None,
           rotation: int | None = None) -> np.ndarray:
    """RGB uint8 pixels of ``frame`` in display orientation, resized to ``size`` = (h, w)."""
    return RGBConverter()(frame, size, rotation)


def iter_frames(path: str | Path, sampling: Sampling = Sampling(),
                size: tuple[int, int] | None = None,
                stats: DecodeStats | None = None,
                on_decoded: Callable[[int, float, av.VideoFrame], None] | None = None,
                interpolation: str = "AREA", hwaccel: str | None = None) -> Iterator[Frame]:
    """Decode ``path`` and yield the sampled frames as RGB arrays in display orientation.

    ``size`` = (height, width) asks swscale to resize (the whole frame, aspect ignored);
    ``None`` keeps the full resolution. ``stats`` is filled in as frames are decoded.
    ``on_decoded(index, time, frame)`` sees every decoded frame, kept or not, in the decoding
    thread (the shot detector reads its planes there). Times are player times (see
    :func:`frame_time`). ``interpolation`` is swscale's filter for the resize (the scoring
    path, :func:`framescore.preprocess.video_frames`, chooses it). ``hwaccel`` (``"cuda"``)
    decodes on that hardware when it can be had, else in software after one warning (see
    :func:`open_hwaccel`; ``stats.hwaccel`` names it when it was had). Raises
    :class:`MediaError` when the file has no decodable video frame.
    """
    path = Path(path)
    stats = stats if stats is not None else DecodeStats()
    with _open(path, hwaccel) as container:
        stream = _video_stream(container, path)
        stats.hwaccel = hwaccel if hwaccel and _is_hwaccel(stream) else None
        stats.header_frames = stream.frames or None
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
        stream_rot = _stream_rotation(stream)
        start = stream_start(stream)
        next_time: float | None = None
        step = 1.0 / sampling.fps if sampling.fps else None
        convert = RGBConverter(interpolation)
        for frame in _frames(container, stream, stats):
            index = stats.decoded
            stats.decoded += 1
            t = frame_time(frame, index, fps, start)
            if on_decoded is not None:
                on_decoded(index, t, frame)
            if step is not None:
                if next_time is not None and t < next_time - 1e-6:
                    continue
                next_time = (t if next_time is None else next_time) + step
                while next_time <= t:
                    next_time += step
            elif index % sampling.every:
                continue
            rot = _snap(frame.rotation) or stream_rot
            stats.kept += 1
            yield Frame(index=index, time=t, image=convert(frame, size, rot))
    stats.truncated = _ended_early(stream, stats)
    if stats.decoded == 0:
        if stats.truncated:
            raise MediaError(f"{path}: no decodable video frame; the file ended early (its "
                             f"index promises {stats.header_frames} frames, it holds "
                             f"{stats.packets} packets)")
        detail = f" ({stats.errors[0]})" if stats.errors else ""
        raise MediaError(f"{path}: no decodable video frame{detail}")


def grab_frames(path: str | Path, wanted: dict[int, float]) -> dict[int, np.ndarray]:
    """Full-resolution RGB frames for ``{decoded index: time}``, in display orientation.

    Each frame is found by seeking to the key-frame before its time and decoding forward to
    the frame with that timestamp; if seeking does not land on it (a stream without an index,
    broken timestamps) the rest are taken in one sequential pass by index. Only the asked-for
    frames are kept in memory.
    """
    path = Path(path)
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream_rot = _stream_rotation(stream)
        tb = stream.time_base
        start = stream_start(stream)
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        tolerance = 0.5 / rate
        for index, t in sorted(wanted.items(), key=lambda kv: kv[1]):
            if tb is None:
                break
            try:
                container.seek(int((t + start) / tb), stream=stream, backward=True,
                               any_frame=False)
                stats = DecodeStats()
                for frame in _frames(container, stream, stats):
                    ft = frame_time(frame, 0, rate, start)
                    if abs(ft - t) <= tolerance:
                        out[index] = to_rgb(frame, None, _snap(frame.rotation) or stream_rot)
                        break
                    if ft > t + tolerance or stats.decoded > 2000:
                        break
                    stats.decoded += 1
            except av.FFmpegError:
                break
    missing = {i for i in wanted if i not in out}
    if missing:
        out.update(_grab_sequential(path, missing))
    return out


def _grab_sequential(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    last = max(wanted)
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream_rot = _stream_rotation(stream)
        stats = DecodeStats()
        for frame in _frames(container, stream, stats):
            index = stats.decoded
            stats.decoded += 1
            if index in wanted:
                out[index] = to_rgb(frame, None, _snap(frame.rotation) or stream_rot)
            if index >= last:
                break
    return out
