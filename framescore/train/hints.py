"""Relative hints from clean photos: graded faults → reproducible training triplets.

No aesthetic ratings are needed. In the spirit of AROD's relative hints, a good photograph
ranks above a damaged copy of itself, and a less damaged copy above a more damaged one. From
a folder of good photos and a seed this module builds, deterministically:

1. **the split**: every photo is identified by the SHA-256 of its bytes; photos are ordered
   by ``sha256(f"{seed}:{file_sha}")`` and the first ``round(holdout · N)`` (at least one) are
   held out for evaluation only. The manifest records each photo's path, hash and split, so
   the split survives renaming and moving the folder.
2. **working copies**: each photo is EXIF-rotated and resized so its long side is
   ``long_side`` pixels (480 by default: the scale of a video frame, not of a 24-megapixel
   file, so noise and blur read as they do in footage).
3. **groups** (training photos only): for each of ``variants`` copies of a photo (mirrored at
   random, cropped to a random 90–100 % of each side) and each fault in
   :data:`framescore.train.faults.FAULTS`, a *low* severity ``s₁ ~ U[0.15, 0.55]`` (the range is
   ``low_severity``) and a *high* one ``s₂ ~ U[s₁ + 0.3, 1]`` are drawn; the clean copy and
   the two damaged ones form a group whose quality is ``S = 1 − severity`` (clean: 1). Both
   damaged copies share the fault's random choices (blur path, crop corner, noise pattern),
   so they differ only in amount.
4. **triplets**: each group gives two AROD triplets (anchor, positive, negative): (clean,
   low, high) where the odd one out is worse, and (high, low, clean) where it is better.
   The pairs (clean > low), (low > high), (clean > high) are the relative hints of the
   hinge loss.

Renders are stored warped to ``size`` x ``size`` (the model's input, the whole frame as the
video decoder delivers it) in one ``images.npy`` (uint8, N x size x size x 3), described row
by row in ``images.csv``; ``triplets.csv`` lists the groups; ``manifest.json`` everything
else. The held-out photos are not rendered: :mod:`framescore.train.fault_eval` renders them
at evaluation time from the same manifest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from framescore.errors import DataError, MediaError
from framescore.hashing import sha256_of
from framescore.train import faults as faultlib

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
LOW_SEVERITY = (0.15, 0.55)
HIGH_GAP = 0.3


@dataclass(frozen=True)
class PhotoEntry:
    """One source photo: where it was, its content hash and which split it belongs to."""

    path: str
    sha256: str
    split: str          # "train" or "test"


def find_photos(sources: Sequence[str | Path]) -> list[Path]:
    """Image files named by ``sources``: folders (searched recursively), image files, or
    ``.txt`` lists with one path a line (``#`` comments). Sorted, duplicates removed."""
    found: list[Path] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            found.extend(p for p in src.rglob("*")
                         if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif src.is_file() and src.suffix.lower() == ".txt":
            for line in src.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    p = Path(line) if Path(line).is_absolute() else src.parent / line
                    if not p.is_file():
                        raise DataError(f"{src}: listed photo not found: {line}")
                    found.append(p)
        elif src.is_file():
            if src.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{src}: not an image file ({', '.join(IMAGE_SUFFIXES)})")
            found.append(src)
        else:
            raise DataError(f"{src}: no such file or folder")
    unique = sorted({p.resolve() for p in found})
    if not unique:
        raise DataError("no photos found in " + ", ".join(str(s) for s in sources))
    return unique


def split_photos(paths: Sequence[Path], seed: int, holdout: float = 0.2,
                 hashes: Sequence[str] | None = None) -> list[PhotoEntry]:
    """The train/test split: photos ordered by ``sha256(f"{seed}:{file_sha}")``; the first
    ``max(1, round(holdout·N))`` are held out (test). Identical files count once."""
    if not 0.0 < holdout < 1.0:
        raise DataError(f"holdout must be between 0 and 1, got {holdout}")
    hashes = list(hashes) if hashes is not None else [sha256_of(p) for p in paths]
    seen: dict[str, Path] = {}
    for p, h in zip(paths, hashes, strict=True):
        seen.setdefault(h, p)
    if len(seen) < 2:
        raise DataError(f"need at least 2 different photos to hold some out, got {len(seen)}")
    order = sorted(seen, key=lambda h: hashlib.sha256(f"{seed}:{h}".encode()).hexdigest())
    n_test = min(len(order) - 1, max(1, round(holdout * len(order))))
    test = set(order[:n_test])
    return [PhotoEntry(str(seen[h]), h, "test" if h in test else "train")
            for h in sorted(seen, key=lambda h: str(seen[h]))]


def load_photo(path: str | Path, long_side: int = 480) -> np.ndarray:
    """A photo as RGB uint8, EXIF-rotated, resized (high quality) so its long side is
    ``long_side`` (never enlarged); a file that cannot be read is a :class:`MediaError`."""
    Image.MAX_IMAGE_PIXELS = None  # local wallpapers can be 5K+ and are trusted files
    try:
        with Image.open(path) as im:
            im.draft("RGB", (long_side, long_side))
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGB")
            scale = long_side / max(im.size)
            if scale < 1:
                size = (max(8, round(im.width * scale)), max(8, round(im.height * scale)))
                im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            return np.asarray(im).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path}: cannot read image ({exc})") from None


def warp(image: np.ndarray, size: int) -> np.ndarray:
    """The whole image resized to ``size`` x ``size`` by the one resize of every path
    (:func:`framescore.preprocess.resize`), as the model sees video frames."""
    from framescore.preprocess import resize

    return resize(image, size, size)


def variant(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training copy: mirrored with probability ½, cropped to 90–100 % of each side."""
    h, w = photo.shape[:2]
    fy, fx = rng.uniform(0.9, 1.0, size=2)
    ch, cw = max(8, round(h * fy)), max(8, round(w * fx))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = photo[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class Render:
    """One rendered training image (a row of ``images.csv``)."""

    photo: int          # index into the manifest's photos
    variant: int
    fault: str          # "clean" or a fault name
    severity: float
    seed: int           # seed of the fault's random choices


def _task_seed(seed: int, photo_sha: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{photo_sha}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def check_low_severity(low_severity: Sequence[float]) -> tuple[float, float]:
    """The range of the low severity as ``(a, b)``: 0 < a ≤ b and b + HIGH_GAP ≤ 1, so that
    a high severity at least ``HIGH_GAP`` above it still exists."""
    try:
        a, b = (float(v) for v in low_severity)
    except (TypeError, ValueError):
        raise DataError(f"low severity range: expected two numbers, got {low_severity!r}") \
            from None
    if not (0 < a <= b and b + HIGH_GAP <= 1 + 1e-9):
        raise DataError(f"low severity range {a:g},{b:g}: need 0 < low ≤ high ≤ "
                        f"{1 - HIGH_GAP:g} (the high copy lies ≥ {HIGH_GAP:g} above it)")
    return a, b


def plan_groups(photo_index: int, photo_sha: str, n_variants: int, seed: int,
                fault_names: Sequence[str], low_severity: Sequence[float] = LOW_SEVERITY
                ) -> list[tuple[int, list[Render]]]:
    """For one training photo: per variant, the clean render then (low, high) per fault."""
    lo, hi = check_low_severity(low_severity)
    out = []
    for v in range(n_variants):
        rng = np.random.default_rng(_task_seed(seed, photo_sha, v))
        renders = [Render(photo_index, v, "clean", 0.0, 0)]
        for name in fault_names:
            low = float(rng.uniform(lo, hi))
            high = float(rng.uniform(min(low + HIGH_GAP, 1.0), 1.0))
            fseed = int(rng.integers(2 ** 62))
            renders.append(Render(photo_index, v, name, round(low, 4), fseed))
            renders.append(Render(photo_index, v, name, round(high, 4), fseed))
        out.append((_task_seed(seed, photo_sha, 10_000 + v), renders))
    return out


def _render_variant(args: tuple) -> np.ndarray:
    path, long_side, size, variant_seed, renders = args
    photo = load_photo(path, long_side)
    base = variant(photo, np.random.default_rng(variant_seed))
    images = []
    for r in renders:
        img = base if r.fault == "clean" else faultlib.apply(r.fault, base, r.severity, r.seed)
        images.append(warp(img, size))
    return np.stack(images)



def _quiet_worker() -> None:
    """In a render process: SIGTERM ends it plainly and SIGINT is the parent's to handle (a
    forked worker inherits the command line's handlers, which raise: each idle worker printed
    a traceback when the pool was ended after the last render)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

def build(sources: Sequence[str | Path], out: str | Path, seed: int = 0, *,
          variants: int = 10, size: int = 160, long_side: int = 480, holdout: float = 0.2,
          fault_names: Sequence[str] | None = None, workers: int = 1,
          low_severity: Sequence[float] = LOW_SEVERITY,
          on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Build the hints dataset in ``out`` (which must not exist or be empty); returns the manifest.

    Writes ``manifest.json``, ``images.npy``, ``images.csv`` and ``triplets.csv`` (see the
    module docstring). ``low_severity`` is the range of the low damage (the default,
    0.15–0.55, never puts two heavily damaged copies in one group; up to 0.7 does).
    ``on_progress(done, total)`` is called per rendered photo variant.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not an empty folder")
    if variants < 1 or size < 16 or long_side < size:
        raise DataError("need variants ≥ 1, size ≥ 16 and long_side ≥ size")
    low_severity = check_low_severity(low_severity)
    names = list(fault_names) if fault_names else list(faultlib.FAULTS)
    unknown = [n for n in names if n not in faultlib.FAULTS]
    if unknown:
        raise DataError(f"unknown fault(s): {', '.join(unknown)}")
    paths = find_photos(sources)
    entries = split_photos(paths, seed, holdout)
    for e in entries:  # every photo must be readable before hours of work start
        load_photo(e.path, 64)

    tasks: list[tuple] = []
    rows: list[Render] = []
    for i, e in enumerate(entries):
        if e.split != "train":
            continue
        for vseed, renders in plan_groups(i, e.sha256, variants, seed, names, low_severity):
            tasks.append((e.path, long_side, size, vseed, renders))
            rows.extend(renders)
    if not tasks:
        raise DataError("no training photos left after the hold-out split")

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "images.npy.part"
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                      shape=(len(rows), size, size, 3))
    per_task = len(tasks[0][4])
    pool_ctx = multiprocessing.get_context("fork") if workers > 1 else None
    results: Iterable[np.ndarray]
    if pool_ctx is not None:
        pool = pool_ctx.Pool(workers, initializer=_quiet_worker)
        results = pool.imap(_render_variant, tasks, chunksize=1)
    else:
        pool = None
        results = map(_render_variant, tasks)
    try:
        for k, block in enumerate(results):
            array[k * per_task:(k + 1) * per_task] = block
            if on_progress is not None:
                on_progress(k + 1, len(tasks))
    finally:
        if pool is not None:
            pool.terminate()
    array.flush()
    del array
    tmp.replace(out / "images.npy")

    with open(out / "images.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "photo", "variant", "fault", "severity", "seed"])
        for k, r in enumerate(rows):
            w.writerow([k, r.photo, r.variant, r.fault, r.severity, r.seed])
    groups = triplet_groups(rows)
    with open(out / "triplets.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["fault", "clean", "low", "high", "s_low", "s_high"])
        for g in groups:
            w.writerow(g)
    manifest = {
        "format": FORMAT_VERSION, "seed": seed, "holdout": holdout, "variants": variants,
        "size": size, "long_side": long_side, "faults": names,
        "low_severity": list(low_severity), "high_gap": HIGH_GAP,
        "photos": [asdict(e) for e in entries],
        "n_train_photos": sum(e.split == "train" for e in entries),
        "n_test_photos": sum(e.split == "test" for e in entries),
        "n_images": len(rows), "n_groups": len(groups),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def triplet_groups(rows: Sequence[Render]) -> list[tuple[str, int, int, int, float, float]]:
    """(fault, clean id, low id, high id, s_low, s_high) for every variant and fault."""
    clean: dict[tuple[int, int], int] = {}
    damaged: dict[tuple[int, int, str], list[tuple[float, int]]] = {}
    for k, r in enumerate(rows):
        if r.fault == "clean":
            clean[(r.photo, r.variant)] = k
        else:
            damaged.setdefault((r.photo, r.variant, r.fault), []).append((r.severity, k))
    groups = []
    for (photo, var, fault), items in damaged.items():
        (s1, low), (s2, high) = sorted(items)[:2]
        groups.append((fault, clean[(photo, var)], low, high, s1, s2))
    return groups


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a hints folder; a missing or unreadable one is a :class:`DataError`."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{folder}: not a hints folder (no {MANIFEST}; "
                        "make one with `framescore data`)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable manifest ({exc})") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise DataError(f"{path}: unsupported hints format {manifest.get('format')!r}")
    return manifest


def test_photos(manifest: dict) -> list[str]:
    """Paths of the held-out photos of a manifest."""
    return [p["path"] for p in manifest["photos"] if p["split"] == "test"]


def read_groups(folder: str | Path) -> np.ndarray:
    """``triplets.csv`` as an int array (G, 3) of (clean, low, high) image ids."""
    path = Path(folder) / "triplets.csv"
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    ids = [(int(r["clean"]), int(r["low"]), int(r["high"])) for r in reader]
    if not ids:
        raise DataError(f"{path}: no triplets")
    return np.asarray(ids, dtype=np.int64)


def read_group_faults(folder: str | Path) -> list[str]:
    """The fault of each row of ``triplets.csv``."""
    with open(Path(folder) / "triplets.csv", newline="") as fh:
        return [r["fault"] for r in csv.DictReader(fh)]
