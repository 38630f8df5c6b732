"""AVA (Murray et al. 2012) in its own file formats.

Layout under the dataset root (the image folder can be put elsewhere with ``image_dir``)::

    AVA.txt                       15 space-separated columns per image: row index, image id,
                                  vote counts for scores 1..10, semantic tag 1, semantic tag 2
                                  (0 = none), challenge id
    tags.txt, challenges.txt      "<id> <name>" per line
    aesthetics_image_lists/       generic_test.jpgl (the 20,000 test ids), {animal, ...}_{train,
                                  test}.jpgl (content categories); "aesthetic_image_lists" works too
    style_image_lists/            train.jpgl + train.lab (one style 1..14 per line),
                                  test.jpgl + test.multilab (14 × 0/1 per line), styles.txt
    images/<id>.jpg

Mean score = Σ k·n_k / Σ n_k and variance = Σ n_k (k − mean)² / Σ n_k over the vote histogram.
Malformed lines are skipped and counted; ids without an image file are skipped and counted.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from framescore.errors import DataError
from framescore.train.data.records import (
    Record,
    RecordSet,
    find_file,
    finish,
    read_lines,
    require_dir,
    require_some,
    warn_lines,
)

LIST_DIRS = ("aesthetics_image_lists", "aesthetic_image_lists")
STYLE_DIR = "style_image_lists"
IMAGE_DIR = "images"
STYLES = ("Complementary_Colors", "Duotones", "HDR", "Image_Grain", "Light_On_White",
          "Long_Exposure", "Macro", "Motion_Blur", "Negative_Image", "Rule_of_Thirds",
          "Shallow_DOF", "Silhouettes", "Soft_Focus", "Vanishing_Point")
CONTENT = ("animal", "architecture", "cityscape", "floral", "fooddrink", "landscape",
           "portrait", "stilllife")
SCORES = np.arange(1, 11, dtype=np.float64)


def histogram_stats(counts: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the scores 1..10 given their vote counts."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    mean = float((SCORES * counts).sum() / total)
    var = float((counts * (SCORES - mean) ** 2).sum() / total)
    return mean, var


def _image_dir(root: Path, image_dir: Path | str | None) -> Path:
    return Path(image_dir).expanduser() if image_dir is not None else root / IMAGE_DIR


def read_ava(root: Path | str, image_dir: Path | str | None = None,
             require_images: bool = True) -> RecordSet:
    """Every row of ``AVA.txt`` as a :class:`Record` (score = mean vote, histogram, variance,
    tags, challenge; path ``image_dir/<id>.jpg``, default ``root/images``).

    Lines without 15 integer columns, with negative counts or no votes, and repeated ids are
    skipped and counted as malformed. With ``require_images`` rows whose image file is absent
    are skipped and counted as missing; without it (labels only) every row is kept.
    """
    root = require_dir(root, "AVA")
    path = find_file([root / "AVA.txt"], "AVA label file AVA.txt")
    records, bad = _parse_ava(path, _image_dir(root, image_dir))
    warn_lines(path, bad)
    require_some(records, path, "AVA label file")
    return finish(records, path, require_images=require_images, malformed=len(bad))


def _parse_ava(path: Path, images: Path) -> tuple[list[Record], list[int]]:
    """The rows of AVA.txt as records, and the numbers of the malformed lines.

    Parsed in one pass into an integer table, then means and variances are computed for all
    rows at once (AVA.txt has 255k lines).
    """
    bad: list[int] = []
    rows: list[list[int]] = []
    seen: set[int] = set()
    for n, line in read_lines(path, "AVA label file"):
        parts = line.split()
        try:
            if len(parts) != 15:
                raise ValueError
            values = [int(p) for p in parts]
        except ValueError:
            bad.append(n)
            continue
        counts = values[2:12]
        if min(counts) < 0 or sum(counts) == 0 or values[1] in seen:
            bad.append(n)
            continue
        seen.add(values[1])
        rows.append(values)
    if not rows:
        return [], bad
    table = np.array(rows, dtype=np.int64)
    hists = table[:, 2:12]
    totals = hists.sum(axis=1, dtype=np.float64)
    means = hists @ SCORES / totals
    variances = (hists * (SCORES[None, :] - means[:, None]) ** 2).sum(axis=1) / totals
    records = [
        Record(path=images / f"{row[1]}.jpg", score=float(mean), id=str(row[1]),
               histogram=hist, variance=float(var),
               tags=tuple(t for t in row[12:14] if t != 0), challenge=row[14])
        for row, hist, mean, var in zip(rows, hists, means.tolist(), variances.tolist(),
                                        strict=True)]
    return records, bad


def read_names(path: Path, what: str) -> dict[int, str]:
    """An ``<id> <name>`` file (tags.txt, challenges.txt, styles.txt) as ``{id: name}``."""
    names: dict[int, str] = {}
    bad: list[int] = []
    for n, line in read_lines(path, what):
        key, _, name = line.partition(" ")
        try:
            names[int(key)] = name.strip()
        except ValueError:
            bad.append(n)
    warn_lines(path, bad)
    return names


def read_tags(root: Path | str) -> dict[int, str]:
    """``tags.txt``: semantic tag id → name (66 tags)."""
    root = require_dir(root, "AVA")
    return read_names(root / "tags.txt", "AVA tag list tags.txt")


def read_challenges(root: Path | str) -> dict[int, str]:
    """``challenges.txt``: challenge id → name."""
    root = require_dir(root, "AVA")
    return read_names(root / "challenges.txt", "AVA challenge list challenges.txt")


def read_id_list(path: Path | str) -> list[str]:
    """A ``.jpgl`` list: one integer image id a line (malformed lines skipped and logged)."""
    path = Path(path)
    ids: list[str] = []
    bad: list[int] = []
    for n, line in read_lines(path, "AVA image list"):
        try:
            ids.append(str(int(line)))
        except ValueError:
            bad.append(n)
    warn_lines(path, bad)
    return ids


def list_path(root: Path | str, name: str) -> Path:
    """``name`` (e.g. ``generic_test.jpgl``) in the aesthetics image-list folder."""
    root = require_dir(root, "AVA")
    return find_file([root / d / name for d in LIST_DIRS], f"AVA image list {name}")


def generic_test_ids(root: Path | str) -> list[str]:
    """The standard test split: the ids of ``generic_test.jpgl`` (20,000 in AVA)."""
    return read_id_list(list_path(root, "generic_test.jpgl"))


def read_content(root: Path | str, split: str = "train",
                 categories: tuple[str, ...] = CONTENT) -> dict[str, list[str]]:
    """The content-category lists ``<category>_<split>.jpgl`` as ``{category: ids}``."""
    if split not in ("train", "test"):
        raise DataError(f"AVA content split must be train or test, not {split!r}")
    return {c: read_id_list(list_path(root, f"{c}_{split}.jpgl")) for c in categories}


#: AVA semantic tag names (tags.txt, compared without case, spaces or underscores) of the eight
#: content categories of the content lists
CONTENT_TAGS = {"animals": "animal", "animal": "animal", "architecture": "architecture",
                "cityscape": "cityscape", "floral": "floral", "fooddrink": "fooddrink",
                "foodanddrink": "fooddrink", "landscape": "landscape",
                "landscapes": "landscape", "portraiture": "portrait", "portrait": "portrait",
                "stilllife": "stilllife"}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def content_categories(root: Path | str, records: list[Record],
                       categories: tuple[str, ...] = CONTENT) -> dict[str, int]:
    """Each record's content category (index into ``categories``), where AVA says one.

    From the semantic tags (``tags.txt`` names matched to the eight categories: Animals,
    Architecture, Cityscape, Floral, Food and Drink, Landscape, Portraiture, Still Life; the
    first tag that names one wins) and, where present, the content lists
    ``<category>_{train,test}.jpgl`` (which win over the tags). Untagged images are absent.
    """
    index = {c: k for k, c in enumerate(categories)}
    tags = read_tags(root)
    by_tag = {t: index[CONTENT_TAGS[_squash(n)]] for t, n in tags.items()
              if CONTENT_TAGS.get(_squash(n)) in index}
    out: dict[str, int] = {}
    for r in records:
        hit = next((by_tag[t] for t in r.tags if t in by_tag), None)
        if hit is not None:
            out[r.id] = hit
    for split in ("train", "test"):
        try:
            lists = read_content(root, split, categories)
        except DataError:
            continue
        for c, ids in lists.items():
            for i in ids:
                out[i] = index[c]
    return out


def _paired_lines(ids_path: Path, labels_path: Path) -> list[tuple[int, str, str]]:
    """Zip an id list with its label file line by line (they must have equally many lines)."""
    ids = read_lines(ids_path, "AVA style list")
    labels = read_lines(labels_path, "AVA style labels")
    if len(ids) != len(labels):
        raise DataError(f"{ids_path.name} has {len(ids)} lines but {labels_path.name} has "
                        f"{len(labels)}: they must match line by line")
    return [(n, i, lab) for (n, i), (_, lab) in zip(ids, labels, strict=True)]


def read_style(root: Path | str, split: str = "train", image_dir: Path | str | None = None,
               require_images: bool = True) -> RecordSet:
    """The style subset: ``train`` (``label`` = style 0..13 from ``train.lab``'s 1..14, and
    the one-hot ``labels``) or ``test`` (14 × 0/1 ``labels`` from ``test.multilab``; ``label``
    is the first style set, or None). Scores come from ``AVA.txt`` when it is there, else NaN.
    ``info["styles"]`` holds the 14 style names (``styles.txt`` if present)."""
    root = require_dir(root, "AVA")
    if split not in ("train", "test"):
        raise DataError(f"AVA style split must be train or test, not {split!r}")
    folder = root / STYLE_DIR
    ids_path = find_file([folder / f"{split}.jpgl"], f"AVA style list {split}.jpgl")
    lab_name = "train.lab" if split == "train" else "test.multilab"
    lab_path = find_file([folder / lab_name], f"AVA style labels {lab_name}")
    styles = STYLES
    if (folder / "styles.txt").is_file():
        named = read_names(folder / "styles.txt", "AVA style names")
        if len(named) == len(STYLES):
            styles = tuple(named[k] for k in sorted(named))
    scores: dict[str, Record] = {}
    images = _image_dir(root, image_dir)
    if (root / "AVA.txt").is_file():  # for the scores only: AVA.txt's own issues not re-logged
        scores = {r.id: r for r in _parse_ava(root / "AVA.txt", images)[0]}
    records: list[Record] = []
    bad: list[int] = []
    k = len(STYLES)
    for n, id_text, lab_text in _paired_lines(ids_path, lab_path):
        try:
            image_id = str(int(id_text))
            if split == "train":
                label = int(lab_text) - 1
                if not 0 <= label < k:
                    raise ValueError
                labels = tuple(int(i == label) for i in range(k))
            else:
                labels = tuple(int(v) for v in lab_text.split())
                if len(labels) != k or any(v not in (0, 1) for v in labels):
                    raise ValueError
                label = labels.index(1) if 1 in labels else None
        except ValueError:
            bad.append(n)
            continue
        base = scores.get(image_id)
        records.append(Record(
            path=images / f"{image_id}.jpg", score=base.score if base else math.nan,
            id=image_id, histogram=base.histogram if base else None,
            variance=base.variance if base else None, tags=base.tags if base else (),
            challenge=base.challenge if base else None, label=label, labels=labels))
    warn_lines(ids_path, bad)
    require_some(records, ids_path, "AVA style list")
    return finish(records, ids_path, require_images=require_images, malformed=len(bad),
                  info={"styles": styles})


def select(records: RecordSet | list[Record], ids: list[str] | set[str]) -> list[Record]:
    """The records whose id is in ``ids``, in record order."""
    wanted = set(ids)
    return [r for r in records if r.id in wanted]
