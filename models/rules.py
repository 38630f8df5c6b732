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

Sharpness uses every pixel; exposure and contrast are taken on every second pixel in each
direction, colourfulness and the noise mask on every fourth (4,096 samples at 256 x 256: the
same estimates to within 0.01 for a sixteenth of the work, which matters when every frame of
a video is scored).

score = 0.40 s + 0.20 e + 0.15 c + 0.10 k + 0.15 n, in [0, 1]; higher is better. The
individual terms come back as extras, so a user can see why a frame scored as it did. The
scorer is :class:`framescore.scorers.rules.RulesScorer` (numpy, no torch).
"""

from __future__ import annotations

import numpy as np

from framescore.models.spec import InputSpec, register_model

WEIGHTS = {"sharpness": 0.40, "exposure": 0.20, "contrast": 0.15, "colourfulness": 0.10,
           "cleanliness": 0.15}
SPEC = InputSpec(height=256, width=256, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), view="warp",
                 resample="area")


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32) / np.float32(255)


def _abs_diff_sum(a: np.ndarray, b: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """Per-image sum of ``|a - b|``, through one reused buffer (no temporaries)."""
    out = buf[: a.size].reshape(a.shape)
    np.subtract(a, b, out=out)
    np.abs(out, out=out)
    return out.reshape(a.shape[0], -1).sum(axis=1)


# images measured together: their float copies stay in the CPU's cache (~1 MB at 256 x 256)
_CHUNK = 4


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
    """The five rule terms (each in [0, 1]) for a batch of RGB uint8 images ``(N, H, W, 3)``."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) RGB images, got shape {images.shape}")
    if len(images) <= _CHUNK:
        return _measure(images)
    parts = [_measure(images[i:i + _CHUNK]) for i in range(0, len(images), _CHUNK)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _measure(images: np.ndarray) -> dict[str, np.ndarray]:
    n = images.shape[0]
    y = images.astype(np.float32) @ _LUMA  # (N, H, W) luminance in [0, 1]

    buf = np.empty(y.size, dtype=np.float32)
    g1 = (_abs_diff_sum(y[:, :, 2:], y[:, :, :-2], buf)
          + _abs_diff_sum(y[:, 2:, :], y[:, :-2, :], buf)) / 2.0
    g2 = (_abs_diff_sum(y[:, :, 4:], y[:, :, :-4], buf)
          + _abs_diff_sum(y[:, 4:, :], y[:, :-4, :], buf)) / 4.0
    edges = g2 / y[0].size > 2e-3  # an almost flat frame (black, fog) has no sharpness
    ratio = np.where(edges, g1 / np.maximum(g2, 1e-12), 1.0)
    sharpness = np.clip((ratio - 1.0) / 0.35, 0.0, 1.0)

    # exposure and contrast on every second pixel each way: the same values, a quarter the work
    flat = y[:, ::2, ::2].reshape(n, -1)
    mean_y = flat.mean(axis=1)
    clipped = ((flat < 0.02) | (flat > 0.98)).mean(axis=1)
    exposure = np.clip(1.0 - np.abs(mean_y - 0.5) / 0.5, 0, 1) * (1.0 - clipped)

    contrast = np.minimum(flat.std(axis=1) / 0.22, 1.0)

    r, g, b = (images[:, ::4, ::4, i].reshape(n, -1).astype(np.float32) / np.float32(255)
               for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    m = np.sqrt(rg.var(axis=1) + yb.var(axis=1)) + 0.3 * np.sqrt(
        rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    colourfulness = np.minimum(m / 0.45, 1.0)

    # Immerkaer's mask [[1,-2,1],[-2,4,-2],[1,-2,1]] = (1,-2,1) down x (1,-2,1) across,
    # evaluated at every fourth pixel each way: across on the needed columns, then down
    w2 = y.shape[2] - 2
    across = y[:, :, 0:w2:4] - 2 * y[:, :, 1:w2 + 1:4]
    across += y[:, :, 2:w2 + 2:4]
    h2 = y.shape[1] - 2
    k = across[:, 0:h2:4] - 2 * across[:, 1:h2 + 1:4]
    k += across[:, 2:h2 + 2:4]
    np.abs(k, out=k)
    sigma = np.median(k.reshape(n, -1), axis=1) / (0.6745 * 6.0)
    cleanliness = np.exp(-np.maximum(sigma - 0.002, 0.0) / 0.01)

    return {"sharpness": sharpness, "exposure": exposure, "contrast": contrast,
            "colourfulness": colourfulness, "cleanliness": cleanliness}


@register_model
def entries() -> list:
    from framescore.models.spec import ModelInfo

    return [ModelInfo(
        name="rules", paper="photographic rules (no learning)",
        summary="sharpness, exposure, contrast, colourfulness, noise; documented formula",
        spec=SPEC, scorer="framescore.scorers.rules:RulesScorer",
        port="framescore.scorers.rules_torch:RulesNet", needs_weights=False, default_rank=1,
        video_fps=None, outputs=("score", *WEIGHTS))]
