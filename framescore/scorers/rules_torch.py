"""The ``rules`` scorer as a torch module, so that it can be exported like the networks.

The numpy scorer (:mod:`framescore.scorers.rules`) is what framescore runs; this port computes
the same formulas in the same order of operations, and the export tests check it against the
numpy original.
"""

from __future__ import annotations

import torch
from torch import nn

from framescore.models.rules import WEIGHTS


class RulesNet(nn.Module):
    """The ``rules`` scorer (see :mod:`framescore.models.rules`) as a torch module.

    Input: RGB in 0..1, ``(N, 3, H, W)`` (the rules spec has mean 0, std 1). Returns the same
    dict as :meth:`framescore.scorers.rules.RulesScorer.score_batch`: ``score`` and the five
    terms, computed by the same
    formulas on the same pixels (sharpness on all of them, exposure and contrast on every
    second pixel each way, colourfulness and Immerkaer's mask on every fourth; population
    variances; the numpy median,
    i.e. the mean of the two middle values of the sorted responses). The export tests check it
    against the numpy original, so a change there that is not mirrored here fails loudly.
    """

    def __init__(self) -> None:
        super().__init__()
        self.terms = tuple(WEIGHTS)
        self.weights = tuple(float(WEIGHTS[k]) for k in self.terms)

    @staticmethod
    def _var(v: torch.Tensor) -> torch.Tensor:
        return (v - v.mean(dim=1, keepdim=True)).square().mean(dim=1)

    @staticmethod
    def _abs_sum(d: torch.Tensor) -> torch.Tensor:
        return d.abs().reshape(d.shape[0], -1).sum(dim=1)

    @staticmethod
    def _median(v: torch.Tensor) -> torch.Tensor:
        m = v.shape[1]
        low = torch.topk(v, m // 2 + 1, dim=1, largest=False, sorted=True).values
        return (low[:, (m - 1) // 2] + low[:, m // 2]) / 2.0

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
        n = y.shape[0]

        g1 = (self._abs_sum(y[:, :, 2:] - y[:, :, :-2])
              + self._abs_sum(y[:, 2:, :] - y[:, :-2, :])) / 2.0
        g2 = (self._abs_sum(y[:, :, 4:] - y[:, :, :-4])
              + self._abs_sum(y[:, 4:, :] - y[:, :-4, :])) / 4.0
        edges = g2 / (y.shape[1] * y.shape[2]) > 2e-3  # a flat frame has no sharpness
        ratio = torch.where(edges, g1 / torch.clamp(g2, min=1e-12), torch.ones_like(g1))
        sharpness = torch.clamp((ratio - 1.0) / 0.35, 0.0, 1.0)

        # exposure and contrast on every second pixel each way, as in the numpy code
        flat = y[:, ::2, ::2].reshape(n, -1)
        mean_y = flat.mean(dim=1)
        # the two conditions exclude each other: a sum is their 'or' (Core ML has no bool or)
        clipped = ((flat < 0.02).float() + (flat > 0.98).float()).mean(dim=1)
        exposure = torch.clamp(1.0 - torch.abs(mean_y - 0.5) / 0.5, 0.0, 1.0) * (1.0 - clipped)

        contrast = torch.clamp(torch.sqrt(self._var(flat)) / 0.22, max=1.0)

        r, g, b = (x[:, i, ::4, ::4].reshape(n, -1) for i in range(3))
        rg = r - g
        yb = 0.5 * (r + g) - b
        m = torch.sqrt(self._var(rg) + self._var(yb)) + 0.3 * torch.sqrt(
            rg.mean(dim=1).square() + yb.mean(dim=1).square())
        colourfulness = torch.clamp(m / 0.45, max=1.0)

        h, w = y.shape[1], y.shape[2]

        def at(dy: int, dx: int) -> torch.Tensor:  # Immerkaer's mask at every fourth pixel
            return y[:, dy:h - 2 + dy:4, dx:w - 2 + dx:4]

        k = (at(0, 0) - 2 * at(0, 1) + at(0, 2) - 2 * at(1, 0) + 4 * at(1, 1) - 2 * at(1, 2)
             + at(2, 0) - 2 * at(2, 1) + at(2, 2))
        sigma = self._median(k.abs().reshape(n, -1)) / (0.6745 * 6.0)
        cleanliness = torch.exp(-torch.clamp(sigma - 0.002, min=0.0) / 0.01)

        terms = {"sharpness": sharpness, "exposure": exposure, "contrast": contrast,
                 "colourfulness": colourfulness, "cleanliness": cleanliness}
        score = sum(w * terms[t] for t, w in zip(self.terms, self.weights, strict=True))
        return {"score": score, **terms}
