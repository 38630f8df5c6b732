"""AADB (Kong et al. 2016) in its own file formats.

Split files ``imgList{Train,Validation,Test,TestNew}Regression_{score|<Attribute>}.txt`` (in the
root or in ``imgListFiles_label/``), one ``<image name> <value>`` a line: the score in [0, 1]
(steps of 0.05), the eleven attributes in [−1, 1]. Images in ``datasetImages_originalSize/``
(``image_dir`` to put them elsewhere). TestNew names carry a score prefix (``0.500_farm1_...``).

Rater identities come from the raw Amazon Mechanical Turk CSV: one row per 10-image assignment
with ``WorkerId``, ``Input.image_url1..10`` and ``Answer.overallScore1..10``. URLs are matched to
split-file names through the Flickr photo key (``<photo id>_<secret>[_size].jpg``), so both
``http://farm1.staticflickr.com/255/1945_8ee7_b.jpg`` and ``farm1_255_1945_8ee7_b.jpg`` match.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from framescore.errors import DataError
from framescore.train.data.records import (
    Record,
    RecordSet,
    finish,
    log,
    read_lines,
    require_dir,
    require_some,
    warn_lines,
)

#: Attribute names as spelled in the released files (BalacingElements sic).
ATTRIBUTES = ("BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur",
              "Object", "Repetition", "RuleOfThirds", "Symmetry", "VividColor")
SPLITS = {"train": "Train", "validation": "Validation", "test": "Test", "testnew": "TestNew"}
IMAGE_DIR = "datasetImages_originalSize"
LABEL_DIRS = ("imgListFiles_label", ".")
WORKER = "WorkerId"
ASSIGNMENT = 10

_SCORE_PREFIX = re.compile(r"^\d+\.\d+_")
_FARM_PREFIX = re.compile(r"^farm\d+_\d+_")


def split_file(root: Path | str, split: str, field: str = "score") -> Path:
    """Where the ``field`` (``score`` or an attribute) list of ``split`` lives (may not exist)."""
    root = Path(root)
    name = f"imgList{_split_tag(split)}Regression_{field}.txt"
    for d in LABEL_DIRS:
        if (root / d / name).is_file():
            return root / d / name
    return root / LABEL_DIRS[0] / name


def _split_tag(split: str) -> str:
    try:
        return SPLITS[split.lower()]
    except KeyError:
        raise DataError(f"unknown AADB split {split!r} (use {', '.join(SPLITS)})") from None


def read_values(path: Path, low: float, high: float) -> tuple[dict[str, float], list[int]]:
    """A ``<name> <value>`` list as ``{name: value}`` and the malformed line numbers
    (not two fields, value not a number in [low, high], a repeated name)."""
    values: dict[str, float] = {}
    bad: list[int] = []
    for n, line in read_lines(path, "AADB list"):
        parts = line.split()
        try:
            if len(parts) != 2 or parts[0] in values:
                raise ValueError
            v = float(parts[1])
            if not low <= v <= high:
                raise ValueError
        except ValueError:
            bad.append(n)
            continue
        values[parts[0]] = v
    return values, bad


def read_aadb(root: Path | str, split: str = "train", image_dir: Path | str | None = None,
              attributes: bool | tuple[str, ...] = True, ratings: Path | str | None = None,
              require_images: bool = True) -> RecordSet:
    """One AADB split as records (``id`` = image name, ``score`` in [0, 1], ``attributes``).

    ``attributes``: True reads every attribute list the split has (a missing one is logged and
    left out: TestNew ships fewer); a tuple names those required (missing → DataError); False
    reads none. ``ratings``: the raw rater CSV, to fill each record's ``ratings`` with
    ``(worker, score)`` (see :func:`read_ratings`). Malformed lines and missing images are
    skipped and counted.
    """
    root = require_dir(root, "AADB")
    tag = _split_tag(split)
    path = split_file(root, split, "score")
    scores, bad = read_values(path, 0.0, 1.0)
    warn_lines(path, bad)
    require_some(scores, path, "AADB score list")
    malformed = len(bad)
    wanted = ATTRIBUTES if attributes is True else (tuple(attributes) if attributes else ())
    attrs: dict[str, dict[str, float]] = {}
    for name in wanted:
        if name not in ATTRIBUTES:
            raise DataError(f"unknown AADB attribute {name!r} (have: {', '.join(ATTRIBUTES)})")
        apath = split_file(root, split, name)
        if not apath.is_file():
            if attributes is True:
                log.warning("AADB %s has no %s list (%s): attribute left out", tag, name,
                            apath.name)
                continue
            raise DataError(f"AADB attribute list not found: {apath}")
        values, abad = read_values(apath, -1.0, 1.0)
        warn_lines(apath, abad)
        malformed += len(abad)
        attrs[name] = values
    images = Path(image_dir).expanduser() if image_dir is not None else root / IMAGE_DIR
    records = [Record(path=images / name, score=s, id=name,
                      attributes={a: v[name] for a, v in attrs.items() if name in v})
               for name, s in scores.items()]
    info: dict = {"split": tag, "attributes": tuple(attrs)}
    if ratings is not None:
        records, unmatched = attach_ratings(records, read_ratings(ratings))
        info["unmatched_ratings"] = unmatched
    return finish(records, path, require_images=require_images, malformed=malformed, info=info)


def flickr_key(name_or_url: str) -> str:
    """The part of an AADB image name or URL that identifies the Flickr photo.

    ``http://farm1.staticflickr.com/255/1945_8ee7_b.jpg``, ``farm1_255_1945_8ee7_b.jpg`` and
    the TestNew name ``0.500_farm1_255_1945_8ee7_b.jpg`` all give ``1945_8ee7_b.jpg``.
    """
    text = name_or_url.strip()
    if "://" in text:
        text = urlsplit(text).path
    base = text.rsplit("/", 1)[-1]
    base = _SCORE_PREFIX.sub("", base)
    return _FARM_PREFIX.sub("", base)


class Rating(NamedTuple):
    """One rater's overall score (1..5 in AADB) for one image URL."""

    worker: str
    url: str
    score: float


def read_ratings(path: Path | str) -> list[Rating]:
    """The raw AMT CSV as one :class:`Rating` per (assignment row, image slot).

    Needs the ``WorkerId`` column and ``Input.image_url<k>`` / ``Answer.overallScore<k>`` pairs
    (k = 1..10); empty slots are ignored, slots whose score is not a number are skipped and
    counted in the log.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"AADB rating CSV not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            if WORKER not in columns or "Input.image_url1" not in columns \
                    or "Answer.overallScore1" not in columns:
                raise DataError(f"{path} is not an AADB rating CSV: it needs the columns "
                                f"{WORKER}, Input.image_url1.., Answer.overallScore1..")
            slots = [k for k in range(1, ASSIGNMENT + 1)
                     if f"Input.image_url{k}" in columns and f"Answer.overallScore{k}" in columns]
            ratings: list[Rating] = []
            bad: list[int] = []
            for row_no, row in enumerate(reader, 2):
                worker = (row.get(WORKER) or "").strip()
                for k in slots:
                    url = (row.get(f"Input.image_url{k}") or "").strip()
                    raw = (row.get(f"Answer.overallScore{k}") or "").strip()
                    if not url and not raw:
                        continue
                    try:
                        score = float(raw)
                        if not worker or not url or not math.isfinite(score):
                            raise ValueError
                    except ValueError:
                        bad.append(row_no)
                        continue
                    ratings.append(Rating(worker, url, score))
    except OSError as err:
        raise DataError(f"cannot read AADB rating CSV {path}: {err.strerror or err}") from None
    except csv.Error as err:
        raise DataError(f"AADB rating CSV {path} is not valid CSV: {err}") from None
    warn_lines(path, sorted(set(bad)), "malformed rating")
    require_some(ratings, path, "AADB rating CSV")
    return ratings


def attach_ratings(records: list[Record], ratings: list[Rating]) -> tuple[list[Record], int]:
    """``records`` with their ``ratings`` filled (``(worker, score)`` pairs, in CSV order),
    and how many ratings matched no record (other splits, or unknown images)."""
    index: dict[str, int] = {}
    for i, r in enumerate(records):
        index.setdefault(flickr_key(r.id), i)
    found: dict[int, list[tuple[str, float]]] = {}
    unmatched = 0
    for rating in ratings:
        i = index.get(flickr_key(rating.url))
        if i is None:
            unmatched += 1
            continue
        found.setdefault(i, []).append((rating.worker, rating.score))
    out = [replace(r, ratings=tuple(found[i])) if i in found else r
           for i, r in enumerate(records)]
    return out, unmatched
