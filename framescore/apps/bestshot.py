"""Best shot: score every candidate of a burst (photos, or the frames of a short clip) and keep
the best, as AROD's "best handy shot" does; with grouping, the best of each burst in a folder.

Photos are decoded in a background thread (``framescore.scoring.prefetch``), brought to the
model's input by ``framescore.preprocess.view`` and scored in batches; a clip goes through
``iter_frames`` + ``score_frames`` like the key-frames command. Candidates are ranked by score
(higher is better; ties by name). The only extra reported as uncertainty is ``std``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from framescore import __version__
from framescore.apps.groups import GAP_SECONDS, MIN_SIMILARITY, group_bursts, signature
from framescore.errors import MediaError, OutputError, UsageError
from framescore.io.images import Picture, file_time, find_images, load_image, skipped_message
from framescore.io.video import VIDEO_SUFFIXES, Sampling
from framescore.models.spec import InputSpec, Scorer
from framescore.outputs import encode_jpeg, timestamp_name, write_bytes_atomic
from framescore.preprocess import view
from framescore.scorers import provenance
from framescore.scoring import prefetch

SCHEMA = "framescore.bestshot/1"


def input_side(spec: InputSpec) -> int | None:
    """The short side a photo must keep for ``spec`` (None: full resolution, for patches)."""
    return None if spec.view == "patch" else max(spec.height, spec.width)


@dataclass
class ScoredImages:
    """Per-photo results of a scoring pass, in the order the photos were given (minus skips)."""

    paths: list[Path]
    scores: np.ndarray
    extras: dict[str, np.ndarray]
    aux: list[Any]
    skipped: list[tuple[Path, str]]


def _decoded(paths: Sequence[Path], spec: InputSpec, min_side: int | None,
             prepare: Callable[[Picture], Any] | None, skipped: list[tuple[Path, str]],
             batch_size: int) -> Iterator[tuple[int, list[tuple[Path, np.ndarray, Any]]]]:
    """Batches of ``(path, model view, prepare(picture))`` with the number of files consumed."""
    batch: list[tuple[Path, np.ndarray, Any]] = []
    consumed = 0
    for path in paths:
        consumed += 1
        try:
            picture = load_image(path, min_side)
        except MediaError as exc:
            skipped.append((path, str(exc).removeprefix(f"{path}: ")))
            continue
        extra = prepare(picture) if prepare is not None else None
        batch.append((path, view(picture.image, spec), extra))
        if len(batch) == batch_size:
            yield consumed, batch
            batch, consumed = [], 0
    if batch or consumed:
        yield consumed, batch


def score_images(paths: Sequence[Path], scorer: Scorer, batch_size: int = 32,
                 prepare: Callable[[Picture], Any] | None = None,
                 min_side: int | None = None,
                 on_batch: Callable[[int], None] | None = None) -> ScoredImages:
    """Score photo files in batches while the next batch decodes in a background thread.

    ``prepare(picture)`` runs in the decoding thread on each decoded photo (thumbnails,
    signatures...); its results come back in ``aux``. ``min_side`` defaults to what the
    model's input needs. Unreadable files are collected in ``skipped``; memory holds at most
    two batches of model inputs plus per-photo scalars.
    """
    min_side = min_side if min_side is not None else input_side(scorer.spec)
    skipped: list[tuple[Path, str]] = []
    kept: list[Path] = []
    aux: list[Any] = []
    scores: list[np.ndarray] = []
    extras: dict[str, list[np.ndarray]] = {}
    for consumed, batch in prefetch(_decoded(paths, scorer.spec, min_side, prepare, skipped,
                                             batch_size)):
        if batch:
            out = scorer.score_batch(np.stack([b[1] for b in batch]))
            scores.append(np.asarray(out["score"], dtype=np.float64).reshape(-1))
            for key, value in out.items():
                value = np.asarray(value)
                if key != "score" and value.ndim == 1:
                    extras.setdefault(key, []).append(value.astype(np.float64))
            kept.extend(b[0] for b in batch)
            aux.extend(b[2] for b in batch)
        if on_batch is not None:
            on_batch(consumed)
    return ScoredImages(paths=kept, scores=np.concatenate(scores) if scores else np.zeros(0),
                        extras={k: np.concatenate(v) for k, v in extras.items()}, aux=aux,
                        skipped=skipped)


@dataclass
class Candidate:
    """One photo or frame, with its place in the ranking (within its burst when grouped)."""

    rank: int
    path: Path
    score: float
    std: float | None = None
    time: float | None = None       # frame time (clips) in seconds
    index: int | None = None        # decoded frame index (clips)
    burst: int | None = None         # 1, 2, ... with grouping
    extras: dict[str, float] = field(default_factory=dict)
    copied_to: str | None = None

    def label(self) -> str:
        if self.time is None:
            return str(self.path)
        m, s = divmod(self.time, 60.0)
        return f"{int(m)}:{s:06.3f} (frame {self.index})"

    def to_dict(self) -> dict:
        return {"rank": self.rank, "file": str(self.path), "time": self.time,
                "frame": self.index, "score": self.score, "std": self.std, "burst": self.burst,
                "extras": self.extras, "copied_to": self.copied_to}


@dataclass(frozen=True)
class Settings:
    """What decides the ranking (recorded in the JSON output)."""

    model: str | None = None
    weights: str | None = None
    device: str = "auto"
    batch_size: int = 32
    top: int | None = None          # None: 5, or 1 per burst with grouping
    group: bool = False
    gap: float = GAP_SECONDS
    min_similarity: float = MIN_SIMILARITY
    every: int = 1                  # clips: score every n-th frame

    @property
    def keep(self) -> int:
        return self.top if self.top is not None else (1 if self.group else 5)


@dataclass
class Result:
    """Every candidate, ranked (per burst when grouped), and what was passed over."""

    model: str
    kind: str                       # "photos" or "video"
    candidates: list[Candidate]
    skipped: list[tuple[Path, str]]
    settings: Settings
    elapsed: float
    source: Path | None = None      # the clip, for kind == "video"
    # what scored: runtime, source file, device (framescore.scorers.provenance)
    scorer: dict = field(default_factory=dict)

    @property
    def bursts(self) -> int:
        return len({c.burst for c in self.candidates}) if self.settings.group else 1

    def best(self) -> list[Candidate]:
        """The top ``settings.keep`` of the ranking (of each burst when grouped)."""
        return [c for c in self.candidates if c.rank <= self.settings.keep]

    def summary(self) -> dict:
        s = self.settings
        return {
            "schema": SCHEMA, "framescore": __version__, "kind": self.kind,
            "source": str(self.source) if self.source else None,
            "model": {"name": self.model, "weights": s.weights, **self.scorer},
            "settings": {"top": s.keep, "group": s.group, "gap": s.gap,
                         "min_similarity": s.min_similarity, "every": s.every},
            "bursts": self.bursts, "scored": len(self.candidates),
            "best": [c.to_dict() for c in self.best()],
            "ranking": [c.to_dict() for c in self.candidates],
            "skipped": [{"file": str(p), "reason": why} for p, why in self.skipped],
        }


def _ranked(cands: list[Candidate]) -> list[Candidate]:
    by_burst: dict[int | None, list[Candidate]] = {}
    for c in cands:
        by_burst.setdefault(c.burst, []).append(c)
    out: list[Candidate] = []
    for burst in sorted(by_burst, key=lambda b: -1 if b is None else b):
        group = sorted(by_burst[burst], key=lambda c: (-c.score, str(c.path), c.time or 0.0))
        for rank, c in enumerate(group, start=1):
            c.rank = rank
        out.extend(group)
    return out


def _std(extras: dict[str, np.ndarray], i: int) -> float | None:
    return float(extras["std"][i]) if "std" in extras else None


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _make_scorer(settings: Settings) -> Scorer:
    from framescore.scorers import load_scorer

    return load_scorer(settings.model, settings.weights, device=settings.device)


def _photo_candidates(paths: Sequence[str | Path], settings: Settings, scorer: Scorer,
                      on_start: Callable[[int | None], None] | None,
                      on_batch: Callable[[int], None] | None
                      ) -> tuple[list[Candidate], list[tuple[Path, str]]]:
    listing = find_images(paths)
    if not listing.files:
        where = ", ".join(str(p) for p in paths)
        what = "no image files" if not listing.skipped else "no image files (only other files)"
        raise MediaError(f"{where}: {what}")
    if on_start:
        on_start(len(listing.files))

    def prepare(picture: Picture) -> tuple[float, Any]:
        taken = picture.taken if picture.taken is not None else file_time(picture.path)
        return taken, signature(picture.image)

    scored = score_images(listing.files, scorer, settings.batch_size,
                          prepare=prepare if settings.group else None, on_batch=on_batch)
    skipped = listing.skipped + scored.skipped
    if not scored.paths:
        raise MediaError(f"no image could be read ({skipped_message(skipped)})")
    bursts: list[int | None] = [None] * len(scored.paths)
    if settings.group:
        labels = group_bursts([a[0] for a in scored.aux], [a[1] for a in scored.aux],
                              gap=settings.gap, min_similarity=settings.min_similarity)
        bursts = [1 + g for g in labels]
    cands = [Candidate(rank=0, path=p, score=float(scored.scores[i]), std=_std(scored.extras, i),
                       burst=bursts[i],
                       extras={k: float(v[i]) for k, v in scored.extras.items()})
             for i, p in enumerate(scored.paths)]
    return cands, skipped


def _video_candidates(path: Path, settings: Settings, scorer: Scorer,
                      on_start: Callable[[int | None], None] | None,
                      on_batch: Callable[[int], None] | None) -> list[Candidate]:
    from framescore.io.video import probe
    from framescore.preprocess import video_frames
    from framescore.scoring import score_frames

    info = probe(path)
    if on_start:
        on_start(-(-info.frames // settings.every) if info.frames else None)
    # the key-frames job's path: the same resize and view on every device
    frames = video_frames(path, scorer.spec, Sampling(every=settings.every),
                          source=(info.height, info.width))
    scored = score_frames(frames, scorer, settings.batch_size, on_batch=on_batch)
    if len(scored) == 0:
        raise MediaError(f"{path}: no frame was scored")
    scalar = {k: v for k, v in scored.extras.items() if v.ndim == 1}
    return [Candidate(rank=0, path=path, score=float(scored.scores[i]), std=_std(scalar, i),
                      time=float(scored.times[i]), index=int(scored.indices[i]),
                      extras={k: float(v[i]) for k, v in scalar.items()})
            for i in range(len(scored))]


def best_shot(paths: Sequence[str | Path], settings: Settings = Settings(),
              scorer: Scorer | None = None,
              on_start: Callable[[int | None], None] | None = None,
              on_batch: Callable[[int], None] | None = None) -> Result:
    """Rank the candidates that ``paths`` name (photos, folders, globs, or one clip)."""
    if not paths:
        raise UsageError("give at least one photo, folder, glob or clip")
    started = time.perf_counter()
    clips = [p for p in paths if is_video(p) and Path(p).is_file()]
    if clips and (len(paths) > 1 or settings.group):
        raise UsageError("a clip must be the only PATH, without --group "
                         "(its frames are the candidates)")
    scorer = scorer or _make_scorer(settings)
    if clips:
        cands = _video_candidates(Path(clips[0]), settings, scorer, on_start, on_batch)
        skipped: list[tuple[Path, str]] = []
        kind, source = "video", Path(clips[0])
    else:
        cands, skipped = _photo_candidates(paths, settings, scorer, on_start, on_batch)
        kind, source = "photos", None
    return Result(model=scorer.name, kind=kind, candidates=_ranked(cands), skipped=skipped,
                  settings=settings, elapsed=time.perf_counter() - started, source=source,
                  scorer=provenance(scorer))


def _target_names(best: list[Candidate]) -> list[str]:
    """File names for the copies: the photo's own name (made unique), or stem + frame time."""
    names: list[str] = []
    taken: set[str] = set()
    for c in best:
        name = c.path.name if c.time is None else f"{c.path.stem}_{timestamp_name(c.time)}.jpg"
        stem, suffix = os.path.splitext(name)
        k = 2
        while name.lower() in taken:
            name, k = f"{stem}-{k}{suffix}", k + 1
        taken.add(name.lower())
        names.append(name)
    return names


def copy_best(result: Result, dest: str | Path, force: bool = False) -> list[Path]:
    """Write the best candidates into ``dest``: photos copied byte for byte (EXIF and all,
    modification time kept), clip frames as full-resolution JPEGs. Nothing is written when
    one of the targets exists already and ``force`` is not given."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"{dest}: exists and is not a folder")
    best = result.best()
    targets = [dest / n for n in _target_names(best)]
    clash = [t for t in targets if t.exists()]
    if clash and not force:
        raise OutputError(f"{clash[0]}: exists already (use --force to replace it)")
    frames: dict[int, np.ndarray] = {}
    if result.kind == "video" and result.source is not None:
        from framescore.io.video import grab_frames

        frames = grab_frames(result.source, {c.index: c.time for c in best
                                             if c.index is not None and c.time is not None})
    written = []
    for c, target in zip(best, targets, strict=True):
        if c.time is not None:
            image = frames.get(c.index) if c.index is not None else None
            if image is None:
                continue
            write_bytes_atomic(target, encode_jpeg(image, quality=95), force=True)
        else:
            try:
                data = c.path.read_bytes()
                stat = c.path.stat()
            except OSError as exc:
                raise OutputError(f"{c.path}: cannot read it to copy ({exc.strerror})") from None
            write_bytes_atomic(target, data, force=True)
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        c.copied_to = str(target)
        written.append(target)
    return written
