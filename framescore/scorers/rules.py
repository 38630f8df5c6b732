"""The ``rules`` scorer: the documented photographic rules of :mod:`framescore.models.rules`,
in numpy (no torch, no weights). Its torch port, for export, is
:class:`framescore.scorers.rules_torch.RulesNet`."""

from __future__ import annotations

import numpy as np

from framescore.models.rules import SPEC, WEIGHTS, measure


class RulesScorer:
    """Scores images by the documented photographic rules; needs no weights and no torch."""

    name = "rules"
    spec = SPEC
    runtime = "numpy"
    source: str | None = None     # no file: the formula is the model

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        terms = measure(images)
        score = sum(WEIGHTS[k] * terms[k] for k in WEIGHTS)
        out = {"score": np.asarray(score, dtype=np.float32)}
        out.update({k: v.astype(np.float32) for k, v in terms.items()})
        return out
