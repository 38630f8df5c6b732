"""Writing results safely: staged output folders, atomic files, CSV/JSON, frames, plots.

An output folder is written under a temporary name beside its destination and renamed into
place only when complete, so an interrupted run never leaves a folder that looks finished, and
an existing folder is replaced only with ``force``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from framescore.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputError(f"{path}: exists already (use --force to replace it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str, force: bool = False) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), force=force)


def check_free(path: Path, force: bool) -> None:
    """Fail early (before any work) if ``path`` exists and ``force`` is not given."""
    if path.exists() and not force:
        raise OutputError(f"{path}: exists already (use --force to replace it)")


@contextlib.contextmanager
def staged_dir(dest: Path, force: bool = False) -> Iterator[Path]:
    """A temporary folder that becomes ``dest`` when the block ends without error.

    The old ``dest`` (with ``force``) is only removed once the new one is complete.
    """
    dest = Path(dest)
    check_free(dest, force)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    except OSError as exc:
        raise OutputError(f"{dest}: cannot write there ({exc.strerror})") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        replace_into(tmp, dest, force)
    except OutputError:  # the destination appeared while we worked
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace_into(src: Path, dest: Path, force: bool = False) -> None:
    """Rename a finished file or folder ``src`` to ``dest``.

    An existing ``dest`` is replaced only with ``force``, and removed only once the new one is
    in place.
    """
    if not (dest.exists() or dest.is_symlink()):
        os.replace(src, dest)
        return
    if not force:
        raise OutputError(f"{dest}: exists already (use --force to replace it)")
    old = dest.with_name(f".{dest.name}.old")
    _remove(old)
    os.replace(dest, old)
    os.replace(src, dest)
    _remove(old)


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def csv_text(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def json_text(obj: object) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def timestamp_name(seconds: float) -> str:
    """``t0001m02.345s`` style names that sort in time order."""
    minutes, sec = divmod(max(seconds, 0.0), 60.0)
    return f"t{int(minutes):04d}m{sec:06.3f}s"
