"""The Python API: the same jobs as the command line, returning data instead of printing."""

from __future__ import annotations

from pathlib import Path

from framescore.apps import keyframes as _kf
from framescore.curve import Smoothing
from framescore.io.video import Sampling, iter_frames, probe
from framescore.models.registry import load_scorer
from framescore.preprocess import decode_size
from framescore.scoring import ScoredFrames, resolve_device, score_frames


def score_video(path: str | Path, model: str | None = None, weights: str | None = None,
                every: int = 1, fps: float | None = None, device: str = "auto",
                batch_size: int = 32) -> ScoredFrames:
    """Raw per-frame scores of a video (every ``every``-th frame, or ``fps`` a second)."""
    scorer = load_scorer(model, weights, device=resolve_device(device))
    info = probe(path)
    size = decode_size(scorer.spec, getattr(scorer, "device", None), (info.height, info.width))
    frames = iter_frames(path, Sampling(every=every, fps=fps), size=size)
    return score_frames(frames, scorer, batch_size)


def keyframes(path: str | Path, model: str | None = None, weights: str | None = None,
              every: int = 1, fps: float | None = None, top: int = 5, min_gap: float = 2.0,
              prominence: float = 0.02, smoothing: Smoothing = Smoothing(),
              device: str = "auto", batch_size: int = 32) -> _kf.Result:
    """Score, smooth and pick the key-frames of a video; nothing is written."""
    settings = _kf.Settings(model=model, weights=weights, device=device, batch_size=batch_size,
                            sampling=Sampling(every=every, fps=fps), smoothing=smoothing,
                            top=top, min_gap=min_gap, prominence=prominence)
    return _kf.analyze(path, settings)


def write_keyframes(result: _kf.Result, out_dir: str | Path | None = None,
                    force: bool = False) -> Path:
    """Write a result's frames, scores.csv, keyframes.json and curve.png; returns the folder."""
    out = Path(out_dir) if out_dir else _kf.default_out_dir(result.info.path)
    return _kf.write(result, out, force=force)
