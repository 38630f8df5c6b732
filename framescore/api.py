"""The Python API: the same jobs as the command line, returning data instead of printing.

Every function builds its scorer in one place (:func:`scorer`, i.e.
:func:`framescore.scorers.load_scorer`) and hands it to the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from framescore.apps import bestshot as _bestshot
from framescore.apps import crop as _crop
from framescore.apps import keyframes as _kf
from framescore.apps import rank as _rank
from framescore.curve import Smoothing
from framescore.io.video import Sampling, probe
from framescore.models.spec import Scorer
from framescore.preprocess import video_frames
from framescore.scorers import load_scorer
from framescore.scoring import ScoredFrames, score_frames


def scorer(model: str | None = None, weights: str | None = None,
           device: str = "auto") -> Scorer:
    """The scorer of ``model`` (a registry name or an ``.onnx`` file; the default model when
    None) with ``weights`` on ``device``: the fastest verified runtime for the device."""
    return load_scorer(model, weights, device=device)


def score_video(path: str | Path, model: str | None = None, weights: str | None = None,
                every: int = 1, fps: float | None = None, device: str = "auto",
                batch_size: int = 32) -> ScoredFrames:
    """Raw per-frame scores of a video (every ``every``-th frame, or ``fps`` a second)."""
    info = probe(path)
    sc = scorer(model, weights, device)
    frames = video_frames(path, sc.spec, Sampling(every=every, fps=fps),
                          source=(info.height, info.width))
    return score_frames(frames, sc, batch_size)


def keyframes(path: str | Path, model: str | None = None, weights: str | None = None,
              every: int | None = None, fps: float | None = None, top: int = 5,
              min_gap: float = 2.0, prominence: float = 0.02,
              smoothing: Smoothing = Smoothing(), device: str = "auto",
              batch_size: int = 32, per_shot: bool = False) -> _kf.Result:
    """Score, smooth and pick the key-frames of a video; nothing is written.

    Without ``every`` or ``fps`` the model's default sampling applies (every frame for
    ``rules``, 5 frames a second for learned models). ``per_shot`` gives the best frame of
    every shot instead of ``top`` frames."""
    sampling = None if every is None and fps is None else Sampling(every=every or 1, fps=fps)
    settings = _kf.Settings(model=model, weights=weights, device=device, batch_size=batch_size,
                            sampling=sampling, smoothing=smoothing,
                            top=top, min_gap=min_gap, prominence=prominence,
                            per_shot=per_shot)
    return _kf.analyze(path, settings, scorer=scorer(model, weights, device))


def write_keyframes(result: _kf.Result, out_dir: str | Path | None = None,
                    force: bool = False) -> Path:
    """Write a result's frames, scores.csv, keyframes.json and curve.png; returns the folder."""
    out = Path(out_dir) if out_dir else _kf.default_out_dir(result.info.path)
    return _kf.write(result, out, force=force)


def best_shot(paths: Sequence[str | Path], model: str | None = None,
              weights: str | None = None, top: int | None = None, group: bool = False,
              every: int = 1, device: str = "auto", batch_size: int = 32) -> _bestshot.Result:
    """Rank the photos (folders, files, globs) or the frames of one short clip; best first."""
    settings = _bestshot.Settings(model=model, weights=weights, device=device,
                                  batch_size=batch_size, top=top, group=group, every=every)
    return _bestshot.best_shot(paths, settings, scorer=scorer(model, weights, device))


def rank(folder: str | Path, out_dir: str | Path, model: str | None = None,
         weights: str | None = None, device: str = "auto", batch_size: int = 32,
         cache: bool = True, force: bool = False) -> _rank.Result:
    """Sort a photo collection by score; writes ranking.csv, index.html and thumbs/."""
    sc = scorer(model, weights, device)
    return _rank.rank_folder(folder, out_dir, sc, _rank.weights_id(sc.name, weights),
                             batch_size=batch_size,
                             cache_path=_rank.default_cache_path() if cache else None,
                             force=force)


def crop(path: str | Path, aspect: str, model: str | None = None, weights: str | None = None,
         search: str = "random", candidates: int = 1000, seed: int = 0,
         device: str = "auto") -> _crop.CropResult:
    """The best crop of a photo for an aspect ratio like ``"16:9"``; writes nothing."""
    return _crop.best_crop(path, aspect, scorer(model, weights, device), search=search,
                           candidates=candidates, seed=seed)
