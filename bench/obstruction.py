"""Where frames with a hand in front of the lens rank: opencv-doc's tree.avi (issue 18, item 5).

    python bench/obstruction.py                                   # default model and rules
    python bench/obstruction.py --models framescore-mobile,framescore-mobile:run/weights.pt

tree.avi (Debian's opencv-doc) is a hand-held shot of a tree against a bright sky: 68 frames
decode (the header claims 444). From frame 53 a hand enters from the top right edge and covers
a growing part of the lens, silhouetted, with glare; frame 53 shows only a fingertip at the
edge, frames 54-67 the hand (checked by eye). ``HAND`` below is those 14 frames.

For each model (``name`` or ``name:weights-file``) the key-frames pipeline scores every frame
(``--every 1``) and picks ``--top 5`` with the default rules; the table gives, among all the
clip's frames and among the frames of the hand frames' shot (the same here: one shot), the rank
of the best-scored hand frame, how many of the 10 best-scored frames are hand frames, the rank
of the best clean frame, and the hand frames among the five key-frames.

``--paste`` adds the fault itself on this scene: :func:`framescore.train.faults.obstruction` at
severity 0.5, 24 draws, pasted on clean frame 32, split by how much of the shape lies over
clipped sky (above / below the median share); how many copies score above the clean frame.

``--demo`` adds the demo clip (``framescore demo``: real photos with shaky stretches, a fade
and cuts): each model's key-frames with the default settings, and the stretch each falls in
(all should be clean, as tests/models/test_mobile.py asks of the shipped model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# isort: split
import numpy as np  # noqa: E402
from machine import OPENCV_DATA  # noqa: E402  bench/machine.py, beside this script

from framescore.apps.keyframes import Settings, analyze  # noqa: E402
from framescore.demo import DemoClip, build_demo_clip  # noqa: E402
from framescore.io.video import Sampling  # noqa: E402

CLIP = OPENCV_DATA / "tree.avi"
HAND = frozenset(range(54, 68))  # a hand covers part of the lens (frame 53: a fingertip)


def ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each score, 1 = highest (ties broken by order)."""
    order = np.argsort(-scores, kind="stable")
    r = np.empty(len(scores), dtype=int)
    r[order] = np.arange(1, len(scores) + 1)
    return r


def measure(model: str, weights: str | None, sampling: Sampling | None, top: int) -> dict:
    settings = Settings(model=model, weights=weights, sampling=sampling, top=top)
    result = analyze(CLIP, settings)
    idx = result.scored.indices
    scores = result.scored.scores
    hand = np.array([int(i) in HAND for i in idx])
    shot = result.shot_of[hand][0] if hand.any() else None
    out = {
        "model": model if weights is None else f"{model} ({Path(weights).name})",
        "frames": len(idx),
        "hand": int(hand.sum()),
    }
    for scope, keep in (("clip", np.ones(len(idx), bool)), ("shot", result.shot_of == shot)):
        r = ranks(scores[keep])
        h = hand[keep]
        out[scope] = {
            "n": int(keep.sum()),
            "best_hand": int(r[h].min()) if h.any() else None,
            "hand_in_top10": int((h & (r <= 10)).sum()),
            "best_clean": int(r[~h].min()) if (~h).any() else None,
            "median_hand": float(np.median(r[h])) if h.any() else None,
        }
    out["picks"] = [(k.index, k.index in HAND) for k in result.keyframes]
    return out


def demo_picks(model: str, weights: str | None, clip: DemoClip) -> list[tuple[float, str]]:
    result = analyze(clip.path, Settings(model=model, weights=weights))
    return [(k.time, clip.kind_at(k.time)) for k in result.keyframes]


def paste(model: str, weights: str | None, draws: int = 24) -> dict:
    import av

    from framescore.preprocess import view
    from framescore.scorers import load_scorer
    from framescore.train import faults

    with av.open(str(CLIP)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 32:
                clean = frame.to_ndarray(format="rgb24")
                break
    scorer = load_scorer(model, weights, "cpu")
    clipped = clean.max(axis=2) > 250
    share, images = [], [clean]
    for seed in range(draws):
        m = faults.obstruction_mask(*clean.shape[:2], 0.5, np.random.default_rng(seed))
        share.append(float(m[clipped].sum() / m.sum()))
        images.append(faults.apply("obstruction", clean, 0.5, seed))
    scores = np.asarray(
        scorer.score_batch(np.stack([view(im, scorer.spec) for im in images]))["score"], dtype=float
    )
    sky = np.array(share) > np.median(share)
    above = scores[1:] > scores[0]
    return {
        "sky_share": float(np.mean(np.array(share)[sky])),
        "other_share": float(np.mean(np.array(share)[~sky])),
        "sky_above": int(above[sky].sum()),
        "other_above": int(above[~sky].sum()),
        "n": int(sky.sum()),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models", default="framescore-mobile,rules", help="comma-separated NAME or NAME:WEIGHTS"
    )
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument(
        "--default-sampling",
        action="store_true",
        help="the model's default sampling instead of every frame",
    )
    ap.add_argument("--demo", action="store_true", help="also the demo clip's key-frames")
    ap.add_argument(
        "--paste", action="store_true", help="also the fault pasted on a clean frame of this scene"
    )
    args = ap.parse_args(argv)
    if not CLIP.exists():
        sys.exit(f"{CLIP}: not found (apt-get install opencv-doc)")
    sampling = None if args.default_sampling else Sampling(every=1)
    print(
        "| model | frames | hand frames | best hand rank | hand in top 10 | best clean rank "
        f"| median hand rank | key-frames (--top {args.top}; * = hand) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for spec in args.models.split(","):
        name, _, weights = spec.partition(":")
        m = measure(name, weights or None, sampling, args.top)
        c = m["clip"]
        picks = ", ".join(f"{i}{'*' if h else ''}" for i, h in m["picks"])
        print(
            f"| {m['model']} | {m['frames']} | {m['hand']} | {c['best_hand']} | "
            f"{c['hand_in_top10']} | {c['best_clean']} | {c['median_hand']:g} | {picks} |"
        )
        if m["shot"]["n"] != c["n"]:
            s = m["shot"]
            print(
                f"|   within the hand frames' shot ({s['n']} frames) | | | {s['best_hand']} | "
                f"{s['hand_in_top10']} | {s['best_clean']} | {s['median_hand']:g} | |"
            )
    if args.paste:
        print("\n| model | fault over the sky: above clean | elsewhere: above clean |")
        print("|---|---|---|")
        for spec in args.models.split(","):
            name, _, weights = spec.partition(":")
            p = paste(name, weights or None)
            label = name if not weights else f"{name} ({Path(weights).name})"
            print(
                f"| {label} | {p['sky_above']}/{p['n']} (clipped under it "
                f"{p['sky_share']:.2f}) | {p['other_above']}/{p['n']} "
                f"(clipped under it {p['other_share']:.2f}) |"
            )
    if not args.demo:
        return
    import tempfile

    print("\n| model | demo key-frames (time s: stretch) | all clean |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        clip = build_demo_clip(Path(tmp) / "demo.mp4")
        for spec in args.models.split(","):
            name, _, weights = spec.partition(":")
            picks = demo_picks(name, weights or None, clip)
            label = name if not weights else f"{name} ({Path(weights).name})"
            text = ", ".join(f"{t:.1f}: {kind}" for t, kind in picks)
            print(f"| {label} | {text} | {all(k == 'clean' for _, k in picks)} |")


if __name__ == "__main__":
    main()
