"""The common form every dataset reader returns, and the torch datasets that load its images.

A reader (AVA, AADB, AROD, a plain folder) turns its label files into a :class:`RecordSet`: one
:class:`Record` per usable image (path, score, the dataset's extras) plus counts of what was
skipped (malformed lines, missing image files, entries a rule dropped).

Unreadable images are never fatal. Two layers deal with them:

* up front, readers drop entries whose image file does not exist (``require_images=True``) and
  :func:`check_images` can also open every header to drop empty or non-image files;
* at load time :class:`ImageDataset` returns ``None`` for an image Pillow cannot decode (and
  counts it in ``dataset.unreadable`` of the process that loaded it); :func:`collate_skip` drops
  those ``None`` items from the batch and reports how many it dropped in ``batch["skipped"]``,
  so a training loop can sum them for its log even when worker processes did the loading.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset, default_collate

from framescore.errors import DataError
from framescore.models.spec import InputSpec

log = logging.getLogger("framescore.train.data")

#: How many offending line numbers a warning lists before it says "...".
FIRST_LINES = 5


@dataclass(frozen=True, eq=False)
class Record:
    """One image of a dataset and what its labels say about it.

    ``score`` is the dataset's own scale (AVA: mean vote 1..10; AADB: 0..1; AROD:
    log(faves)/log(views); folder: whatever the CSV holds); NaN where a list has none (style
    images without an AVA row). The other fields are filled where the dataset has them.
    """

    path: Path
    score: float = math.nan
    id: str = ""
    histogram: np.ndarray | None = None  # AVA: vote counts for scores 1..10
    variance: float | None = None  # AVA: variance of the votes around their mean
    tags: tuple[int, ...] = ()  # AVA: non-zero semantic tag ids (tag 1 first)
    challenge: int | None = None  # AVA: challenge id
    label: int | None = None  # binary high/low (δ-split) or style class 0..13
    labels: tuple[int, ...] = ()  # multi-hot labels (AVA style test: 14 × 0/1)
    attributes: dict[str, float] = field(default_factory=dict)  # AADB: name → [-1, 1]
    ratings: tuple[tuple[str, float], ...] = ()  # AADB: (worker id, that worker's score)
    extra: dict[str, Any] = field(default_factory=dict)  # AROD: url, faves, views; ...


@dataclass
class RecordSet:
    """Records read from one dataset file, with what was skipped while reading it.

    ``malformed``: lines that could not be parsed; ``missing``: entries whose image file is
    absent; ``dropped``: entries a dataset rule excludes (AROD: views ≤ 1 or faves < 1).
    """

    records: list[Record]
    source: Path
    malformed: int = 0
    missing: int = 0
    dropped: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __getitem__(self, i: int) -> Record:
        return self.records[i]

    @property
    def scores(self) -> np.ndarray:
        """All scores as a float64 array, in record order."""
        return np.array([r.score for r in self.records], dtype=np.float64)

    def summary(self) -> str:
        """One line for a log: how many records, and what was skipped."""
        return (f"{self.source}: {len(self.records)} images, {self.malformed} malformed lines, "
                f"{self.missing} missing images, {self.dropped} dropped by rule")


def warn_lines(path: Path, bad: Sequence[int], what: str = "malformed") -> None:
    """Log one warning naming the first few offending line numbers of ``path``."""
    if not bad:
        return
    first = ", ".join(str(n) for n in bad[:FIRST_LINES])
    more = ", ..." if len(bad) > FIRST_LINES else ""
    log.warning("%s: skipped %d %s line(s) (line %s%s)", path, len(bad), what, first, more)


def finish(records: list[Record], source: Path, *, require_images: bool, malformed: int = 0,
           dropped: int = 0, info: dict[str, Any] | None = None) -> RecordSet:
    """The :class:`RecordSet` a reader returns: entries without an image file dropped and
    counted when ``require_images``, and the counts logged."""
    missing = 0
    if require_images:
        records, missing = keep_existing(records, source)
    result = RecordSet(records, source, malformed=malformed, missing=missing, dropped=dropped,
                       info=info or {})
    log.info("%s", result.summary())
    return result


def keep_existing(records: list[Record], source: Path) -> tuple[list[Record], int]:
    """``records`` whose image file exists, and how many did not (logged with the first names)."""
    kept: list[Record] = []
    absent: list[str] = []
    for r in records:
        if r.path.is_file():
            kept.append(r)
        else:
            absent.append(r.path.name)
    if absent:
        log.warning("%s: %d image(s) missing on disk, skipped (%s%s)", source, len(absent),
                    ", ".join(absent[:FIRST_LINES]), ", ..." if len(absent) > FIRST_LINES else "")
    return kept, len(absent)


# ---------------------------------------------------------------------------------------------
# image loading


def load_image(path: Path, draft: tuple[int, int] | None = None) -> np.ndarray:
    """An image file as RGB uint8 ``(H, W, 3)``, EXIF orientation applied.

    ``draft`` (height, width): let the JPEG decoder reduce the image by a power of two while it
    stays at least that big (much faster for a warp to a small size). Raises ``OSError`` (or
    ``ValueError``) when Pillow cannot read the file.
    """
    with Image.open(path) as im:
        if draft is not None and im.format == "JPEG":
            # sizes in the file's orientation; a rotated file only gets a larger (safe) draft
            side = max(draft)
            im.draft("RGB", (side, side))
        im = ImageOps.exif_transpose(im)
        return np.array(im.convert("RGB"))  # a writable copy (torch warns on read-only)


def check_images(records: Sequence[Record], source: Path | str = "images") -> tuple[list[Record],
                                                                                     int]:
    """``records`` whose file exists and opens as an image (header read, no full decode).

    Returns the good records and how many were dropped (logged with the first names).
    """
    good: list[Record] = []
    bad: list[str] = []
    for r in records:
        try:
            with Image.open(r.path) as im:
                im.size  # noqa: B018  (header parsed by open)
            good.append(r)
        except (OSError, ValueError, Image.DecompressionBombError):
            bad.append(r.path.name)
    if bad:
        log.warning("%s: %d unreadable image(s) skipped (%s%s)", source, len(bad),
                    ", ".join(bad[:FIRST_LINES]), ", ..." if len(bad) > FIRST_LINES else "")
    return good, len(bad)


ViewFn = Callable[[np.ndarray, np.random.Generator], Any]
TargetFn = Callable[[Record], Any]


def spec_view(spec: InputSpec, random: bool = True) -> ViewFn:
    """A view function for :class:`ImageDataset` from a model's :class:`InputSpec`.

    ``random`` (training): patch views take a random crop; otherwise the centre one.
    """
    from framescore.preprocess import view

    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return view(image, spec, rng if random else None)

    return apply


def score_target(record: Record) -> np.float32:
    """The default target: the record's score as float32."""
    return np.float32(record.score)


def _item_rng() -> np.random.Generator:
    """A generator seeded from torch's RNG: reproducible under ``torch.manual_seed``, different
    in every DataLoader worker and every epoch (workers are seeded from a fresh base seed)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


def _writable(value: Any) -> Any:
    """Views may return read-only arrays (Pillow buffers); torch wants writable ones."""
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        return value.copy()
    if isinstance(value, tuple | list):
        return type(value)(_writable(v) for v in value)
    if isinstance(value, dict):
        return {k: _writable(v) for k, v in value.items()}
    return value


class ImageDataset(Dataset):
    """Records as ``{"image": view(image, rng), "target": target(record), "index": i}``.

    Images are read with Pillow (EXIF transpose, RGB). ``view`` maps the full image to what the
    model takes (see :func:`spec_view`; default: the image unchanged, which only batches when
    all images share a size); ``target`` maps the record to the label (default its score).
    An image that cannot be decoded gives ``None`` (counted in ``self.unreadable``, logged for
    the first few); use :func:`collate_skip` as the DataLoader's ``collate_fn``.
    """

    def __init__(self, records: Sequence[Record] | RecordSet, view: ViewFn | None = None,
                 target: TargetFn | None = None, draft: tuple[int, int] | None = None) -> None:
        self.records = list(records)
        self.view = view
        self.target = target or score_target
        self.draft = draft
        self.unreadable = 0

    def __len__(self) -> int:
        return len(self.records)

    def image(self, i: int, rng: np.random.Generator | None = None) -> Any | None:
        """The viewed image of record ``i``, or ``None`` when its file cannot be read."""
        path = self.records[i].path
        try:
            image = load_image(path, self.draft)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            self.unreadable += 1
            if self.unreadable <= FIRST_LINES:
                log.warning("unreadable image skipped: %s (%s)", path, err)
            return None
        if self.view is None:
            return image
        return _writable(self.view(image, rng if rng is not None else _item_rng()))

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        image = self.image(i)
        if image is None:
            return None
        return {"image": image, "target": self.target(self.records[i]), "index": i}


class PairDataset(Dataset):
    """Pairs ``(i, j, y)`` of an :class:`ImageDataset` as ``{"image1", "image2", "target1",
    "target2", "y", "index1", "index2"}``; ``y`` = +1 when record ``i`` is the better one.
    ``None`` when either image is unreadable (use :func:`collate_skip`)."""

    def __init__(self, images: ImageDataset, pairs: np.ndarray) -> None:
        self.images = images
        self.pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> dict[str, Any] | None:
        i, j, y = (int(v) for v in self.pairs[k])
        a = self.images.image(i)
        b = self.images.image(j) if a is not None else None
        if a is None or b is None:
            return None
        recs = self.images.records
        return {"image1": a, "image2": b, "target1": self.images.target(recs[i]),
                "target2": self.images.target(recs[j]), "y": np.float32(y),
                "index1": i, "index2": j}


class TripletDataset(Dataset):
    """Triplets drawn on the fly by ``sampler`` (see :class:`~framescore.train.samplers.
    TripletSampler`), ``length`` of them an epoch.

    Item ``k`` asks for a negative better than the pair when ``k`` is even, worse when odd, so
    every epoch is balanced. Gives ``{"anchor", "positive", "negative"}`` images, ``"scores"``
    (3,) float32 and ``"indices"`` (3,) int64; ``None`` when an image is unreadable.
    """

    def __init__(self, images: ImageDataset, sampler: Any, length: int) -> None:
        self.images = images
        self.sampler = sampler
        self.length = int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict[str, Any] | None:
        rng = _item_rng()
        a, p, n = self.sampler.sample(rng, better=(k % 2 == 0))
        views = []
        for i in (a, p, n):
            v = self.images.image(i, rng)
            if v is None:
                return None
            views.append(v)
        scores = np.array([self.images.records[i].score for i in (a, p, n)], dtype=np.float32)
        return {"anchor": views[0], "positive": views[1], "negative": views[2],
                "scores": scores, "indices": np.array([a, p, n], dtype=np.int64)}


def collate_skip(items: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Collate the readable items of a batch; ``batch["skipped"]`` counts the unreadable ones
    and ``batch["size"]`` the items kept. A batch with nothing readable is just
    ``{"skipped": n, "size": 0}``: skip it in the training loop."""
    good = [it for it in items if it is not None]
    skipped = len(items) - len(good)
    if not good:
        return {"skipped": skipped, "size": 0}
    batch = default_collate(good)
    batch["skipped"] = skipped
    batch["size"] = len(good)
    return batch


# ---------------------------------------------------------------------------------------------
# label files


def require_dir(root: Path | str, what: str) -> Path:
    """``root`` as a Path, or a :class:`DataError` when it is not an existing folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{what} folder not found: {root}")
    return root


def find_file(candidates: Sequence[Path], what: str) -> Path:
    """The first existing file among ``candidates``, or a :class:`DataError` naming the first."""
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"{what} not found: {candidates[0]}")


def read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """The non-blank lines of a text label file as ``(line number, stripped text)``.

    Undecodable bytes become U+FFFD (the line then fails to parse and is counted as malformed);
    a missing or unreadable file is a :class:`DataError`.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except OSError as err:
        raise DataError(f"cannot read {what} {path}: {err.strerror or err}") from None
    return [(n, s.strip()) for n, s in enumerate(text.splitlines(), 1) if s.strip()]


def require_some(records: Sequence[Any], path: Path, what: str) -> None:
    """A :class:`DataError` when a label file gave nothing usable at all."""
    if not records:
        raise DataError(f"no usable entries in {what} {path}")
