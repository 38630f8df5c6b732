"""Rank a photo collection: score every photo (batched, decoded in a background thread), write
``ranking.csv`` and an HTML contact sheet (thumbnails in score order, score under each).

Scores are cached in a small SQLite file so a second run over the same photos does not score
them again. The key is (real path, size in bytes, modification time in ns, model name,
weights id), the weights id being the SHA-256 of the weights (or .onnx) file, ``none`` for
models without weights, plus the framescore version. The cache file is ``scores.sqlite`` in
``$FRAMESCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/framescore``, else ``~/.cache/framescore``.
Thumbnails of unchanged photos are taken over from the output folder being replaced.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from framescore import __version__
from framescore.apps.bestshot import input_side, score_images
from framescore.errors import MediaError
from framescore.hashing import sha256_of
from framescore.io.images import Picture, find_images, load_image
from framescore.models.spec import Scorer
from framescore.outputs import check_free, csv_text, json_text, staged_dir, write_text_atomic
from framescore.scoring import prefetch

SCHEMA = "framescore.rank/1"
THUMB_SIDE = 256
CHUNK = 512          # photos scored between two cache commits
SHEET_FILES = frozenset({"ranking.csv", "index.html", "thumbs", "skipped.json"})


def default_cache_path() -> Path:
    """Where the score cache lives (see the module docstring)."""
    root = os.environ.get("FRAMESCORE_CACHE_DIR")
    if root:
        return Path(root) / "scores.sqlite"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "framescore" / "scores.sqlite"


def weights_id(model: str, weights: str | Path | None = None) -> str:
    """A stable id of the weights behind ``model`` (hash of the file that was loaded)."""
    if weights:
        return sha256_of(Path(weights))
    if model.endswith(".onnx"):
        return sha256_of(Path(model))
    from framescore.models.registry import get

    info = get(model)
    if info.sha256:
        return info.sha256
    path = info.bundled_path
    return sha256_of(path) if path is not None and path.is_file() else "none"


@dataclass(frozen=True)
class FileKey:
    """What identifies one version of a photo on disk."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileKey:
        st = path.stat()
        return cls(os.path.realpath(path), st.st_size, st.st_mtime_ns)

    @property
    def thumb_name(self) -> str:
        text = f"{self.path}|{self.size}|{self.mtime_ns}"
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20] + ".jpg"


@dataclass
class Entry:
    """One photo's cached result: score, scalar extras, full-resolution size."""

    score: float
    extras: dict[str, float]
    width: int
    height: int


class ScoreCache:
    """Scores by (file version, model, weights id) in an SQLite file."""

    def __init__(self, path: Path, model: str, weights: str) -> None:
        self.path = Path(path)
        self.model, self.weights = model, f"{weights}@{__version__}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS scores (path TEXT, size INTEGER, mtime_ns INTEGER, "
            "model TEXT, weights TEXT, score REAL, extras TEXT, width INTEGER, height INTEGER, "
            "PRIMARY KEY (path, size, mtime_ns, model, weights))")
        self.db.commit()

    def get(self, key: FileKey) -> Entry | None:
        row = self.db.execute(
            "SELECT score, extras, width, height FROM scores WHERE path=? AND size=? AND "
            "mtime_ns=? AND model=? AND weights=?",
            (key.path, key.size, key.mtime_ns, self.model, self.weights)).fetchone()
        if row is None:
            return None
        return Entry(score=row[0], extras=json.loads(row[1]), width=row[2], height=row[3])

    def put(self, items: Sequence[tuple[FileKey, Entry]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(k.path, k.size, k.mtime_ns, self.model, self.weights, e.score,
              json.dumps(e.extras), e.width, e.height) for k, e in items])
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def open_cache(path: Path | None, model: str, weights: str) -> tuple[ScoreCache | None, str]:
    """The cache, or None and a warning when it cannot be used (the run goes on without).

    A cache file that SQLite finds damaged (not a database, or failing its quick check) is
    set aside as ``NAME.corrupt`` and rebuilt empty, with a warning that says so."""
    if path is None:
        return None, ""
    try:
        cache = ScoreCache(path, model, weights)
        if cache.db.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok":
            return cache, ""
        cache.close()
        why = "it failed SQLite's check"
    except sqlite3.DatabaseError as exc:
        why = str(exc)
    except (OSError, sqlite3.Error) as exc:
        return None, f"score cache {path} not usable ({exc}); scoring without it"
    try:
        os.replace(path, path.with_name(path.name + ".corrupt"))
        for extra in ("-journal", "-wal", "-shm"):
            path.with_name(path.name + extra).unlink(missing_ok=True)
        return (ScoreCache(path, model, weights),
                f"score cache {path} was damaged ({why}); set aside as {path.name}.corrupt "
                "and rebuilt")
    except (OSError, sqlite3.Error) as exc:
        return None, f"score cache {path} is damaged ({why}) and could not be rebuilt " \
                     f"({exc}); scoring without it"


def is_rank_sheet(path: Path) -> bool:
    """True for a folder holding only what ``rank`` writes (a sheet it may update)."""
    if not path.is_dir() or path.is_symlink():
        return False
    try:
        names = {p.name for p in path.iterdir()}
    except OSError:
        return False
    return {"ranking.csv", "index.html"} <= names and names <= SHEET_FILES


def check_out(out_dir: Path, force: bool) -> None:
    """Fail early unless ``out_dir`` is free, an earlier ranking (updated in place), or
    ``force`` is given."""
    if not force and not is_rank_sheet(out_dir):
        check_free(out_dir, force)


@dataclass
class Ranked:
    """One photo in the ranking."""

    rank: int
    path: Path
    file: str          # relative to the ranked folder
    entry: Entry
    thumb: str | None  # relative to the output folder
    cached: bool

    def to_dict(self) -> dict:
        return {"rank": self.rank, "file": self.file, "score": self.entry.score,
                "std": self.entry.extras.get("std"), "extras": self.entry.extras,
                "width": self.entry.width, "height": self.entry.height, "cached": self.cached}


@dataclass
class Result:
    folder: Path
    out_dir: Path
    model: str
    ranking: list[Ranked]
    skipped: list[tuple[Path, str]]
    elapsed: float
    warnings: list[str] = field(default_factory=list)

    @property
    def cached(self) -> int:
        return sum(r.cached for r in self.ranking)

    def summary(self) -> dict:
        return {"schema": SCHEMA, "framescore": __version__, "folder": str(self.folder),
                "output": str(self.out_dir), "model": self.model, "photos": len(self.ranking),
                "scored": len(self.ranking) - self.cached, "cached": self.cached,
                "skipped": [{"file": str(p), "reason": why} for p, why in self.skipped],
                "ranking": [r.to_dict() for r in self.ranking]}


def _write_thumb(picture: Picture, target: Path) -> tuple[int, int]:
    """Save a JPEG thumbnail (long side ``THUMB_SIDE``); returns the full-resolution size."""
    thumb = Image.fromarray(picture.image)
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    thumb.save(target, format="JPEG", quality=85)
    return picture.size


def _score_new(paths: list[Path], keys: dict[Path, FileKey], scorer: Scorer, batch_size: int,
               thumbs: Path, cache: ScoreCache | None,
               on_batch: Callable[[int], None] | None) -> tuple[dict[Path, Entry],
                                                                list[tuple[Path, str]]]:
    """Score ``paths`` chunk by chunk, writing thumbnails and committing each chunk to the cache."""
    side = input_side(scorer.spec)
    min_side = None if side is None else max(side, THUMB_SIDE)
    entries: dict[Path, Entry] = {}
    skipped: list[tuple[Path, str]] = []
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start:start + CHUNK]
        scored = score_images(
            chunk, scorer, batch_size, min_side=min_side, on_batch=on_batch,
            prepare=lambda pic: _write_thumb(pic, thumbs / keys[pic.path].thumb_name))
        fresh = []
        for i, path in enumerate(scored.paths):
            width, height = scored.aux[i]
            entry = Entry(score=float(scored.scores[i]),
                          extras={k: float(v[i]) for k, v in scored.extras.items()},
                          width=int(width), height=int(height))
            entries[path] = entry
            fresh.append((keys[path], entry))
        skipped.extend(scored.skipped)
        if cache is not None and fresh:
            cache.put(fresh)
    return entries, skipped


def _thumbs_only(paths: list[Path], keys: dict[Path, FileKey], thumbs: Path,
                 on_batch: Callable[[int], None] | None) -> list[tuple[Path, str]]:
    """Thumbnails of cached photos whose thumbnail could not be taken over."""
    skipped: list[tuple[Path, str]] = []

    def work():
        for path in paths:
            try:
                _write_thumb(load_image(path, THUMB_SIDE), thumbs / keys[path].thumb_name)
            except MediaError as exc:
                skipped.append((path, str(exc).removeprefix(f"{path}: ")))
            yield 1

    for n in prefetch(work()):
        if on_batch is not None:
            on_batch(n)
    return skipped


def _take_over(old: Path, new: Path) -> bool:
    if not old.is_file():
        return False
    try:
        os.link(old, new)
    except OSError:
        try:
            shutil.copyfile(old, new)
        except OSError:
            return False
    return True


def check_folder(folder: Path) -> None:
    """A one-line error unless ``folder`` is an existing folder."""
    if not folder.is_dir():
        raise MediaError(f"{folder}: no such folder" if not folder.exists()
                         else f"{folder}: is a file, not a folder (bestshot takes files)")


def rank_folder(folder: str | Path, out_dir: str | Path, scorer: Scorer, weights: str,
                batch_size: int = 32, cache_path: Path | None = None, force: bool = False,
                on_start: Callable[[int | None], None] | None = None,
                on_batch: Callable[[int], None] | None = None) -> Result:
    """Rank every photo under ``folder`` and write ranking.csv, index.html, thumbs/ to
    ``out_dir`` (atomically). ``weights`` is the ``weights_id`` of the scorer's weights.
    An earlier ranking in ``out_dir`` is replaced as a whole (see :func:`check_out`); any
    other existing ``out_dir`` only with ``force``."""
    started = time.perf_counter()
    folder, out_dir = Path(folder), Path(out_dir)
    check_folder(folder)
    listing = find_images([folder], recursive=True, exclude=[out_dir])
    if not listing.files:
        raise MediaError(f"{folder}: no image files")
    skipped = list(listing.skipped)
    keys: dict[Path, FileKey] = {}
    for path in listing.files:
        try:
            keys[path] = FileKey.of(path)
        except OSError as exc:
            skipped.append((path, exc.strerror or "cannot read"))
    cache, warning = open_cache(cache_path, scorer.name, weights)
    try:
        cached = {p: e for p in keys if cache and (e := cache.get(keys[p])) is not None}
        # an earlier ranking in out_dir is updated: the new sheet is staged and swapped in
        with staged_dir(out_dir, force=force or is_rank_sheet(out_dir)) as tmp:
            thumbs = tmp / "thumbs"
            thumbs.mkdir()
            old = out_dir / "thumbs"
            need_thumb = [p for p in cached
                          if not _take_over(old / keys[p].thumb_name, thumbs / keys[p].thumb_name)]
            new = [p for p in keys if p not in cached]
            if on_start:
                on_start(len(new) + len(need_thumb))
            entries, bad = _score_new(new, keys, scorer, batch_size, thumbs, cache, on_batch)
            bad += _thumbs_only(need_thumb, keys, thumbs, on_batch)
            skipped += bad
            bad_paths = {p for p, _ in bad}
            entries.update({p: e for p, e in cached.items() if p not in bad_paths})
            if not entries:
                from framescore.io.images import skipped_message

                raise MediaError(f"{folder}: no image could be read ({skipped_message(skipped)})")
            ranking = _ranking(folder, entries, keys, set(cached))
            result = Result(folder=folder, out_dir=out_dir, model=scorer.name, ranking=ranking,
                            skipped=skipped, elapsed=0.0, warnings=[w for w in [warning] if w])
            _write_outputs(result, tmp)
    finally:
        if cache is not None:
            cache.close()
    result.elapsed = time.perf_counter() - started
    return result


def _ranking(folder: Path, entries: dict[Path, Entry], keys: dict[Path, FileKey],
             cached: set[Path]) -> list[Ranked]:
    rows = [Ranked(rank=0, path=p, file=p.relative_to(folder).as_posix(), entry=e,
                   thumb=f"thumbs/{keys[p].thumb_name}", cached=p in cached)
            for p, e in entries.items()]
    rows.sort(key=lambda r: (-r.entry.score, r.file))
    for i, r in enumerate(rows, start=1):
        r.rank = i
    return rows


def _write_outputs(result: Result, tmp: Path) -> None:
    extra_keys = sorted({k for r in result.ranking for k in r.entry.extras})
    header = ["rank", "file", "score", *extra_keys, "width", "height"]
    rows = [[r.rank, r.file, f"{r.entry.score:.6g}",
             *(_fmt(r.entry.extras.get(k)) for k in extra_keys), r.entry.width, r.entry.height]
            for r in result.ranking]
    write_text_atomic(tmp / "ranking.csv", csv_text(header, rows))
    out_abs = Path(os.path.abspath(result.out_dir))
    links = [Path(os.path.relpath(os.path.abspath(r.path), out_abs)).as_posix()
             for r in result.ranking]
    write_text_atomic(tmp / "index.html", contact_sheet_html(
        title=f"{result.folder.name or result.folder} ranked by {result.model}",
        items=[(r.rank, r.file, r.entry.score, r.entry.extras.get("std"), r.thumb, link)
               for r, link in zip(result.ranking, links, strict=True)],
        note=f"{len(result.ranking)} photos, framescore {__version__}, "
             f"{time.strftime('%Y-%m-%d %H:%M')}"))
    if result.skipped:
        write_text_atomic(tmp / "skipped.json", json_text(
            [{"file": str(p), "reason": why} for p, why in result.skipped]))


def _fmt(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return ""
    return f"{value:.6g}"


_STYLE = """
body { font: 14px/1.35 system-ui, sans-serif; margin: 20px; background: #f4f4f4; color: #222 }
h1 { font-size: 20px; margin: 0 0 4px } p.note { color: #666; margin: 0 0 16px }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 14px }
figure { margin: 0; background: #fff; padding: 8px; border-radius: 6px;
         box-shadow: 0 1px 3px rgba(0,0,0,.15) }
figure img { display: block; width: 100%; height: 190px; object-fit: contain; background: #eee }
figcaption { margin-top: 6px; text-align: center }
.score { font-size: 17px; font-weight: 600 } .rank { color: #888; margin-right: 6px }
.name { display: block; color: #555; font-size: 12px; overflow-wrap: anywhere }
"""


def _url(path: str) -> str:
    """A relative URL of ``path``; undecodable file-name bytes are percent-encoded as they are
    on disk, so the link finds the file."""
    return urllib.parse.quote(path, errors="surrogateescape")


def contact_sheet_html(title: str, items: Sequence[tuple], note: str = "") -> str:
    """A static HTML page: one figure per ``(rank, name, score, std, thumb, link)``, in order.

    Thumbnails load lazily, so the page stays light with thousands of photos.
    """
    esc = html.escape
    cells = []
    for rank, name, score, std, thumb, link in items:
        spread = f" <small>± {std:.2g}</small>" if std is not None else ""
        cells.append(
            f'<figure><a href="{esc(_url(link))}">'
            f'<img src="{esc(_url(thumb))}" loading="lazy" alt="{esc(name)}"></a>'
            f'<figcaption><span class="rank">#{rank}</span>'
            f'<span class="score">{score:.3f}</span>{spread}'
            f'<span class="name">{esc(name)}</span></figcaption></figure>')
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>\n"
            f"<h1>{esc(title)}</h1><p class=\"note\">{esc(note)}</p>\n<div class=\"grid\">\n"
            + "\n".join(cells) + "\n</div></body></html>\n")
