"""Tiny datasets written in the real AVA, AADB, AROD and folder+CSV formats, for tests.

Every image is a random crop of a real photograph shipped with scikit-image
(:mod:`framescore.samples`), degraded by Gaussian blur and Gaussian noise in proportion to how
bad its score is: quality ``q`` in [0, 1] (1 = clean) gives blur radius ``BLUR_MAX·(1 − q)`` and
noise std ``NOISE_MAX·(1 − q)``. The score is thus a known, learnable function of the image.

Each ``make_*`` returns a :class:`Fixture`: the root folder, the score every image should get
from the reader (``scores``, keyed like ``Record.id``), the quality it was made with
(``quality``) and dataset-specific ground truth in ``meta``. With ``malformed=True`` the files
also get malformed lines, an entry whose image is missing and one corrupt image file; the counts
the reader should report are in ``meta`` (``malformed``, ``missing``, ``dropped``, ``corrupt``).
Corrupt images are listed in ``scores`` too (the reader keeps them: they exist on disk), and in
``meta["corrupt_ids"]``.

Usage in a test::

    from datasets_fixtures import make_ava
    fx = make_ava(tmp_path / "ava", n=40, seed=1)
    records = read_ava(fx.root)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from framescore.samples import photo, photo_paths

BLUR_MAX = 2.5  # Gaussian blur radius (pixels at the fixture size) for quality 0
NOISE_MAX = 30.0  # std of additive Gaussian noise (0..255 scale) for quality 0
SOURCE_SIDE = 192  # the shipped photos are reduced to this short side before cropping
CORRUPT_BYTES = b"\xff\xd8\xff\xe0 this is not really a JPEG" + bytes(range(64))


@dataclass
class Fixture:
    """A written fixture dataset and its ground truth."""

    root: Path
    scores: dict[str, float]  # Record.id → score the reader should give
    quality: dict[str, float]  # Record.id → degradation level used (1 clean, 0 worst)
    meta: dict = field(default_factory=dict)


@lru_cache(maxsize=16)
def _source(name: str) -> np.ndarray:
    image = Image.fromarray(photo(name))
    scale = SOURCE_SIDE / min(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.Resampling.LANCZOS)
    return np.asarray(image)


def degrade(quality: float, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A ``size``-high RGB crop of a random shipped photo (aspect 1, 4:3 or 3:2, landscape or
    portrait), blurred and noised by ``1 − quality``."""
    names = sorted(photo_paths())
    src = _source(names[int(rng.integers(0, len(names)))])
    aspect = float(rng.choice([1.0, 4 / 3, 1.5]))
    if rng.random() < 0.3:
        aspect = 1 / aspect
    h, w = size, max(8, round(size * aspect))
    # crop a region with that aspect covering at least half of the short side, then resize
    sh, sw = src.shape[:2]
    ch = int(rng.integers(min(sh, sw) // 2, min(sh, round(sw / aspect)) + 1))
    cw = min(sw, max(1, round(ch * aspect)))
    top, left = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    crop = Image.fromarray(src[top:top + ch, left:left + cw]).resize(
        (w, h), Image.Resampling.BILINEAR)
    bad = 1.0 - float(np.clip(quality, 0.0, 1.0))
    if bad > 0:
        crop = crop.filter(ImageFilter.GaussianBlur(BLUR_MAX * bad))
    pixels = np.asarray(crop).astype(np.float32)
    pixels += rng.normal(0.0, NOISE_MAX * bad, size=pixels.shape).astype(np.float32)
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def _write_image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        Image.fromarray(pixels).save(path)
    else:
        Image.fromarray(pixels).save(path, format="JPEG", quality=95)


def _write_corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CORRUPT_BYTES)


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# AVA


AVA_STYLES = ("Complementary_Colors", "Duotones", "HDR", "Image_Grain", "Light_On_White",
              "Long_Exposure", "Macro", "Motion_Blur", "Negative_Image", "Rule_of_Thirds",
              "Shallow_DOF", "Silhouettes", "Soft_Focus", "Vanishing_Point")
AVA_CONTENT = ("animal", "architecture", "cityscape", "floral", "fooddrink", "landscape",
               "portrait", "stilllife")


def ava_quality(mean: float) -> float:
    """Degradation level of an AVA fixture image from its mean vote (2 → 0, 8 → 1)."""
    return float(np.clip((mean - 2.0) / 6.0, 0.0, 1.0))


def make_ava(root: Path, n: int = 60, seed: int = 0, size: int = 64, test_fraction: float = 0.25,
             n_tags: int = 3, malformed: bool = False,
             targets: Sequence[float] | None = None) -> Fixture:
    """An AVA folder: AVA.txt, tags.txt, challenges.txt, aesthetics_image_lists/ (generic_test
    and content lists), style_image_lists/ and images/<id>.jpg.

    Vote histograms: 80..200 votes from a rounded normal around a target mean in 2.5..8 with
    std 0.8..2.0 (so rating variances fall on both sides of 2.6); ``targets`` (one a image, e.g.
    :func:`imbalanced_targets`) replaces the uniform target means. ``meta``: ``histograms``,
    ``variances``, ``tags`` (id → tuple), ``test_ids``, ``styles`` (id → style 0..13 for train,
    14-tuple for test), ``content`` (split → category → ids).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    images = root / "images"
    scores: dict[str, float] = {}
    quality: dict[str, float] = {}
    hists: dict[str, np.ndarray] = {}
    variances: dict[str, float] = {}
    tags: dict[str, tuple[int, ...]] = {}
    lines: list[str] = []
    ids = [str(700000 + 37 * k) for k in range(n)]
    if targets is not None and len(targets) != n:
        raise ValueError(f"make_ava: {len(targets)} targets for {n} images")
    for k, image_id in enumerate(ids):
        target = rng.uniform(2.5, 8.0) if targets is None else float(targets[k])
        spread = rng.uniform(0.8, 2.0)
        votes = np.clip(np.rint(rng.normal(target, spread, int(rng.integers(80, 201)))), 1, 10)
        counts = np.bincount(votes.astype(int) - 1, minlength=10)
        mean = float((np.arange(1, 11) * counts).sum() / counts.sum())
        var = float((counts * (np.arange(1, 11) - mean) ** 2).sum() / counts.sum())
        t1 = int(rng.integers(1, n_tags + 1)) if rng.random() > 0.1 else 0
        t2 = int(rng.integers(1, 67)) if rng.random() < 0.3 else 0
        challenge = int(rng.integers(1, 4))
        lines.append(" ".join(str(v) for v in [k + 1, image_id, *counts.tolist(), t1, t2,
                                                 challenge]))
        scores[image_id], variances[image_id], hists[image_id] = mean, var, counts
        tags[image_id] = tuple(t for t in (t1, t2) if t)
        quality[image_id] = ava_quality(mean)
        _write_image(images / f"{image_id}.jpg", degrade(quality[image_id], rng, size))
    meta: dict = {"histograms": hists, "variances": variances, "tags": tags, "malformed": 0,
                  "missing": 0, "corrupt": 0, "corrupt_ids": []}
    if malformed:
        lines += ["1 2 3", f"{n + 1} 123x 0 0 0 0 1 0 0 0 0 0 0 0 1",
                  f"{n + 2} 999999 0 0 0 0 0 0 0 0 0 0 1 0 1",  # no votes
                  lines[0]]  # a repeated id
        meta["malformed"] = 4
        missing_id = "888888"
        lines.append(f"{n + 3} {missing_id} 0 0 1 2 3 2 1 0 0 0 1 0 1")
        meta["missing"] = 1
        corrupt_id = ids[-1]
        _write_corrupt(images / f"{corrupt_id}.jpg")
        meta["corrupt"], meta["corrupt_ids"] = 1, [corrupt_id]
    _lines(root / "AVA.txt", lines)
    tag_names = {1: "Abstract", 2: "Still Life", 3: "Landscape"}
    _lines(root / "tags.txt", [f"{t} {tag_names.get(t, f'Tag_{t}')}" for t in range(1, 67)])
    _lines(root / "challenges.txt", ["1 Blue", "2 Shadows", "3 Free_Study"])
    order = rng.permutation(n)
    n_test = max(1, round(n * test_fraction))
    test_ids = [ids[i] for i in sorted(order[:n_test])]
    train_ids = [ids[i] for i in sorted(order[n_test:])]
    lists = root / "aesthetics_image_lists"
    _lines(lists / "generic_test.jpgl", test_ids)
    content: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for split, members in (("train", train_ids), ("test", test_ids)):
        cats = rng.integers(0, len(AVA_CONTENT), size=len(members))
        for c, name in enumerate(AVA_CONTENT):
            chosen = [m for m, cat in zip(members, cats, strict=True) if cat == c]
            content[split][name] = chosen
            _lines(lists / f"{name}_{split}.jpgl", chosen)
    styles: dict[str, object] = {}
    style_dir = root / "style_image_lists"
    train_style = [int(rng.integers(0, 14)) for _ in train_ids]
    _lines(style_dir / "train.jpgl", train_ids)
    _lines(style_dir / "train.lab", [str(s + 1) for s in train_style])
    styles.update(zip(train_ids, train_style, strict=True))
    multi = [tuple(int(v) for v in (rng.random(14) < 0.15)) for _ in test_ids]
    _lines(style_dir / "test.jpgl", test_ids)
    _lines(style_dir / "test.multilab", [" ".join(str(v) for v in m) for m in multi])
    styles.update(zip(test_ids, multi, strict=True))
    _lines(style_dir / "styles.txt", [f"{i + 1} {s}" for i, s in enumerate(AVA_STYLES)])
    meta.update(test_ids=test_ids, train_ids=train_ids, styles=styles, content=content)
    return Fixture(root, scores, quality, meta)


def imbalanced_targets(n: int, seed: int = 0, extreme_fraction: float = 0.12,
                       middle: tuple[float, float] = (5.5, 0.4),
                       low: tuple[float, float] = (2.0, 3.5),
                       high: tuple[float, float] = (7.5, 9.0)) -> np.ndarray:
    """Target means for :func:`make_ava` with AVA's imbalance made extreme: most images near
    the middle (normal, ``middle`` = (mean, std)), a few very bad or very good ones (uniform
    in ``low`` and ``high``, ``extreme_fraction`` of the images, half each), shuffled.

    Jin et al.'s sample weights exist for this: trained on plain MSE a network predicts the
    rare extremes towards the crowded middle.
    """
    rng = np.random.default_rng(seed)
    n_low = n_high = round(n * extreme_fraction / 2)
    out = np.concatenate([rng.normal(middle[0], middle[1], n - n_low - n_high),
                          rng.uniform(*low, n_low), rng.uniform(*high, n_high)])
    return rng.permutation(out)


# ---------------------------------------------------------------------------------------------
# AADB

AADB_ATTRIBUTES = ("BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur",
                   "Object", "Repetition", "RuleOfThirds", "Symmetry", "VividColor")
#: attributes whose votes follow the image quality (the others are random)
AADB_LINKED = ("ColorHarmony", "Content", "Light", "VividColor", "Object")
AADB_SPLITS = (("Train", 0.6), ("Validation", 0.1), ("Test", 0.15), ("TestNew", 0.15))


def make_aadb(root: Path, n: int = 60, seed: int = 0, size: int = 64, workers: int = 3,
              malformed: bool = False) -> Fixture:
    """An AADB folder: imgListFiles_label/imgList{Train,Validation,Test,TestNew}Regression_
    {score,<Attribute>}.txt, datasetImages_originalSize/<name>, and the raw rater CSV
    ``AADB_AMT_ratings.csv`` (5 raters an image in assignments of 10; ``workers`` workers per
    rating round, each round with its own workers so nobody rates an image twice).

    Raters score 1..5 around ``1 + 4·q`` (q latent quality); the score is the mean rating mapped
    to [0, 1] (steps of 0.05) and the image is degraded by that score. Attributes are the mean
    of five −1/0/+1 votes (linked ones lean with quality). ``meta``: ``split`` (name → split),
    ``attributes`` (name → dict), ``ratings`` (name → [(worker, score)]), ``ratings_csv``.
    TestNew names carry the score prefix, as in the release.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    images = root / "datasetImages_originalSize"
    labels = root / "imgListFiles_label"
    scores: dict[str, float] = {}
    quality: dict[str, float] = {}
    split_of: dict[str, str] = {}
    attrs: dict[str, dict[str, float]] = {}
    urls: dict[str, str] = {}
    raw: dict[str, list[int]] = {}
    bounds = np.cumsum([0] + [round(n * f) for _, f in AADB_SPLITS])
    bounds[-1] = n
    for k in range(n):
        split = next(name for (name, _), lo, hi in zip(AADB_SPLITS, bounds[:-1], bounds[1:],
                                                       strict=True) if lo <= k < hi)
        q = rng.uniform(0, 1)
        ratings = np.clip(np.rint(1 + 4 * q + rng.normal(0, 0.6, 5)), 1, 5).astype(int)
        score = round(float(ratings.sum() - 5) / 20, 2)
        farm, server = int(rng.integers(1, 10)), int(rng.integers(100, 9999))
        pid, secret = 10_000_000 + 7919 * k, f"{int(rng.integers(0, 16**10)):010x}"
        flickr = f"{pid}_{secret}_b.jpg"
        name = f"farm{farm}_{server}_{flickr}"
        if split == "TestNew":
            name = f"{score:.3f}_{name}"
        urls[name] = f"http://farm{farm}.staticflickr.com/{server}/{flickr}"
        values = {}
        for a in AADB_ATTRIBUTES:
            lean = (q - 0.5) * 2.0 if a in AADB_LINKED else 0.0
            votes = np.clip(np.rint(lean + rng.normal(0, 0.7, 5)), -1, 1)
            values[a] = round(float(votes.mean()), 1)
        scores[name], quality[name], split_of[name], attrs[name] = score, score, split, values
        raw[name] = ratings.tolist()
        _write_image(images / name, degrade(score, rng, size))
    meta: dict = {"split": split_of, "attributes": attrs, "malformed": 0, "missing": 0,
                  "corrupt": 0, "corrupt_ids": []}
    extra: dict[str, list[str]] = {s: [] for s, _ in AADB_SPLITS}
    if malformed:
        extra["Train"] = ["only_a_name.jpg", "farm1_1_1_aa_b.jpg not_a_number",
                          "farm1_1_2_bb_b.jpg 1.7"]
        meta["malformed"] = 3
        missing = "farm1_1_3_cc_b.jpg"
        extra["Train"].append(f"{missing} 0.5")
        meta["missing"] = 1
        corrupt = next(nm for nm, s in split_of.items() if s == "Train")
        _write_corrupt(images / corrupt)
        meta["corrupt"], meta["corrupt_ids"] = 1, [corrupt]
    for split, _ in AADB_SPLITS:
        members = [nm for nm, s in split_of.items() if s == split]
        _lines(labels / f"imgList{split}Regression_score.txt",
               [f"{nm} {scores[nm]:g}" for nm in members] + extra[split])
        for a in AADB_ATTRIBUTES:
            _lines(labels / f"imgList{split}Regression_{a}.txt",
                   [f"{nm} {attrs[nm][a]:g}" for nm in members])
    # the raw rater CSV: 5 rounds; each a permutation cut into assignments of 10
    names = list(scores)
    rated: dict[str, list[tuple[str, float]]] = {nm: [] for nm in names}
    header = (["HITId", "WorkerId"] + [f"Input.image_url{i}" for i in range(1, 11)]
              + [f"Answer.overallScore{i}" for i in range(1, 11)])
    rows = [",".join(header)]
    for r in range(5):
        perm = rng.permutation(len(names))
        for c in range(0, len(perm), 10):
            chunk = [names[i] for i in perm[c:c + 10]]
            worker = f"A{r}W{(c // 10) % workers}"
            cells_url = [urls[nm] for nm in chunk] + [""] * (10 - len(chunk))
            cells_score = [str(raw[nm][r]) for nm in chunk] + [""] * (10 - len(chunk))
            for nm in chunk:
                rated[nm].append((worker, float(raw[nm][r])))
            rows.append(",".join([f"H{r}_{c}", worker] + cells_url + cells_score))
    if malformed:
        rows.append(",".join(["Hbad", "A9W9", urls[names[0]]] + [""] * 9 + ["great"]
                             + [""] * 9))
        meta["malformed_ratings"] = 1
    csv_path = root / "AADB_AMT_ratings.csv"
    _lines(csv_path, rows)
    meta.update(ratings=rated, ratings_csv=csv_path, urls=urls)
    return Fixture(root, scores, quality, meta)


# ---------------------------------------------------------------------------------------------
# AROD


def arod_quality(s: float) -> float:
    """Degradation level of an AROD fixture image from S (0.1 → 0, 0.9 → 1)."""
    return float(np.clip((s - 0.1) / 0.8, 0.0, 1.0))


def make_arod(root: Path, n: int = 60, seed: int = 0, size: int = 64,
              malformed: bool = False) -> Fixture:
    """An AROD folder: list.txt (``url;faves;views``) and img/<URL basename>.

    views are log-uniform in 30..100k, faves = round(views^S) for S in 0.15..0.85, and the
    truth is the S recomputed from those integers. ``meta``: ``faves``, ``views``, ``urls``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    images = root / "img"
    scores: dict[str, float] = {}
    quality: dict[str, float] = {}
    faves_of: dict[str, int] = {}
    views_of: dict[str, int] = {}
    urls: dict[str, str] = {}
    lines: list[str] = []
    for k in range(n):
        views = int(round(10 ** rng.uniform(1.5, 5.0)))
        faves = max(1, int(round(views ** rng.uniform(0.15, 0.85))))
        s = math.log(faves) / math.log(views)
        name = f"{20_000_000 + 104729 * k}_{int(rng.integers(0, 16**10)):010x}.jpg"
        url = f"https://farm{int(rng.integers(1, 9))}.staticflickr.com/{1000 + k}/{name}"
        lines.append(f"{url};{faves};{views}")
        scores[name], quality[name] = s, arod_quality(s)
        faves_of[name], views_of[name], urls[name] = faves, views, url
        _write_image(images / name, degrade(quality[name], rng, size))
    meta: dict = {"faves": faves_of, "views": views_of, "urls": urls, "malformed": 0,
                  "missing": 0, "dropped": 0, "corrupt": 0, "corrupt_ids": []}
    if malformed:
        lines += ["not a line at all", "https://x.org/a.jpg;many;100", "https://x.org/b.jpg;5",
                  "https://x.org/c.jpg;-3;100"]
        meta["malformed"] = 4
        lines += ["https://x.org/one_view.jpg;1;1", "https://x.org/no_faves.jpg;0;500"]
        meta["dropped"] = 2
        lines.append("https://x.org/9/missing_image.jpg;10;1000")
        meta["missing"] = 1
        corrupt = next(iter(scores))
        _write_corrupt(images / corrupt)
        meta["corrupt"], meta["corrupt_ids"] = 1, [corrupt]
    _lines(root / "list.txt", lines)
    return Fixture(root, scores, quality, meta)


# ---------------------------------------------------------------------------------------------
# folder + CSV


def make_folder(root: Path, n: int = 40, seed: int = 0, size: int = 64, header: bool = True,
                malformed: bool = False) -> Fixture:
    """A folder of images and ``scores.csv`` (``file,score``; scores uniform in 1..10, quality
    = (score − 1) / 9). A few images sit in a subfolder and a few are PNG."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    scores: dict[str, float] = {}
    quality: dict[str, float] = {}
    rows = ["file,score"] if header else []
    for k in range(n):
        score = round(float(rng.uniform(1.0, 10.0)), 3)
        name = f"photo_{k:03d}.{'png' if k % 7 == 3 else 'jpg'}"
        if k % 5 == 4:
            name = f"sub/{name}"
        rows.append(f"{name},{score}")
        scores[name], quality[name] = score, (score - 1.0) / 9.0
        _write_image(root / name, degrade(quality[name], rng, size))
    meta: dict = {"malformed": 0, "missing": 0, "corrupt": 0, "corrupt_ids": []}
    if malformed:
        rows += ["no_score.jpg", "bad_score.jpg,abc", ",5.0", "nan_score.jpg,nan"]
        meta["malformed"] = 4
        rows.append("missing.jpg,4.5")
        meta["missing"] = 1
        corrupt = next(iter(scores))
        _write_corrupt(root / corrupt)
        meta["corrupt"], meta["corrupt_ids"] = 1, [corrupt]
    _lines(root / "scores.csv", rows)
    return Fixture(root, scores, quality, meta)
