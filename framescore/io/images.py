"""Reading photographs robustly with Pillow.

Every image comes out as an RGB uint8 array in display orientation, whatever it was on disk:

* EXIF orientation is applied (``ImageOps.exif_transpose``);
* greyscale, bilevel and palette images are expanded to RGB; 16-bit greyscale (``I;16*``)
  keeps its top 8 bits, 32-bit integer (``I``) images are read as 16-bit when they use that
  range, float (``F``) images as 0..1 when they fit it, else 0..255;
* CMYK is converted through its embedded ICC profile when it has one (LittleCMS), else by
  Pillow's plain formula;
* transparency (RGBA, LA, a palette or tRNS transparent colour) is composited over white;
* large images are decoded at reduced size when only ``min_side`` pixels are needed: JPEG
  through libjpeg's DCT scaling (``Image.draft``), other formats with a box ``reduce`` after
  decoding. Both keep the short side at least ``min_side``.

Files that cannot be decoded raise :class:`MediaError` with a short reason; listing helpers
collect such files in one ``skipped`` list so a command can warn once and go on.
"""

from __future__ import annotations

import calendar
import contextlib
import glob
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from framescore.errors import MediaError

IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".tif", ".tiff", ".webp", ".bmp", ".dib",
    ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".jpf", ".jpx", ".qoi",
    ".heic", ".heif", ".avif", ".psd", ".sgi", ".ico",
}
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_SUBSEC_ORIGINAL = 0x9291
_BACKGROUND = (255, 255, 255)


@dataclass
class Picture:
    """A decoded photograph.

    ``image`` is RGB uint8 in display orientation, possibly reduced (see ``load_image``);
    ``size`` is the full-resolution ``(width, height)`` in display orientation; ``taken`` the
    capture time in seconds (EXIF DateTimeOriginal read as UTC, so only differences between
    photos mean anything) or None.
    """

    path: Path
    image: np.ndarray
    size: tuple[int, int]
    taken: float | None

    @property
    def scale(self) -> float:
        """Full-resolution pixels per pixel of ``image``."""
        return self.size[0] / self.image.shape[1]


@dataclass
class Listing:
    """The files a set of command-line paths names, and those passed over (with the reason)."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _short_reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "cannot identify image file" in text:
        return "not an image Pillow can read"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels (Pillow's decompression-bomb limit)"
    return text.splitlines()[0][:120]


def capture_time(image: Image.Image) -> float | None:
    """EXIF DateTimeOriginal (+ SubSecTimeOriginal) in seconds, read as UTC; None without it."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
        stamp = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME_ORIGINAL)
        if not stamp:
            return None
        when = datetime.strptime(str(stamp).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        seconds = float(calendar.timegm(when.timetuple()))
        fraction = str(sub.get(_SUBSEC_ORIGINAL) or "").strip("\x00 ")
        if fraction.isdigit():
            seconds += float(f"0.{fraction}")
        return seconds
    except (ValueError, TypeError, KeyError, OSError, SyntaxError):
        return None


def _over_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _grey_to_rgb(values: np.ndarray) -> np.ndarray:
    grey = np.ascontiguousarray(values.astype(np.uint8))
    return np.repeat(grey[:, :, None], 3, axis=2)


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            import io

            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"),
                                             outputMode="RGB")
        except Exception:  # a broken profile: fall back to the plain formula
            pass
    return image.convert("RGB")


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow image as an RGB uint8 array (rules in the module docstring)."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return np.asarray(image)
    if mode.startswith("I;16"):
        return _grey_to_rgb(np.asarray(image).astype(np.uint16) >> 8)
    if mode == "I":
        values = np.clip(np.asarray(image), 0, 65535)
        if values.max(initial=0) > 255:
            values = (values.astype(np.float32) / 257.0).round()
        return _grey_to_rgb(values)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        if values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        return _grey_to_rgb(np.clip(values, 0, 255).round())
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(image))
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info:
        return np.asarray(_over_white(image))
    return np.asarray(image.convert("RGB"))


def load_image(path: str | Path, min_side: int | None = None) -> Picture:
    """Decode ``path`` as RGB in display orientation (see the module docstring).

    ``min_side``: the smallest short side the caller needs; larger images are decoded at
    reduced size (never below it). None keeps the full resolution.
    """
    path = Path(path)
    _check_regular(path)
    try:
        with Image.open(path) as im:
            taken = capture_time(im)
            full = im.size
            if min_side and im.format == "JPEG":
                im.draft(None, (min_side, min_side))
            scaled = im.size
            oriented = ImageOps.exif_transpose(im)
            rgb = to_rgb(oriented)
    except MediaError:
        raise
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MediaError(f"{path}: is a folder, not an image") from None
    except Exception as exc:  # Pillow raises many kinds on broken files
        raise MediaError(f"{path}: {_short_reason(exc)}") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise MediaError(f"{path}: decoded to an empty or odd-shaped image")
    if oriented.size != scaled:  # a 90-degree EXIF orientation swapped the sides
        full = (full[1], full[0])
    if min_side:
        rgb = _reduce(rgb, min_side)
    return Picture(path=path, image=np.ascontiguousarray(rgb), size=full, taken=taken)


def _check_regular(path: Path) -> None:
    """A FIFO, socket or device named like a photo would block or never end: refuse it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # Image.open names the problem
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise MediaError(f"{path}: not a regular file")


def _reduce(rgb: np.ndarray, min_side: int) -> np.ndarray:
    """Box-reduce by a whole factor that keeps the short side at least ``min_side``."""
    factor = min(rgb.shape[0], rgb.shape[1]) // min_side
    if factor < 2:
        return rgb
    return np.asarray(Image.fromarray(rgb).reduce(factor))


def file_time(path: Path) -> float:
    return path.stat().st_mtime


def _scan_folder(folder: Path, recursive: bool, exclude: Sequence[Path],
                 listing: Listing) -> None:
    """Add ``folder``'s image files (and its sub-folders' when ``recursive``) in name order."""
    root = folder.resolve()
    skip = set()
    for x in exclude:
        with contextlib.suppress(ValueError):
            skip.add(x.relative_to(root))
    for here, dirs, files in os.walk(folder):
        rel = Path(here).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if recursive and not d.startswith(".")
                         and rel / d not in skip)
        for name in sorted(files):
            if name.startswith(".") or rel / name in skip:
                continue
            entry = Path(here) / name
            if entry.suffix.lower() in IMAGE_SUFFIXES:
                listing.files.append(entry)
            else:
                listing.skipped.append((entry, "not an image file"))


def find_images(paths: Sequence[str | Path], recursive: bool = False,
                exclude: Sequence[Path] = ()) -> Listing:
    """The image files that ``paths`` name: files as given, folders scanned, globs expanded.

    A folder contributes its files with an image suffix (``IMAGE_SUFFIXES``; sub-folders too
    when ``recursive``); its other files go to ``skipped``; hidden files and folders (names
    starting with a dot) and anything under ``exclude`` are passed over silently. A path that
    does not exist (and matches nothing as a glob) is a :class:`MediaError`.
    """
    listing = Listing()
    exclude = [Path(x).resolve() for x in exclude]
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _scan_folder(path, recursive, exclude, listing)
        elif path.exists():
            listing.files.append(path)
        elif glob.has_magic(str(raw)):
            matches = sorted(glob.glob(str(raw), recursive=True))
            if not matches:
                raise MediaError(f"{raw}: no file matches this pattern")
            for match in matches:
                m = Path(match)
                if m.is_dir():
                    _scan_folder(m, recursive, exclude, listing)
                else:
                    listing.files.append(m)
        else:
            raise MediaError(f"{raw}: no such file or folder")
    seen: set[str] = set()
    unique = []
    for f in listing.files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    listing.files = unique
    return listing


def skipped_message(skipped: Sequence[tuple[Path, str]], shown: int = 5) -> str:
    """One line naming the files passed over: ``skipped 3 files: a.txt (not an image), ...``."""
    parts = [f"{p.name} ({why})" for p, why in skipped[:shown]]
    more = f", and {len(skipped) - shown} more" if len(skipped) > shown else ""
    noun = "file" if len(skipped) == 1 else "files"
    return f"skipped {len(skipped)} {noun}: {', '.join(parts)}{more}"
