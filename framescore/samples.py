"""Real photographs that an installed package ships (scikit-image's data folder).

Used by ``framescore demo`` and the tests, so nothing has to be downloaded.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image

from framescore.errors import MediaError

# colour photographs shipped inside the scikit-image wheel (not fetched at run time)
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "ihc.png")


def data_dir() -> Path:
    return Path(str(files("skimage") / "data"))


def photo_paths() -> dict[str, Path]:
    """Name (file stem) → path of every shipped colour photograph present on this install."""
    root = data_dir()
    return {Path(n).stem: root / n for n in PHOTOS if (root / n).is_file()}


def photo(name: str) -> np.ndarray:
    """A shipped photograph as an RGB uint8 array."""
    paths = photo_paths()
    if name not in paths:
        raise MediaError(f"no shipped photo called {name!r} (have: {', '.join(paths)})")
    with Image.open(paths[name]) as im:
        return np.asarray(im.convert("RGB"))
