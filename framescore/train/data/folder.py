"""A plain folder of images with a CSV of scores: ``file,score`` a row.

The header row is optional (recognised when its score cell is not a number; with a header the
columns are found by the names ``file`` and ``score``, in any order, other columns ignored).
File paths are relative to the image folder (default: the CSV's folder) or absolute.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from framescore.errors import DataError
from framescore.train.data.records import (
    Record,
    RecordSet,
    finish,
    require_some,
    warn_lines,
)

CSV_NAME = "scores.csv"


def _csv_path(root: Path, csv_file: Path | str | None) -> Path:
    if csv_file is not None:
        path = Path(csv_file).expanduser()
        return path if path.is_absolute() else root / path
    if root.is_file():
        return root
    if (root / CSV_NAME).is_file():
        return root / CSV_NAME
    found = sorted(root.glob("*.csv"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"no score CSV in {root} (expected {CSV_NAME}: file,score per row)")
    raise DataError(f"several CSV files in {root}: name the score CSV "
                    f"({', '.join(p.name for p in found[:3])})")


def read_folder(root: Path | str, csv_file: Path | str | None = None,
                image_dir: Path | str | None = None, require_images: bool = True) -> RecordSet:
    """A folder + score CSV as records (``id`` = the file cell, ``score`` its number).

    ``root`` is the folder (its CSV: ``csv_file``, else ``scores.csv``, else its only ``*.csv``)
    or the CSV itself. Rows without a file name or a finite score are malformed: skipped and
    counted; files missing on disk are skipped and counted.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"image folder not found: {root}")
    path = _csv_path(root, csv_file)
    if not path.is_file():
        raise DataError(f"score CSV not found: {path}")
    images = Path(image_dir).expanduser() if image_dir is not None else path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            rows = list(enumerate(csv.reader(f), 1))
    except OSError as err:
        raise DataError(f"cannot read score CSV {path}: {err.strerror or err}") from None
    except csv.Error as err:
        raise DataError(f"score CSV {path} is not valid CSV: {err}") from None
    rows = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    file_col, score_col = 0, 1
    if rows and not _is_number(rows[0][1][1] if len(rows[0][1]) > 1 else ""):
        header = [c.strip().lower() for c in rows[0][1]]
        if "file" in header and "score" in header:
            file_col, score_col = header.index("file"), header.index("score")
        rows = rows[1:]
    records: list[Record] = []
    bad: list[int] = []
    for n, row in rows:
        try:
            name = row[file_col].strip()
            score = float(row[score_col])
            if not name or not math.isfinite(score):
                raise ValueError
        except (ValueError, IndexError):
            bad.append(n)
            continue
        file = Path(name)
        records.append(Record(path=file if file.is_absolute() else images / file, score=score,
                              id=name))
    warn_lines(path, bad)
    require_some(records, path, "score CSV")
    return finish(records, path, require_images=require_images, malformed=len(bad))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
