"""``rules``: a transparent photographic-rules scorer with no weights.

Each image is judged at the scorer's input size (256 x 256, whole frame warped) on five
measurements of its luminance ``Y`` (Rec. 601, in [0, 1]) and colour, each mapped to [0, 1]:

* sharpness ``s = clip((G1 / G2 - 1) / 0.35, 0, 1)``: ``G1`` is the summed absolute central
  difference of ``Y`` over 2 px (``|Y[x+1] - Y[x-1]| / 2``, both axes), ``G2`` the same over
  4 px (``/ 4``). A crisp edge has ``G1 / G2`` near 2, an edge blurred wider than a few pixels
  near 1, whatever the scene's own contrast; images with almost no edges get ``s = 0``;
* exposure ``e = (1 - |mean(Y) - 0.5| / 0.5) * (1 - clipped)``, ``clipped`` the share of pixels
  with ``Y < 0.02`` or ``Y > 0.98``;
* contrast ``c = min(std(Y) / 0.22, 1)``;
* colourfulness ``k = min(M / 0.45, 1)``, ``M`` the Hasler & Suesstrunk (2003) metric on
  [0, 1] RGB: ``sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``;
* cleanliness ``n = exp(-max(sigma - 0.002, 0) / 0.01)``, ``sigma`` the noise level from
  Immerkaer's (1996) 3 x 3 noise mask, taking the *median* absolute response (divided by
  0.6745 x 6) so that texture and edges do not read as noise.

Sharpness uses every pixel; the other four statistics are taken on every second pixel in each
direction (the same estimates for a quarter of the work).

score = 0.40 s + 0.20 e + 0.15 c + 0.10 k + 0.15 n, in [0, 1]; higher is better. The
individual terms come back as extras, so a user can see why a frame scored as it did.
"""

from __future__ import annotations

import numpy as np

from framescore.models.spec import InputSpec

WEIGHTS = {"sharpness": 0.40, "exposure": 0.20, "contrast": 0.15, "colourfulness": 0.10,
           "cleanliness": 0.15}
SPEC = InputSpec(height=256, width=256, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), view="warp")


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
    """The five rule terms (each in [0, 1]) for a batch of RGB uint8 images ``(N, H, W, 3)``."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) RGB images, got shape {images.shape}")
    n = images.shape[0]
    c = [images[..., i].astype(np.float32) for i in range(3)]
    y = c[0] * np.float32(0.299 / 255) + c[1] * np.float32(0.587 / 255) \
        + c[2] * np.float32(0.114 / 255)

    g1 = (np.abs(y[:, :, 2:] - y[:, :, :-2]).reshape(n, -1).sum(axis=1)
          + np.abs(y[:, 2:, :] - y[:, :-2, :]).reshape(n, -1).sum(axis=1)) / 2.0
    g2 = (np.abs(y[:, :, 4:] - y[:, :, :-4]).reshape(n, -1).sum(axis=1)
          + np.abs(y[:, 4:, :] - y[:, :-4, :]).reshape(n, -1).sum(axis=1)) / 4.0
    edges = g2 / y[0].size > 2e-3  # an almost flat frame (black, fog) has no sharpness
    ratio = np.where(edges, g1 / np.maximum(g2, 1e-12), 1.0)
    sharpness = np.clip((ratio - 1.0) / 0.35, 0.0, 1.0)

    # the other statistics on every second pixel each way: the same values, a quarter the work
    flat = y[:, ::2, ::2].reshape(n, -1)
    mean_y = flat.mean(axis=1)
    clipped = ((flat < 0.02) | (flat > 0.98)).mean(axis=1)
    exposure = np.clip(1.0 - np.abs(mean_y - 0.5) / 0.5, 0, 1) * (1.0 - clipped)

    contrast = np.minimum(flat.std(axis=1) / 0.22, 1.0)

    r, g, b = (ch[:, ::2, ::2].reshape(n, -1) / np.float32(255) for ch in c)
    rg = r - g
    yb = 0.5 * (r + g) - b
    m = np.sqrt(rg.var(axis=1) + yb.var(axis=1)) + 0.3 * np.sqrt(
        rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    colourfulness = np.minimum(m / 0.45, 1.0)

    # Immerkaer's mask [[1,-2,1],[-2,4,-2],[1,-2,1]], evaluated at every second pixel each way
    def at(dy: int, dx: int) -> np.ndarray:
        return y[:, dy:y.shape[1] - 2 + dy:2, dx:y.shape[2] - 2 + dx:2]

    k = (at(0, 0) - 2 * at(0, 1) + at(0, 2) - 2 * at(1, 0) + 4 * at(1, 1) - 2 * at(1, 2)
         + at(2, 0) - 2 * at(2, 1) + at(2, 2))
    sigma = np.median(np.abs(k).reshape(n, -1), axis=1) / (0.6745 * 6.0)
    cleanliness = np.exp(-np.maximum(sigma - 0.002, 0.0) / 0.01)

    return {"sharpness": sharpness, "exposure": exposure, "contrast": contrast,
            "colourfulness": colourfulness, "cleanliness": cleanliness}


class RulesScorer:
    """Scores images by the documented photographic rules; needs no weights and no torch."""

    name = "rules"
    spec = SPEC

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        terms = measure(images)
        score = sum(WEIGHTS[k] * terms[k] for k in WEIGHTS)
        out = {"score": np.asarray(score, dtype=np.float32)}
        out.update({k: v.astype(np.float32) for k, v in terms.items()})
        return out


def entries() -> list:
    from framescore.models.spec import ModelInfo

    return [ModelInfo(
        name="rules", paper="photographic rules (no learning)",
        summary="sharpness, exposure, contrast, colourfulness, noise; documented formula",
        spec=SPEC, make_scorer=RulesScorer, needs_weights=False, default_rank=1,
        outputs=("score", *WEIGHTS))]
