"""Key-frames of a video: score the frames, smooth the curve, keep the peaks, write them out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from framescore import __version__
from framescore.curve import Smoothing, find_peaks, normalize, smooth_curve
from framescore.errors import MediaError
from framescore.io.video import DecodeStats, Sampling, VideoInfo, grab_frames, iter_frames, probe
from framescore.models.spec import ModelInfo, Scorer
from framescore.outputs import (
    csv_text,
    encode_jpeg,
    json_text,
    staged_dir,
    timestamp_name,
    write_bytes_atomic,
    write_text_atomic,
)
from framescore.plot import curve_png
from framescore.preprocess import decode_size
from framescore.scorers import load_scorer
from framescore.scoring import ScoredFrames, score_frames
from framescore.transitions import Signatures, transition_mask

SCHEMA = "framescore.keyframes/1"


@dataclass(frozen=True)
class Settings:
    """Everything that decides which frames come out (recorded in keyframes.json)."""

    model: str | None = None
    weights: str | None = None
    device: str = "auto"
    batch_size: int = 32
    sampling: Sampling | None = None    # None: the model's default (see default_sampling)
    smoothing: Smoothing = Smoothing()
    top: int = 5
    min_gap: float = 2.0
    prominence: float = 0.02


@dataclass
class Keyframe:
    rank: int
    index: int
    time: float
    raw: float
    smoothed: float
    file: str | None = None


@dataclass
class Result:
    """What a key-frames run found."""

    info: VideoInfo
    model: str
    scored: ScoredFrames
    smoothed: np.ndarray
    keyframes: list[Keyframe]
    stats: DecodeStats
    settings: Settings
    elapsed: float
    out_dir: Path | None = None
    extras: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The document written to keyframes.json (and printed by ``--json``)."""
        s = self.settings
        return {
            "schema": SCHEMA,
            "framescore": __version__,
            "input": self.info.to_dict(),
            "model": {"name": self.model, "weights": s.weights},
            "settings": {
                "every": s.sampling.every, "fps": s.sampling.fps,
                "smoothing": s.smoothing.to_dict(), "top": s.top, "min_gap": s.min_gap,
                "prominence": s.prominence, "batch_size": s.batch_size,
            },
            "decode": {"decoded": self.stats.decoded, "scored": len(self.scored),
                       "skipped_packets": self.stats.skipped_packets},
            "output": str(self.out_dir) if self.out_dir else None,
            "keyframes": [kf.__dict__ for kf in self.keyframes],
        }


def default_sampling(model: str) -> Sampling:
    """The sampling a model gets when none is asked for: every frame for a scorer as fast as
    decoding (``rules``), a few frames a second for learned models. Key-frames sit on a curve
    smoothed over seconds, so five samples a second find the same moments for a fraction of
    the work (a learned model on a CPU scores about 100 frames a second, a decoder 300-500)."""
    from framescore.models.registry import REGISTRY

    info = REGISTRY.get(model)
    fps = info.video_fps if info is not None else ModelInfo.video_fps
    return Sampling(fps=fps) if fps else Sampling()


def _estimate_kept(info: VideoInfo, sampling: Sampling) -> int | None:
    if sampling.fps and info.duration:
        return max(1, int(info.duration * sampling.fps))
    if info.frames:
        return max(1, -(-info.frames // sampling.every))
    return None


def analyze(path: str | Path, settings: Settings = Settings(), scorer: Scorer | None = None,
            on_start: Callable[[int | None], None] | None = None,
            on_batch: Callable[[int], None] | None = None) -> Result:
    """Score, smooth and pick key-frames of ``path``; writes nothing."""
    started = time.perf_counter()
    info = probe(path)
    if scorer is None:
        scorer = load_scorer(settings.model, settings.weights, device=settings.device)
    if settings.sampling is None:
        settings = replace(settings, sampling=default_sampling(scorer.name))
    if on_start:
        on_start(_estimate_kept(info, settings.sampling))
    stats = DecodeStats()
    size = decode_size(scorer.spec, getattr(scorer, "device", None), (info.height, info.width))
    sigs = Signatures()
    frames = iter_frames(path, settings.sampling, size=size, stats=stats)
    scored = score_frames(frames, scorer, settings.batch_size, on_batch=on_batch,
                          observe=sigs.add_batch)
    if len(scored) == 0:
        raise MediaError(f"{path}: no frame was kept for scoring")
    transition = transition_mask(scored.times, sigs)
    smoothed = smooth_curve(scored.scores, scored.times, settings.smoothing)
    peaks = find_peaks(scored.times, smoothed, scored.scores, top=settings.top,
                       min_gap=settings.min_gap, prominence=settings.prominence,
                       eligible=~transition)
    keyframes = [Keyframe(rank=i + 1, index=int(scored.indices[p]), time=float(scored.times[p]),
                          raw=float(scored.scores[p]), smoothed=float(smoothed[p]))
                 for i, p in enumerate(peaks)]
    return Result(info=info, model=scorer.name, scored=scored, smoothed=smoothed,
                  keyframes=keyframes, stats=stats, settings=settings,
                  elapsed=time.perf_counter() - started,
                  extras={"peaks": peaks, "transition": transition})


def write(result: Result, out_dir: str | Path, force: bool = False) -> Path:
    """Write frames, scores.csv, keyframes.json and curve.png into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    path = result.info.path
    wanted = {kf.index: kf.time for kf in result.keyframes}
    with staged_dir(out_dir, force=force) as tmp:
        images = grab_frames(path, wanted)
        for kf in result.keyframes:
            image = images.get(kf.index)
            if image is None:
                continue
            name = f"{kf.rank:02d}_{timestamp_name(kf.time)}.jpg"
            write_bytes_atomic(tmp / name, encode_jpeg(image))
            kf.file = name
        peak_set = {kf.index: kf.rank for kf in result.keyframes}
        sc = result.scored
        rows = [(int(i), f"{t:.6f}", f"{r:.6g}", f"{s:.6f}", int(tr), peak_set.get(int(i), ""))
                for i, t, r, s, tr in zip(sc.indices, sc.times, sc.scores, result.smoothed,
                                          result.extras["transition"], strict=True)]
        header = ["frame", "time_s", "raw", "smoothed", "transition", "peak"]
        write_text_atomic(tmp / "scores.csv", csv_text(header, rows))
        peaks = result.extras["peaks"]
        thumbs = {p: images[int(sc.indices[p])] for p in peaks if int(sc.indices[p]) in images}
        title = f"{path.name} — {result.model}, {len(sc)} frames scored"
        write_bytes_atomic(tmp / "curve.png",
                           curve_png(sc.times, normalize(sc.scores), result.smoothed, peaks,
                                     thumbs, title))
        result.out_dir = out_dir
        write_text_atomic(tmp / "keyframes.json", json_text(result.summary()))
    return out_dir


def default_out_dir(path: str | Path) -> Path:
    """``<video stem>.framescore/`` beside the video."""
    path = Path(path)
    return path.with_name(path.stem + ".framescore")
