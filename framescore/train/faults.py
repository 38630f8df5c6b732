"""Graded, realistic photographic faults: the damage that spoils video frames and burst shots.

Every fault is a function ``fault(image, severity, rng) -> image``:

* ``image`` an RGB uint8 array ``(H, W, 3)``; the result has the same shape and dtype;
* ``severity`` in [0, 1]: 0 returns an unchanged copy, 1 is the strongest damage this module
  makes; the damage grows monotonically with severity for a fixed ``rng`` state;
* ``rng`` a :class:`numpy.random.Generator` for the fault's random choices (blur direction,
  noise, crop corner...). Two calls with generators in the same state give the same image.

Sizes are relative to the image (blur widths as a share of the short side), so a fault reads
the same on a 640-pixel working copy as on a 4K photo. Photometric faults work in linear light
where the camera would (exposure), in display values where an editor or a video fade would.

======================  ======================================================================
``gaussian_blur``       soft focus / lens softness: Gaussian, σ = 2 % of the short side at 1
``defocus``             out-of-focus: uniform disk (the lens aperture), radius 2.5 % at 1
``motion_blur``         camera shake (a random-walk path) or linear motion at any angle,
                        path length 6 % of the short side at 1
``noise``               sensor noise: signal-dependent (shot) + read noise, luminance and
                        chroma, σ up to 0.12 of full scale at mid-grey
``underexposure``       exposure −3 EV at 1 in linear light (sRGB-like γ 2.2), 8-bit quantized
``overexposure``        exposure +2.5 EV at 1 in linear light, highlights clip
``low_contrast``        tones compressed towards the mean luminance (flat light, haze): ×0.2
``washed_out``          saturation × 0.1 and blacks lifted by 0.15 at 1 (faded colour)
``jpeg``                JPEG at quality 40 → 4 (blocking, ringing, chroma smear, 4:2:0)
``tilt``                rotation up to ±12°, cropped to the largest upright rectangle
``framing``             a tight off-centre crop (down to 45 % of each side) anchored to a random
                        corner or edge, so the subject is cut or pushed to the border
``fade_black``          a video fade to black: blend with black up to 92 %
``fade_white``          a fade to white: blend with white up to 92 %
``obstruction``         a hand, finger or object in front of the lens: a soft, out-of-focus,
                        dark or skin-toned shape entering from an edge, covering up to ~70 %
                        of the frame, with glare (lifted blacks, bloom)
======================  ======================================================================
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage, signal

Fault = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

_GAMMA = 2.2


def _check(image: np.ndarray, severity: float) -> float:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
            or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {shape} "
                         f"{getattr(image, 'dtype', type(image).__name__)}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image too small for faults: {image.shape[:2]}")
    severity = float(severity)
    if not 0.0 <= severity <= 1.0 or math.isnan(severity):
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    return severity


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] → uint8, rounded and clipped."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve each channel with ``kernel`` (normalized), borders reflected; uint8 result."""
    kernel = kernel / kernel.sum()
    ph, pw = kernel.shape[0] // 2 + 1, kernel.shape[1] // 2 + 1
    x = np.pad(_float(image), ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    out = signal.fftconvolve(x, kernel[:, :, None].astype(np.float32), mode="same", axes=(0, 1))
    return _to_uint8(out[ph:-ph, pw:-pw])


def _short(image: np.ndarray) -> int:
    return min(image.shape[:2])


def gaussian_blur(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Soft focus: Gaussian blur with σ = 0.02·severity·short side (pixels)."""
    s = _check(image, severity)
    sigma = 0.02 * s * _short(image)
    if sigma < 0.05:
        return image.copy()
    out = ndimage.gaussian_filter(_float(image), sigma=(sigma, sigma, 0), mode="reflect")
    return _to_uint8(out)


def _disk(radius: float) -> np.ndarray:
    r = max(radius, 0.5)
    n = int(math.ceil(r))
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1].astype(np.float32)
    # anti-aliased disk: coverage falls off over one pixel at the rim
    return np.clip(r + 0.5 - np.sqrt(xx ** 2 + yy ** 2), 0.0, 1.0)


def defocus(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus lens: convolution with a uniform disk of radius 0.025·severity·short side.

    A disk (the image of the aperture) rather than a Gaussian: edges become flat-topped
    bokeh and fine texture vanishes, as when the focus misses.
    """
    s = _check(image, severity)
    radius = 0.025 * s * _short(image)
    if radius < 0.5:
        return image.copy()
    return _convolve(image, _disk(radius))


def _path_kernel(points: np.ndarray) -> np.ndarray:
    """Rasterize a motion path (K, 2) of (y, x) offsets into a normalized blur kernel."""
    points = points - points.mean(axis=0)
    n = int(math.ceil(np.abs(points).max())) + 1
    kernel = np.zeros((2 * n + 1, 2 * n + 1), dtype=np.float32)
    # bilinear splatting of densely resampled path points: time spent per pixel
    seg = np.diff(points, axis=0)
    length = float(np.sqrt((seg ** 2).sum(axis=1)).sum())
    steps = max(int(length * 4), 2)
    t = np.linspace(0, len(points) - 1, steps)
    i = np.minimum(t.astype(int), len(points) - 2)
    f = (t - i)[:, None]
    dense = points[i] * (1 - f) + points[i + 1] * f + n
    y0, x0 = np.floor(dense[:, 0]).astype(int), np.floor(dense[:, 1]).astype(int)
    fy, fx = dense[:, 0] - y0, dense[:, 1] - x0
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)),
                      (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
        np.add.at(kernel, (np.clip(y0 + dy, 0, 2 * n), np.clip(x0 + dx, 0, 2 * n)), w)
    return kernel


def motion_blur(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Motion blur along a path of length 0.06·severity·short side.

    With probability ½ the path is a straight line at a uniform random angle (a pan, or the
    subject crossing the frame); otherwise a camera-shake path: a smooth random walk whose
    direction drifts (the hand's tremor during the exposure). The shape is drawn from ``rng``
    first, so the same generator state gives the same path at every severity, only longer.
    """
    s = _check(image, severity)
    shake = bool(rng.random() < 0.5)
    angle = rng.uniform(0, math.pi)
    turns = rng.normal(0.0, 0.35, size=15).cumsum() if shake else np.zeros(15)
    length = 0.06 * s * _short(image)
    if length < 1.0:
        return image.copy()
    heading = angle + turns
    step = length / len(heading)
    path = np.concatenate([[[0.0, 0.0]], np.cumsum(
        np.stack([np.sin(heading), np.cos(heading)], axis=1) * step, axis=0)])
    return _convolve(image, _path_kernel(path))


def noise(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: variance ``σ²·(0.25 + 1.5·x)`` per pixel (read + shot noise), σ = 0.12·sev.

    ``x`` is the linear-light signal; 70 % of the noise is common to the three channels
    (luminance), 30 % independent per channel (chroma), as in a demosaicked raw file.
    """
    s = _check(image, severity)
    h, w = image.shape[:2]
    lum = rng.standard_normal((h, w, 1), dtype=np.float32)
    chroma = rng.standard_normal((h, w, 3), dtype=np.float32)
    if s == 0:
        return image.copy()
    x = _float(image)
    linear = x ** _GAMMA
    sigma = 0.12 * s * np.sqrt(0.25 + 1.5 * linear)
    n = sigma * (np.sqrt(0.7) * lum + np.sqrt(0.3) * chroma)
    return _to_uint8(x + n)


def _exposure(image: np.ndarray, ev: float) -> np.ndarray:
    linear = _float(image) ** _GAMMA
    return _to_uint8(np.clip(linear * (2.0 ** ev), 0, 1) ** (1 / _GAMMA))


def underexposure(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Underexposure by 3·severity stops: linear light × 2^(−3·sev), then γ and 8 bits."""
    s = _check(image, severity)
    return image.copy() if s == 0 else _exposure(image, -3.0 * s)


def overexposure(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Overexposure by 2.5·severity stops: linear light × 2^(2.5·sev), highlights clipped."""
    s = _check(image, severity)
    return image.copy() if s == 0 else _exposure(image, 2.5 * s)


def _luma(x: np.ndarray) -> np.ndarray:
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def low_contrast(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Flat light / haze: ``m + (x − m)·(1 − 0.8·sev)``, ``m`` the mean luminance."""
    s = _check(image, severity)
    if s == 0:
        return image.copy()
    x = _float(image)
    m = float(_luma(x).mean())
    return _to_uint8(m + (x - m) * (1.0 - 0.8 * s))


def washed_out(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Faded colour: saturation × (1 − 0.9·sev) around the luminance, blacks lifted 0.15·sev."""
    s = _check(image, severity)
    if s == 0:
        return image.copy()
    x = _float(image)
    y = _luma(x)[..., None]
    x = y + (x - y) * (1.0 - 0.9 * s)
    lift = 0.15 * s
    return _to_uint8(lift + (1.0 - lift) * x)


def jpeg(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Compression: JPEG at quality ``round(40 − 36·sev)`` (40 → 4), 4:2:0 chroma."""
    s = _check(image, severity)
    if s == 0:
        return image.copy()
    quality = int(round(40 - 36 * s))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def tilt(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A crooked horizon: rotation by ±12·sev degrees (sign from ``rng``), then the largest
    centred rectangle of the original aspect ratio that holds no border is cropped and resized
    back to the original size."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    s = _check(image, severity)
    angle = 12.0 * s
    if angle < 0.05:
        return image.copy()
    h, w = image.shape[:2]
    theta = math.radians(angle)
    c, si = math.cos(theta), math.sin(theta)
    # largest axis-aligned h'×w' with h'/w' = h/w inside the w×h rectangle rotated by theta
    k = min(h / (h * c + w * si), w / (w * c + h * si))
    rotated = Image.fromarray(image).rotate(sign * angle, resample=Image.Resampling.BICUBIC,
                                            expand=False)
    ch, cw = max(2, int(h * k)), max(2, int(w * k))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = np.asarray(rotated)[top:top + ch, left:left + cw]
    return _resize(crop, h, w)


def framing(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Bad framing: a crop of (1 − 0.55·sev) of each side anchored to a random corner or edge
    midpoint (never the centre), resized back to the original size. The photographer's centre
    of interest is cut or pushed to the border, as when a burst frame is badly aimed."""
    anchors = ((0, 0), (0, 1), (1, 0), (1, 1), (0, 0.5), (1, 0.5), (0.5, 0), (0.5, 1))
    ay, ax = anchors[int(rng.integers(len(anchors)))]
    s = _check(image, severity)
    scale = 1.0 - 0.55 * s
    h, w = image.shape[:2]
    ch, cw = max(2, round(h * scale)), max(2, round(w * scale))
    if ch == h and cw == w:
        return image.copy()
    top, left = round((h - ch) * ay), round((w - cw) * ax)
    return _resize(image[top:top + ch, left:left + cw], h, w)


def fade_black(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A fade to black (video transition): ``x·(1 − 0.92·sev)`` in display values."""
    s = _check(image, severity)
    return image.copy() if s == 0 else _to_uint8(_float(image) * (1.0 - 0.92 * s))


def fade_white(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A fade to white: ``x + (1 − x)·0.92·sev`` in display values."""
    s = _check(image, severity)
    if s == 0:
        return image.copy()
    x = _float(image)
    return _to_uint8(x + (1.0 - x) * 0.92 * s)


def edge_brightness(image: np.ndarray) -> np.ndarray:
    """Mean luminance (0..1) of the outer quarter of ``image`` at its top, bottom, left and
    right edge, in :func:`obstruction_mask`'s edge order."""
    y = _float(image) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    h, w = y.shape
    qh, qw = max(1, h // 4), max(1, w // 4)
    return np.array([y[:qh].mean(), y[-qh:].mean(), y[:, :qw].mean(), y[:, -qw:].mean()])


def obstruction_mask(height: int, width: int, severity: float,
                     rng: np.random.Generator, bright: np.ndarray | None = None) -> np.ndarray:
    """Coverage (H, W) in [0, 1] of an object entering the frame from one edge.

    The shape is drawn from ``rng`` whatever the severity: the edge it enters from, one to four
    rounded lobes (a palm, fingers, the rim of a lens cap or a strap) with their positions along
    the edge, widths and lengths, a slow wobble of the outline, and its rim: out of focus (2-6 %
    of the short side) or, half the time, nearly sharp (a hand in focus, as on opencv-doc's
    tree.avi). Given ``bright`` (:func:`edge_brightness`), half the time it enters from the
    brightest edge (a hand raised against the sun, covering the highlights). The object
    reaches ``severity`` times its full length into the frame, so the shape at one severity lies
    inside the shape at any higher one: coverage grows monotonically, pixel by pixel, with
    severity.
    """
    edge = int(rng.integers(4))                      # 0 top, 1 bottom, 2 left, 3 right
    lobes = int(rng.integers(1, 5))
    centres = rng.uniform(0.1, 0.9, size=lobes)
    half_widths = rng.uniform(0.06, 0.35, size=lobes) * (1.0 if lobes == 1 else 0.7)
    half_widths[0] = rng.uniform(0.3, 0.6)           # the largest lobe: the palm or the object
    lengths = rng.uniform(0.55, 1.0, size=lobes)
    lengths[0] = 1.0
    reach = rng.uniform(0.75, 1.05)                  # how far it gets at severity 1
    wobble_f = rng.uniform(1.0, 3.0, size=2)
    wobble_p = rng.uniform(0.0, 2 * math.pi, size=2)
    rim = rng.uniform(0.02, 0.06)                    # out-of-focus rim, share of the short side
    if rng.random() < 0.5:
        rim = rng.uniform(0.003, 0.012)              # nearly sharp
    if rng.random() < 0.5 and bright is not None:
        edge = int(np.argmax(bright))                # from the light
    s = float(severity)
    across, along = (height, width) if edge < 2 else (width, height)
    u = (np.arange(across, dtype=np.float32) + 0.5) / across     # distance from the edge
    if edge in (1, 3):
        u = u[::-1]
    v = (np.arange(along, dtype=np.float32) + 0.5) / along       # position along the edge
    bumps = lengths[:, None] * np.sqrt(np.clip(
        1.0 - ((v[None, :] - centres[:, None]) / half_widths[:, None]) ** 2, 0.0, 1.0))
    profile = bumps.max(axis=0) * (1.0 + 0.08 * np.sin(2 * math.pi * wobble_f[0] * v
                                                       + wobble_p[0])
                                   + 0.05 * np.sin(2 * math.pi * wobble_f[1] * v + wobble_p[1]))
    depth = s * reach * profile                                   # (along,)
    inside = (u[:, None] < depth[None, :]).astype(np.float32)     # (across, along)
    mask = inside if edge < 2 else inside.T
    sigma = rim * min(height, width)
    if s > 0 and sigma >= 0.3:
        mask = ndimage.gaussian_filter(mask, sigma=sigma, mode="nearest")
    return np.clip(mask, 0.0, 1.0)


def obstruction(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """An object in front of the lens: a hand or finger, a strap, a passer-by's shoulder.

    The shape (:func:`obstruction_mask`) reaches ``severity`` times its full length into the
    frame from a random edge. Its colour is either dark (near black to grey) or a skin tone,
    shaded darker towards the edge it enters from and without texture, since it is far out of
    focus. Light scattering off it and in the lens (drawn strength, growing with severity)
    lifts the blacks of the whole frame and blooms the bright parts, as when the sun catches a
    hand held near the lens.
    """
    s = _check(image, severity)
    h, w = image.shape[:2]
    mask = obstruction_mask(h, w, s, rng, edge_brightness(image))
    kind = rng.random()
    if kind < 2 / 3:
        # skin, lit from the front, or against the light (a silhouette: dark, still warm)
        r = rng.uniform(0.45, 0.95) if kind < 1 / 3 else rng.uniform(0.12, 0.45)
        colour = np.array([r, r * rng.uniform(0.62, 0.8), r * rng.uniform(0.48, 0.68)])
    else:
        colour = np.full(3, rng.uniform(0.02, 0.3)) + rng.uniform(-0.02, 0.02, size=3)
    shade = rng.uniform(0.35, 1.0)                   # how much darker it is at the edge
    glare = rng.uniform(0.0, 1.0)
    glare_tint = np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.6, 0.95)])
    if s == 0:
        return image.copy()
    x = _float(image)
    # shading: the object is lit from the frame's inside, darker where it enters
    light = np.clip(ndimage.gaussian_filter(mask, sigma=0.15 * min(h, w), mode="nearest"),
                    0.0, 1.0)
    tone = colour[None, None, :] * (1.0 - (1.0 - shade) * light[..., None])
    a = mask[..., None]
    x = x * (1.0 - a) + np.clip(tone, 0.0, 1.0) * a
    g = glare * s
    if g > 0:
        bright = np.clip(x - 0.6, 0.0, None) / 0.4
        bloom = ndimage.gaussian_filter(bright, sigma=(0.04 * min(h, w),) * 2 + (0,),
                                        mode="reflect")
        veil = 0.3 * g * glare_tint[None, None, :]
        # light wrapping round the object's outline, as round a hand against the sun
        halo = np.clip(ndimage.gaussian_filter(mask, sigma=0.03 * min(h, w), mode="nearest")
                       - mask, 0.0, None)[..., None] * glare_tint[None, None, :]
        x = x + bloom * 0.6 * g + veil * (1.0 - x) + 1.5 * g * halo
    return _to_uint8(x)


FAULTS: dict[str, Fault] = {
    "gaussian_blur": gaussian_blur,
    "defocus": defocus,
    "motion_blur": motion_blur,
    "noise": noise,
    "underexposure": underexposure,
    "overexposure": overexposure,
    "low_contrast": low_contrast,
    "washed_out": washed_out,
    "jpeg": jpeg,
    "tilt": tilt,
    "framing": framing,
    "fade_black": fade_black,
    "fade_white": fade_white,
    "obstruction": obstruction,
}


def apply(name: str, image: np.ndarray, severity: float, seed: int) -> np.ndarray:
    """Fault ``name`` at ``severity`` with its random choices drawn from ``seed``.

    The same (image, name, severity, seed) always gives the same result, and the same seed at
    two severities gives the same blur path, crop corner, noise pattern: only the amount differs.
    """
    try:
        fault = FAULTS[name]
    except KeyError:
        raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})") from None
    return fault(image, severity, np.random.default_rng(seed))
