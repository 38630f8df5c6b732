"""Held-out photos x fault types: how often a scorer ranks the less damaged image first.

For every held-out photo (loaded as :func:`framescore.train.hints.load_photo` does for
training: long side 480), every fault of :data:`framescore.train.faults.FAULTS` and ``repeats``
independent draws, the photo is rendered at the severities ``(0, 1/3, 2/3, 1)``; 0 is the
clean photo. Repeat 0 takes the whole photo; every further repeat takes a view of its own, as
training's :func:`framescore.train.hints.variant` does (mirrored at random, a 90–100 % crop),
and its own draw of the fault's random choices (blur path, crop corner, noise...). So faults
with no random choice (exposure, contrast, colour, fades) also get a different image at every
repeat, not the same renders counted twice. Every pair of two different severities of one
draw is a test pair (6 per draw), and it is ranked correctly when the less damaged image
scores higher; an exact tie counts one half.

    accuracy(fault) = (correct + ½ ties) / pairs of that fault
    overall         = the same over all pairs (every fault has the same number of pairs)

Each scorer sees every render through its own input view (``framescore.preprocess.view``), so
a model at 160 px and the rules scorer at 256 px judge the same renders. The draws are
seeded by ``(seed, photo hash, fault, repeat)``, so a table is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import numpy as np

from framescore.errors import DataError
from framescore.hashing import sha256_of
from framescore.models.spec import Scorer
from framescore.preprocess import view
from framescore.train import faults as faultlib
from framescore.train import hints

SEVERITIES = (0.0, 1 / 3, 2 / 3, 1.0)


@dataclass
class FaultTable:
    """Pair-ranking results of one scorer, per fault."""

    name: str
    correct: dict[str, float] = field(default_factory=dict)   # ties count ½
    pairs: dict[str, int] = field(default_factory=dict)

    def accuracy(self, fault: str) -> float:
        return self.correct[fault] / self.pairs[fault] if self.pairs.get(fault) else float("nan")

    @property
    def overall(self) -> float:
        total = sum(self.pairs.values())
        return sum(self.correct.values()) / total if total else float("nan")

    def as_dict(self) -> dict:
        return {"model": self.name, "overall": self.overall, "pairs": sum(self.pairs.values()),
                "per_fault": {f: {"accuracy": self.accuracy(f), "pairs": self.pairs[f]}
                              for f in self.pairs}}


@dataclass(frozen=True)
class Draw:
    """One photo x fault x repeat: the renders at each severity (clean first)."""

    photo: str
    fault: str
    repeat: int
    images: tuple[np.ndarray, ...]


def _draw_seed(seed: int, photo_sha: str, fault: str, repeat: int) -> int:
    digest = hashlib.sha256(f"eval:{seed}:{photo_sha}:{fault}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def draws(photos: Sequence[str | Path], seed: int = 0, repeats: int = 2,
          fault_names: Sequence[str] | None = None, long_side: int = 480,
          severities: Sequence[float] = SEVERITIES) -> Iterator[Draw]:
    """Render the evaluation set, one draw at a time (photos are loaded once each)."""
    names = list(fault_names) if fault_names else list(faultlib.FAULTS)
    if len(severities) < 2 or list(severities) != sorted(severities) or severities[0] != 0:
        raise ValueError("severities must start at 0 and increase")
    for path in photos:
        sha = sha256_of(path)
        photo = hints.load_photo(path, long_side)
        for fault in names:
            for rep in range(repeats):
                s = _draw_seed(seed, sha, fault, rep)
                base = photo if rep == 0 else hints.variant(
                    photo, np.random.default_rng(_draw_seed(seed, sha, f"view:{fault}", rep)))
                images = tuple(base if sev == 0 else faultlib.apply(fault, base, sev, s)
                               for sev in severities)
                yield Draw(str(path), fault, rep, images)


def _score(scorer: Scorer, images: Sequence[np.ndarray]) -> np.ndarray:
    batch = np.stack([view(im, scorer.spec) for im in images])
    return np.asarray(scorer.score_batch(batch)["score"], dtype=np.float64).reshape(-1)


def ranked_pairs(scores: Sequence[float]) -> tuple[float, int]:
    """(pairs ranked right, pairs) of one draw's scores, clean first then rising severity:
    every pair of two renders, right when the less damaged one scores higher; a tie counts ½."""
    correct, n = 0.0, 0
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            n += 1
            if scores[i] > scores[j]:
                correct += 1.0
            elif scores[i] == scores[j]:
                correct += 0.5
    return correct, n


def evaluate(scorers: Sequence[Scorer], photos: Sequence[str | Path], seed: int = 0,
             repeats: int = 2, fault_names: Sequence[str] | None = None,
             on_draw: Callable[[int], None] | None = None) -> list[FaultTable]:
    """One :class:`FaultTable` per scorer over the held-out ``photos``."""
    if not photos:
        raise DataError("no held-out photos to evaluate on")
    tables = [FaultTable(s.name) for s in scorers]
    for draw in draws(photos, seed, repeats, fault_names):
        for scorer, table in zip(scorers, tables, strict=True):
            correct, n = ranked_pairs(_score(scorer, draw.images))
            table.correct[draw.fault] = table.correct.get(draw.fault, 0.0) + correct
            table.pairs[draw.fault] = table.pairs.get(draw.fault, 0) + n
        if on_draw is not None:
            on_draw(1)
    return tables


CROSS_FAULTS = tuple(f for f in faultlib.FAULTS if f not in ("tilt", "framing"))


@dataclass
class CrossTable:
    """Across photos: how often one photo's clean image outscores another photo's image
    at full damage (tilt and framing left out: a crooked or badly cropped copy of one scene
    is not plainly worse than a different clean photo)."""

    name: str
    correct: float = 0.0   # ties count ½
    pairs: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.pairs if self.pairs else float("nan")


def cross_photo(scorers: Sequence[Scorer], photos: Sequence[str | Path], seed: int = 0,
                fault_names: Sequence[str] = CROSS_FAULTS) -> list[CrossTable]:
    """Clean photo *i* against photo *j* ≠ *i* at severity 1 of every fault (the draw of
    repeat 0, as :func:`draws` renders it): right when the clean one scores higher."""
    if len(photos) < 2:
        raise DataError("the cross-photo measure needs at least two held-out photos")
    clean: list[list[float]] = [[] for _ in scorers]
    damaged: list[list[np.ndarray]] = [[] for _ in scorers]
    by_photo = groupby(draws(photos, seed, 1, fault_names, severities=(0.0, 1.0)),
                       key=lambda d: d.photo)
    for _, photo_draws in by_photo:
        pairs = [d.images for d in photo_draws]
        renders = [pairs[0][0]] + [full for _, full in pairs]   # clean once, then each fault
        for k, scorer in enumerate(scorers):
            s = _score(scorer, renders)
            clean[k].append(float(s[0]))
            damaged[k].append(s[1:])
    tables = []
    for scorer, c, d in zip(scorers, clean, damaged, strict=True):
        table = CrossTable(scorer.name)
        for i, ci in enumerate(c):
            for j, dj in enumerate(d):
                if i != j:
                    table.correct += float(np.sum(ci > dj) + 0.5 * np.sum(ci == dj))
                    table.pairs += dj.size
        tables.append(table)
    return tables


def held_out_photos(data: str | Path | None = None, sources: Sequence[str | Path] = (),
                    seed: int = 0, holdout: float = 0.2) -> list[str]:
    """The evaluation photos: the held-out ones of a hints folder's manifest, or the same
    split recomputed from photo ``sources`` and ``seed`` (as ``framescore data`` makes it)."""
    if data is not None:
        manifest = hints.read_manifest(data)
        photos = hints.test_photos(manifest)
        missing = [p for p in photos if not Path(p).is_file()]
        if missing:
            raise DataError(f"held-out photo not found: {missing[0]} (the manifest records "
                            "absolute paths; install the same photos or pass them again)")
        return photos
    entries = hints.split_photos(hints.find_photos(sources), seed, holdout)
    return [e.path for e in entries if e.split == "test"]


def table_text(tables: Sequence[FaultTable]) -> list[list[str]]:
    """Rows (header first) of the accuracy table: faults down, scorers across, in percent."""
    faults = list(tables[0].pairs)
    rows = [["fault", "pairs", *[t.name for t in tables]]]
    for f in faults:
        rows.append([f, str(tables[0].pairs[f]), *[f"{100 * t.accuracy(f):.1f}" for t in tables]])
    rows.append(["overall", str(sum(tables[0].pairs.values())),
                 *[f"{100 * t.overall:.1f}" for t in tables]])
    return rows


def print_table(tables: Sequence[FaultTable], title: str = "pair-ranking accuracy (%), "
                "less damaged over more damaged, held-out photos") -> None:
    """The table on stdout with rich; the best scorer of each row in bold."""
    from rich.console import Console
    from rich.table import Table

    rows = table_text(tables)
    table = Table(title=title)
    for k, head in enumerate(rows[0]):
        table.add_column(head, justify="left" if k == 0 else "right")
    for row in rows[1:]:
        values = [float(v) for v in row[2:]]
        best = max(values)
        cells = [f"[bold]{v}[/bold]" if float(v) == best and len(values) > 1 else v
                 for v in row[2:]]
        table.add_row(row[0], row[1], *cells, end_section=row[0] == rows[-2][0])
    Console().print(table)


def markdown_table(tables: Sequence[FaultTable]) -> str:
    """The same table as Markdown (for model cards and bench/RESULTS.md)."""
    rows = table_text(tables)
    lines = ["| " + " | ".join(rows[0]) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"
