"""AROD (Schwarz et al. 2018) in its own file format.

``list.txt``: one image a line, ``url;faves;views``. The image lives in ``img/<basename of the
URL>`` (``image_dir`` to put it elsewhere). Score S = log(faves) / log(views); it needs
views > 1 and faves ≥ 1, so other lines are dropped by rule and counted (``RecordSet.dropped``),
apart from malformed lines (not three fields, counts not integers, negative counts).
"""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import unquote, urlsplit

from framescore.train.data.records import (
    Record,
    RecordSet,
    find_file,
    finish,
    log,
    read_lines,
    require_dir,
    require_some,
    warn_lines,
)

IMAGE_DIR = "img"
LIST_FILE = "list.txt"


def image_name(url: str) -> str:
    """The local file name of an AROD image: the basename of the URL's path."""
    path = urlsplit(url).path if "://" in url else url
    return unquote(path.rsplit("/", 1)[-1])


def arod_score(faves: int, views: int) -> float:
    """S = log(faves) / log(views) (needs views > 1 and faves ≥ 1)."""
    return math.log(faves) / math.log(views)


def read_arod(root: Path | str, list_file: str = LIST_FILE, image_dir: Path | str | None = None,
              require_images: bool = True) -> RecordSet:
    """``list.txt`` as records (``id`` = image file name, ``score`` = S, ``extra`` = url, faves,
    views). ``info["dropped_views"]`` / ``info["dropped_faves"]`` say why lines were dropped."""
    root = require_dir(root, "AROD")
    path = find_file([root / list_file], f"AROD list {list_file}")
    images = Path(image_dir).expanduser() if image_dir is not None else root / IMAGE_DIR
    records: list[Record] = []
    bad: list[int] = []
    few_views = no_faves = 0
    seen: set[str] = set()
    for n, line in read_lines(path, "AROD list"):
        parts = line.rsplit(";", 2)
        try:
            if len(parts) != 3:
                raise ValueError
            url, faves, views = parts[0].strip(), int(parts[1]), int(parts[2])
            name = image_name(url)
            if not name or faves < 0 or views < 0 or name in seen:
                raise ValueError
        except ValueError:
            bad.append(n)
            continue
        if views <= 1:
            few_views += 1
            continue
        if faves < 1:
            no_faves += 1
            continue
        seen.add(name)
        records.append(Record(path=images / name, score=arod_score(faves, views), id=name,
                              extra={"url": url, "faves": faves, "views": views}))
    warn_lines(path, bad)
    dropped = few_views + no_faves
    if dropped:
        log.info("%s: dropped %d line(s) by rule (%d with views <= 1, %d with faves < 1)",
                 path, dropped, few_views, no_faves)
    require_some(records, path, "AROD list")
    return finish(records, path, require_images=require_images, malformed=len(bad),
                  dropped=dropped, info={"dropped_views": few_views, "dropped_faves": no_faves})
