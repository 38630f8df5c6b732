"""Writing results safely: staged output folders, atomic files, CSV/JSON, frames, plots.

An output folder is written under a temporary name beside its destination and renamed into
place only when complete, so an interrupted run never leaves a folder that looks finished, and
an existing folder is replaced only with ``force``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from framescore.errors import OutputError
from framescore.signals import deferred


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
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{display_name(path)}: cannot write ({_why(exc)})") from None
        raise


def write_text_atomic(path: Path, text: str, force: bool = False) -> None:
    """Write ``text`` as UTF-8; undecodable file-name bytes in it are written as ``\\xNN``
    (see :func:`display_name`), so the file is always valid UTF-8."""
    write_bytes_atomic(path, display_name(text).encode("utf-8"), force=force)


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
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            raise OutputError(f"{display_name(dest)}: cannot write ({_why(exc)}); "
                              "nothing was changed") from None
        raise
    try:
        replace_into(tmp, dest, force)
    except BaseException as exc:  # the destination appeared while we worked, or a fault
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{display_name(dest)}: cannot write ({_why(exc)})") from None
        raise


# errors that can only come from writing (a full disk or quota, a file too big, read-only)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


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
        try:
            os.replace(src, dest)
        except OSError as exc:  # another run's folder appeared after the check
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or force:
                raise
            raise OutputError(f"{dest}: exists already (use --force to replace it)") from None
        return
    if not force:
        raise OutputError(f"{dest}: exists already (use --force to replace it)")
    old = dest.with_name(f".{dest.name}.old")
    _remove(old)
    with deferred():  # a signal between the two renames would leave neither folder in place
        os.replace(dest, old)
        try:
            os.replace(src, dest)
        except BaseException:
            os.replace(old, dest)
            raise
    _remove(old)


def display_name(path: str | os.PathLike) -> str:
    """``path`` as text that can always be printed or drawn: bytes that are not valid in the
    file-system encoding (kept as surrogates by ``os.fsdecode``) become ``\\xNN`` escapes."""
    text = os.fsdecode(os.fspath(path))
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    from PIL import Image  # on use: the command line's start-up path imports this module

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
    """Indented JSON; strings holding undecodable file-name bytes hold their
    :func:`display_name` instead (a JSON string cannot hold raw bytes)."""
    return json.dumps(_displayable(obj), indent=2, ensure_ascii=False,
                      default=_json_default) + "\n"


def _displayable(obj: object) -> object:
    if isinstance(obj, str):
        return display_name(obj) if _has_surrogates(obj) else obj
    if isinstance(obj, Path):
        return display_name(obj)
    if isinstance(obj, dict):
        return {_displayable(k): _displayable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_displayable(v) for v in obj]
    return obj


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def safe_streams() -> None:
    """Let stdout and stderr print any text: characters they cannot encode (undecodable
    file-name bytes, kept as surrogates) come out as ``\\xNN`` escapes, never an error."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):
                reconfigure(errors="backslashreplace")


def _json_default(obj: object) -> object:
    import numpy as np

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
