"""Key-frames of a video: score the frames, find the shots, smooth each shot's curve, choose
frames that cover the video, write them out."""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from framescore import __version__
from framescore.apps.gathered import Gathered
from framescore.curve import Smoothing, normalize, smooth_shots
from framescore.errors import MediaError
from framescore.io.video import DecodeStats, Sampling, VideoInfo, grab_frames, probe
from framescore.models.spec import ModelInfo, Scorer
from framescore.outputs import (
    csv_text,
    display_name,
    encode_jpeg,
    json_text,
    staged_dir,
    timestamp_name,
    write_bytes_atomic,
    write_text_atomic,
)
from framescore.preprocess import frame_converter, video_frames
from framescore.scorers import load_scorer, provenance
from framescore.scoring import ScoredFrames, score_frames
from framescore.select import Candidates, Selection, select
from framescore.shots import (
    Boundary,
    Shot,
    ShotDetector,
    ShotSettings,
    image_thumbs,
    shots_between,
)
from framescore.sidecar import Sidecar

SCHEMA = "framescore.keyframes/1"
# what smoothing (filterpy), selection (scipy.signal) and the plot (matplotlib) import: slow
# imports, made in the helper process (or a thread) while the video decodes
SIDECAR_IMPORTS = ("filterpy.kalman", "scipy.signal", "framescore.plot")

Scan = Literal["auto", "fast", "full"]
# ``--scan auto`` takes the fast path for videos at least this long (seconds). Infinite:
# on every 10-min 1080p clip measured (shots of 6 s and of 30-45 s, x264 defaults and a 1.2-s
# GOP) it decoded 52-88 % of the frames and was no measurable win in wall time, so ``auto``
# means full (docs/keyframes.md, "Long videos"; bench/RESULTS.md)
FAST_MIN_SECONDS = float("inf")


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
    per_shot: bool = False   # the best frame of every shot (``top`` is then ignored)
    scan: Scan = "auto"      # fast: key-frames first; full: every frame; auto: by length


@dataclass
class Keyframe:
    rank: int
    index: int
    time: float
    raw: float
    smoothed: float
    shot: int
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
    shots: list[Shot] = field(default_factory=list)
    boundaries: list[Boundary] = field(default_factory=list)
    shot_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # per sample
    # per sample: inside a fade or dissolve, or beside a cut (never a key-frame)
    transition: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    selection: Selection | None = None
    candidates: Candidates | None = None
    out_dir: Path | None = None
    # which path ran ("fast" or "exhaustive"), and why not the fast one when it was asked
    scan: dict = field(default_factory=lambda: {"mode": "exhaustive"})
    # what scored the frames: runtime, source file, device (framescore.scorers.provenance)
    scorer: dict = field(default_factory=dict)

    def shot_rows(self) -> list[dict]:
        """One row per shot: its frames and times, and its best frame."""
        sc, best = self.scored, (self.selection.shot_best if self.selection else {})
        rows = []
        for shot in self.shots:
            r = best.get(shot.number)
            rows.append({
                "shot": shot.number, "start": shot.start, "end": shot.end,
                "start_time": round(shot.start_time, 6), "end_time": round(shot.end_time, 6),
                "best_index": None if r is None else int(sc.indices[r]),
                "best_time": None if r is None else round(float(sc.times[r]), 6),
                "best_raw": None if r is None else float(sc.scores[r]),
            })
        return rows

    def summary(self) -> dict:
        """The document written to keyframes.json (and printed by ``--json``)."""
        s = self.settings
        sel = self.selection
        return {
            "schema": SCHEMA,
            "framescore": __version__,
            "input": self.info.to_dict(),
            "model": {"name": self.model, "weights": s.weights, **self.scorer},
            "settings": {
                "every": s.sampling.every, "fps": s.sampling.fps,
                "smoothing": s.smoothing.to_dict(), "top": s.top, "min_gap": s.min_gap,
                "prominence": s.prominence, "per_shot": s.per_shot,
                "batch_size": s.batch_size, "scan": s.scan,
            },
            "decode": self.stats.to_dict(scored=len(self.scored)),
            "scan": self.scan,
            "output": str(self.out_dir) if self.out_dir else None,
            "selection": {
                "asked": None if s.per_shot else s.top,
                "returned": len(self.keyframes),
                "reason": sel.reason if sel else None,
            },
            "shots": self.shot_rows(),
            "transitions": [b.to_dict() for b in self.boundaries],
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


def preload(*modules: str) -> threading.Thread:
    """Import ``modules`` in a background thread while the video decodes.

    The Kalman smoother (filterpy, whose package pulls in scipy.stats) and the plot
    (matplotlib) take about 1.3 and 0.5 s to import on a small CPU, as long as a short clip
    takes to score; imported beside the decoder instead of after it, most of that wait goes.
    A later ``import`` of the same module waits for this one to finish (the import lock), and
    an error here is simply raised again there.
    """
    def work() -> None:
        for name in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    thread = threading.Thread(target=work, name="framescore-preload", daemon=True)
    thread.start()
    return thread


def analyze(path: str | Path, settings: Settings = Settings(), scorer: Scorer | None = None,
            on_start: Callable[[int | None], None] | None = None,
            on_batch: Callable[[int], None] | None = None,
            sidecar: Sidecar | None = None) -> Result:
    """Score, smooth and pick key-frames of ``path``; writes nothing.

    With a ``sidecar`` (:class:`framescore.sidecar.Sidecar`, the command line's), filterpy is
    imported and the curve smoothed in that process while this one decodes; without one, the
    slow imports run in a thread here.
    """
    started = time.perf_counter()
    if sidecar is not None and sidecar.active:
        sidecar.warm(*SIDECAR_IMPORTS)
    else:
        preload(*SIDECAR_IMPORTS)
    info = probe(path)
    if scorer is None:
        scorer = load_scorer(settings.model, settings.weights, device=settings.device)
    if settings.sampling is None:
        settings = replace(settings, sampling=default_sampling(scorer.name))
    source = (info.height, info.width)
    gathered, stats = None, DecodeStats()
    note, spent = None, 0
    if choose_scan(settings.scan, info) == "fast":
        from framescore.apps.fastscan import AUTO_MAX_SHARE, NotSeekable, gather_fast

        if on_start:
            on_start(None)   # how many frames get scored is known as the passes go
        try:
            gathered = gather_fast(path, settings.sampling, scorer,
                                   frame_converter(scorer.spec, source), settings.batch_size,
                                   stats, info.fps, on_batch=on_batch,
                                   max_share=AUTO_MAX_SHARE if settings.scan == "auto"
                                   else None)
        except NotSeekable as exc:
            note = f"no fast scan ({exc}): every frame decoded"
            spent = stats.decoded
            stats = DecodeStats()
    elif on_start:
        on_start(_estimate_kept(info, settings.sampling))
    if gathered is None:
        gathered = _gather_exhaustive(path, info, settings, scorer, stats, on_batch)
        if note:
            gathered.scan["note"] = note
            gathered.scan["decoded_before"] = spent
    gathered.scan["decoded"] = stats.decoded
    scored, boundaries, shots = gathered.scored, gathered.boundaries, gathered.shots
    if len(scored) == 0:
        raise MediaError(f"{path}: no frame was kept for scoring")
    shot_of, in_transition = _place(scored.indices, shots, boundaries)
    thumb_rows = gathered.thumbs
    flat = thumb_rows.std(axis=1) < ShotSettings().flat_std
    # smoothing (filterpy) and selection (scipy.signal) run in the helper process, which
    # imported them, and matplotlib for the plot, while this one decoded
    args = (scored.scores, scored.times, shot_of, ~in_transition & ~flat, thumb_rows, settings)
    if sidecar is not None:
        candidates, selection = sidecar.call(_choose, *args)
    else:
        candidates, selection = _choose(*args)
    smoothed = candidates.smoothed
    keyframes = [Keyframe(rank=i + 1, index=int(scored.indices[p]), time=float(scored.times[p]),
                          raw=float(scored.scores[p]), smoothed=float(smoothed[p]),
                          shot=int(shot_of[p]))
                 for i, p in enumerate(selection.picks)]
    return Result(info=info, model=scorer.name, scored=scored, smoothed=smoothed,
                  keyframes=keyframes, stats=stats, settings=settings,
                  elapsed=time.perf_counter() - started, shots=shots, boundaries=boundaries,
                  shot_of=shot_of, transition=in_transition, selection=selection,
                  candidates=candidates, scan=gathered.scan, scorer=provenance(scorer))


def choose_scan(asked: Scan, info: VideoInfo) -> Literal["fast", "full"]:
    """``auto``: the fast path for videos of ``FAST_MIN_SECONDS`` or more."""
    if asked != "auto":
        return asked
    return "fast" if (info.duration or 0.0) >= FAST_MIN_SECONDS else "full"


def _gather_exhaustive(path: str | Path, info: VideoInfo, settings: Settings, scorer: Scorer,
                       stats: DecodeStats,
                       on_batch: Callable[[int], None] | None) -> Gathered:
    """Decode every frame: the shot detector sees each, the sampled ones are scored."""
    detector = ShotDetector(fps=info.fps or 25.0)
    thumbs: list[np.ndarray] = []
    frames = video_frames(path, scorer.spec, settings.sampling, stats=stats,
                          on_decoded=detector.add_frame, source=(info.height, info.width))
    scored = score_frames(frames, scorer, settings.batch_size, on_batch=on_batch,
                          observe=lambda images: (thumbs.append(image_thumbs(images)),
                                                  detector.flush()))
    boundaries = detector.boundaries()
    shots = shots_between(boundaries, detector.indices, detector.times)
    return Gathered(scored=scored, thumbs=np.concatenate(thumbs) if thumbs
                    else np.zeros((0, 1), np.float32), boundaries=boundaries, shots=shots,
                    scan={"mode": "exhaustive"})


def _choose(scores: np.ndarray, times: np.ndarray, shot_of: np.ndarray, eligible: np.ndarray,
            thumbs: np.ndarray, settings: Settings) -> tuple[Candidates, Selection]:
    """The per-shot smoothed curve and the key-frames chosen on it."""
    smoothed = smooth_shots(scores, times, shot_of, settings.smoothing)
    candidates = Candidates(times=times, raw=scores, smoothed=smoothed, shot=shot_of,
                            eligible=eligible, thumbs=thumbs)
    selection = select(candidates, None if settings.per_shot else settings.top,
                       settings.min_gap, settings.prominence, per_shot=settings.per_shot)
    return candidates, selection


def _place(indices: np.ndarray, shots: list[Shot],
           boundaries: list[Boundary]) -> tuple[np.ndarray, np.ndarray]:
    """Per scored frame: its shot number (0 inside a transition), and whether it lies in a
    transition (a fade or dissolve, or right beside a cut)."""
    shot_of = np.zeros(len(indices), dtype=np.int64)
    for shot in shots:
        shot_of[(indices >= shot.start) & (indices <= shot.end)] = shot.number
    in_transition = shot_of == 0
    for b in boundaries:
        if b.kind == "cut":  # the frames on either side of a cut: encoders smear them
            in_transition |= (indices >= b.start - 1) & (indices <= b.start)
    return shot_of, in_transition


def write(result: Result, out_dir: str | Path, force: bool = False,
          sidecar: Sidecar | None = None) -> Path:
    """Write frames, scores.csv, keyframes.json and curve.png into ``out_dir`` (atomically);
    the plot is drawn in ``sidecar`` when there is one."""
    out_dir = Path(out_dir)
    path = result.info.path
    wanted = {kf.index: kf.time for kf in result.keyframes}
    with staged_dir(out_dir, force=force) as tmp:
        images = grab_frames(path, wanted)
        sc = result.scored
        picks = [(kf.rank, int(p), images.get(kf.index))
                 for kf, p in zip(result.keyframes, result.selection.picks, strict=True)]
        title = (f"{display_name(path.name)} — {result.model}, {len(sc)} frames scored, "
                 f"{len(result.shots)} shots")
        plot_args = (sc.times, normalize(sc.scores), result.smoothed, result.shot_of,
                     [(b.kind, b.start_time, b.end_time) for b in result.boundaries], picks,
                     title)
        # the plot is drawn (in the helper process, when there is one) while the rest is written
        png = (sidecar.start(_curve_png, *plot_args) if sidecar is not None
               else lambda: _curve_png(*plot_args))
        for kf in result.keyframes:
            image = images.get(kf.index)
            if image is None:
                continue
            name = f"{kf.rank:02d}_{timestamp_name(kf.time)}.jpg"
            write_bytes_atomic(tmp / name, encode_jpeg(image))
            kf.file = name
        peak_set = {kf.index: kf.rank for kf in result.keyframes}
        rows = [(int(i), f"{t:.6f}", f"{r:.6g}", f"{s:.6f}", int(sh), int(tr),
                 peak_set.get(int(i), ""))
                for i, t, r, s, sh, tr in zip(sc.indices, sc.times, sc.scores, result.smoothed,
                                              result.shot_of, result.transition,
                                              strict=True)]
        header = ["frame", "time_s", "raw", "smoothed", "shot", "transition", "peak"]
        write_text_atomic(tmp / "scores.csv", csv_text(header, rows))
        shot_rows = result.shot_rows()
        write_text_atomic(tmp / "shots.csv", csv_text(
            ["shot", "start_frame", "end_frame", "start_time", "end_time", "best_frame",
             "best_time", "best_score"],
            [(r["shot"], r["start"], r["end"], f"{r['start_time']:.6f}", f"{r['end_time']:.6f}",
              "" if r["best_index"] is None else r["best_index"],
              "" if r["best_time"] is None else f"{r['best_time']:.6f}",
              "" if r["best_raw"] is None else f"{r['best_raw']:.6g}") for r in shot_rows]))
        write_bytes_atomic(tmp / "curve.png", png())
        result.out_dir = out_dir
        write_text_atomic(tmp / "keyframes.json", json_text(result.summary()))
    return out_dir


def _curve_png(*args: object) -> bytes:
    from framescore.plot import curve_png  # matplotlib only when a plot is drawn

    return curve_png(*args)


def default_out_dir(path: str | Path) -> Path:
    """``<video stem>.framescore/`` beside the video."""
    path = Path(path)
    return path.with_name(path.stem + ".framescore")
