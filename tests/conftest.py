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
