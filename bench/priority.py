"""The scorer's priority against the decoder's: key-frames frames/s at several nice values.

    python bench/priority.py                          # rules, 720p, nice +0 / +10 / +19
    python bench/priority.py --model framescore-mobile --nice 0,10 --rounds 6

Each round runs the whole key-frames analysis once per nice value (in alternating order, so a
change in the machine's load hits every value alike) and decode-only once; prints the medians
and the share of decode-only. The nice value is that of the scoring thread once it finds
itself waiting for frames (``framescore.scoring.CONSUMER_NICE``; 0 never lowers it).
"""

from __future__ import annotations

import argparse
import statistics
import time

from keyframes import decode_only, make_clip

from framescore import scoring
from framescore.apps import keyframes as kf
from framescore.scorers import load_scorer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="rules")
    ap.add_argument("--nice", default="0,10,19", help="comma-separated nice increments")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--size", default="1280x720", help="clip WxH (H.264, 20 s)")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    clip = make_clip(width, height, 20.0)
    scorer = load_scorer(args.model, None, device="cpu")
    values = [int(v) for v in args.nice.split(",")]
    rates: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for nice in values if r % 2 else values[::-1]:
            scoring.CONSUMER_NICE = nice
            start = time.perf_counter()
            result = kf.analyze(clip, kf.Settings(sampling=None), scorer=scorer)
            rate = result.stats.decoded / (time.perf_counter() - start)
            rates.setdefault(f"pipeline, nice +{nice}", []).append(rate)
        rates.setdefault("decode only", []).append(decode_only(clip))
    ceiling = statistics.median(rates["decode only"])
    print(f"| {args.model}, {args.size} | video frames/s (median of {args.rounds}) "
          "| vs decode-only |\n|---|---:|---:|")
    for name, values_ in rates.items():
        m = statistics.median(values_)
        print(f"| {name} | {m:.0f} | {100 * m / ceiling:.0f} % |")


if __name__ == "__main__":
    main()
