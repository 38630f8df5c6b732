"""Checking exported files against the model they came from, on real photographs.

The images are the photographs shipped with scikit-image (:mod:`framescore.samples`), brought
to the model's input by its view. For every output the figures are

* ``max_abs = max |got - ref|`` over the batch and the output's elements, and
* ``rel = max_abs / max |ref|`` (error relative to the output's scale, so outputs near zero
  do not blow it up).

A file passes when ``rel <= tolerance`` for every output (fp32 1e-4, fp16 1e-2) and the ranking
of the images by score is unchanged: no pair of images swaps order unless their reference
scores are closer than the tolerance allows to tell apart (``|ref_i - ref_j| <= tol max|ref|``).
int8 files are judged by the Spearman rank correlation ρ of their scores with the fp32 file's
over more views (random crops) of the photographs; ρ is reported, not enforced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from framescore.models.spec import InputSpec, Scorer

TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}


def photo_batch(spec: InputSpec, names: list[str] | None = None, crops_per_photo: int = 0,
                seed: int = 0) -> np.ndarray:
    """Shipped photographs as a uint8 ``(N, H, W, 3)`` batch at ``spec.size`` by ``spec.view``.

    Each photo comes once as a whole, plus ``crops_per_photo`` random crops (40-100 % of each
    side, seeded) brought to the input the same way, for checks that need more images.
    """
    from framescore.preprocess import view
    from framescore.samples import photo, photo_paths

    rng = np.random.default_rng(seed)
    names = names or list(photo_paths())
    out = []
    for name in names:
        image = photo(name)
        out.append(view(image, spec))
        h, w = image.shape[:2]
        for _ in range(crops_per_photo):
            ch, cw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            out.append(view(np.ascontiguousarray(image[top:top + ch, left:left + cw]), spec))
    return np.stack(out)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ (Pearson correlation of average ranks)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def flipped_pairs(ref: np.ndarray, got: np.ndarray, resolution: float) -> int:
    """Pairs of images ordered differently by ``got`` than by ``ref``, among those whose
    reference scores differ by more than ``resolution``."""
    ref, got = np.asarray(ref, np.float64).ravel(), np.asarray(got, np.float64).ravel()
    dr = ref[:, None] - ref[None, :]
    dg = got[:, None] - got[None, :]
    bad = (np.sign(dr) != np.sign(dg)) & (np.abs(dr) > resolution)
    return int(np.triu(bad, 1).sum())


@dataclass
class Parity:
    """How closely one exported file reproduces the reference."""

    label: str
    images: int
    tolerance: float | None
    reference: str = "PyTorch"
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    rel: float = 0.0
    max_abs: float = 0.0
    flipped: int = 0
    same_order: bool = True
    spearman: float | None = None
    passed: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def problem(self) -> str | None:
        """One line saying why the file failed, or None."""
        if self.passed:
            return None
        worst = max(self.outputs.items(), key=lambda kv: kv[1]["rel"])
        if self.tolerance is not None and worst[1]["rel"] > self.tolerance:
            return (f"{self.label}: output {worst[0]!r} differs from {self.reference} by "
                    f"{worst[1]['rel']:.2e} relative (max abs {worst[1]['max_abs']:.3g}), "
                    f"above {self.tolerance:g}")
        return (f"{self.label}: {self.flipped} pair(s) of photos are ranked differently "
                f"than by {self.reference}")


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], label: str,
            tolerance: float | None, reference: str = "PyTorch") -> Parity:
    """Parity figures of ``got`` against ``ref`` (both score_batch dicts of the same images)."""
    parity = Parity(label=label, images=len(np.asarray(ref["score"]).reshape(-1)),
                    tolerance=tolerance, reference=reference)
    for key, r in ref.items():
        if key not in got:
            parity.outputs[key] = {"max_abs": float("inf"), "rel": float("inf")}
            continue
        r = np.asarray(r, np.float64)
        g = np.asarray(got[key], np.float64).reshape(r.shape)
        max_abs = float(np.max(np.abs(g - r))) if r.size else 0.0
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        parity.outputs[key] = {"max_abs": max_abs, "rel": rel}
    parity.rel = max(v["rel"] for v in parity.outputs.values())
    parity.max_abs = parity.outputs["score"]["max_abs"]
    rs = np.asarray(ref["score"], np.float64).reshape(-1)
    gs = np.asarray(got["score"], np.float64).reshape(-1)
    parity.same_order = bool(np.array_equal(np.argsort(-rs, kind="stable"),
                                            np.argsort(-gs, kind="stable")))
    resolution = (tolerance or 0.0) * float(np.max(np.abs(rs)))
    parity.flipped = flipped_pairs(rs, gs, resolution)
    parity.spearman = spearman(rs, gs)
    if tolerance is not None:
        parity.passed = parity.rel <= tolerance and parity.flipped == 0
    return parity


def verify_scorer(scorer: Scorer, reference: Scorer, images: np.ndarray, label: str,
                  tolerance: float | None, reference_label: str = "PyTorch") -> Parity:
    """Score ``images`` with both and compare (see :func:`compare`)."""
    return compare(reference.score_batch(images), scorer.score_batch(images), label, tolerance,
                   reference_label)


def verify_onnx(path: str | Path, reference: Scorer, images: np.ndarray,
                precision: str = "fp32", reference_label: str = "PyTorch") -> Parity:
    """Parity of an exported ONNX file (run by :class:`OnnxScorer`, the runtime framescore
    uses) against ``reference`` on ``images``."""
    from framescore.scorers.onnx import OnnxScorer

    return verify_scorer(OnnxScorer(path), reference, images, f"onnx {precision}",
                         TOLERANCE.get(precision), reference_label)


def int8_agreement(int8_path: str | Path, fp32_path: str | Path, images: np.ndarray) -> Parity:
    """How the int8 file's scores agree with the fp32 file's: Spearman ρ and error figures."""
    from framescore.scorers.onnx import OnnxScorer

    return verify_scorer(OnnxScorer(int8_path), OnnxScorer(fp32_path), images, "onnx int8",
                         None, "the fp32 file")
