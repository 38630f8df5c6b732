"""Graded faults: unchanged at 0, monotone damage, deterministic, each the damage it names."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from framescore.models.rules import measure
from framescore.samples import photo
from framescore.train import faults


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A real photo at a small working size (fast)."""
    return np.asarray(Image.fromarray(photo("chelsea")).resize((192, 128)))


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize("name", list(faults.FAULTS))
def test_zero_severity_is_unchanged_and_shape_kept(image, name):
    out = faults.apply(name, image, 0.0, seed=1)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize("name", [n for n in faults.FAULTS if n != "framing"])
def test_damage_grows_with_severity(image, name):
    # (framing is geometric: its pixel difference depends on the content; tested below)
    diffs = [_diff(faults.apply(name, image, s, seed=7), image) for s in (0.3, 0.65, 1.0)]
    assert diffs[0] > 0.5, (name, diffs)
    assert diffs[0] < diffs[1] < diffs[2], (name, diffs)


@pytest.mark.parametrize("name", list(faults.FAULTS))
def test_same_seed_same_image(image, name):
    a = faults.apply(name, image, 0.6, seed=3)
    b = faults.apply(name, image, 0.6, seed=3)
    assert np.array_equal(a, b)


def test_random_choices_change_with_the_seed(image):
    for name in ("motion_blur", "noise", "framing"):
        outs = [faults.apply(name, image, 0.8, seed=s) for s in range(4)]
        assert any(not np.array_equal(outs[0], o) for o in outs[1:]), name


def _terms(img: np.ndarray) -> dict[str, float]:
    return {k: float(v[0]) for k, v in measure(img[None]).items()}


def _luma(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float64) / 255
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus", "motion_blur"])
def test_blurs_remove_fine_detail(image, name):
    def detail(img):
        y = _luma(img)
        return float(np.var(y[1:-1, :-2] + y[1:-1, 2:] + y[:-2, 1:-1] + y[2:, 1:-1]
                            - 4 * y[1:-1, 1:-1]))
    assert detail(faults.apply(name, image, 0.8, seed=2)) < 0.5 * detail(image)


def test_motion_blur_is_directional():
    # a single bright dot smears into a streak: its spread is far larger along one axis
    img = np.zeros((101, 101, 3), dtype=np.uint8)
    img[50, 50] = 255
    rng = np.random.default_rng(0)
    for _ in range(5):
        seed = int(rng.integers(1 << 30))
        gen = np.random.default_rng(seed)
        if gen.random() < 0.5:          # the linear (non-shake) paths only
            continue
        out = faults.motion_blur(img, 1.0, np.random.default_rng(seed)).astype(float)[..., 0]
        ys, xs = np.nonzero(out)
        cov = np.cov(np.stack([ys, xs]), aweights=out[ys, xs])
        ev = np.linalg.eigvalsh(cov)
        assert ev[1] > 10 * ev[0]


def test_noise_is_noise(image):
    out = faults.noise(image, 0.8, np.random.default_rng(0))
    assert _terms(out)["cleanliness"] < _terms(image)["cleanliness"] - 0.1
    # zero-mean: the average brightness barely moves
    assert abs(_luma(out).mean() - _luma(image).mean()) < 0.02


def test_exposure_faults(image):
    dark = faults.underexposure(image, 1.0, np.random.default_rng(0))
    bright = faults.overexposure(image, 1.0, np.random.default_rng(0))
    assert _luma(dark).mean() < 0.5 * _luma(image).mean()
    clipped = lambda im: float((im.max(axis=2) >= 254).mean())  # noqa: E731
    assert clipped(bright) > clipped(image) + 0.2


def test_contrast_colour_and_fades(image):
    flat = faults.low_contrast(image, 1.0, np.random.default_rng(0))
    assert _luma(flat).std() < 0.3 * _luma(image).std()
    assert abs(_luma(flat).mean() - _luma(image).mean()) < 0.02
    pale = faults.washed_out(image, 1.0, np.random.default_rng(0))
    sat = lambda im: float((im.max(axis=2).astype(int) - im.min(axis=2)).mean())  # noqa: E731
    assert sat(pale) < 0.2 * sat(image)
    black = faults.fade_black(image, 1.0, np.random.default_rng(0))
    white = faults.fade_white(image, 1.0, np.random.default_rng(0))
    assert black.max() <= 0.1 * 255 + 1 and white.min() >= 0.9 * 255 - 1


def test_jpeg_makes_8x8_blocks():
    img = np.asarray(Image.fromarray(photo("astronaut")).resize((256, 256)))
    out = faults.jpeg(img, 1.0, np.random.default_rng(0))
    y = _luma(out)
    jumps = np.abs(np.diff(y, axis=1)).mean(axis=0)   # per column boundary
    at_block = jumps[7::8].mean()
    inside = np.delete(jumps, np.s_[7::8]).mean()
    assert at_block > 1.5 * inside


@pytest.mark.parametrize("severity", [0.5, 1.0])
def test_framing_is_an_off_centre_crop(image, severity):
    out = faults.framing(image, severity, np.random.default_rng(5))
    h, w = image.shape[:2]
    ch, cw = round(h * (1 - 0.55 * severity)), round(w * (1 - 0.55 * severity))
    # the result is one of the corner/edge crops scaled back up, never the centre crop
    best = min(
        (_diff(np.asarray(Image.fromarray(image[t:t + ch, l:l + cw]).resize(
            (w, h), Image.Resampling.BICUBIC)), out), (t, l))
        for t in (0, (h - ch) // 2, h - ch) for l in (0, (w - cw) // 2, w - cw))
    assert best[0] < 1.0
    assert best[1] != ((h - ch) // 2, (w - cw) // 2)


def test_tilt_rotates_content():
    # a horizontal bar stays a bar but is no longer horizontal
    img = np.zeros((120, 160, 3), dtype=np.uint8)
    img[58:62, :] = 255
    out = faults.tilt(img, 1.0, np.random.default_rng(0))[..., 0].astype(float)
    rows_left = np.argmax(out[:, 40])
    rows_right = np.argmax(out[:, 120])
    assert abs(rows_left - rows_right) > 10
    assert out.shape == (120, 160)


@pytest.mark.parametrize("severity", [-0.1, 1.5, float("nan")])
def test_bad_severity(image, severity):
    with pytest.raises(ValueError, match="severity"):
        faults.apply("noise", image, severity, seed=0)


def test_bad_image_and_name(image):
    with pytest.raises(ValueError, match="RGB uint8"):
        faults.apply("noise", image.astype(np.float32), 0.5, seed=0)
    with pytest.raises(ValueError, match="RGB uint8"):
        faults.apply("noise", image[..., 0], 0.5, seed=0)
    with pytest.raises(ValueError, match="unknown fault"):
        faults.apply("vignette", image, 0.5, seed=0)


def test_obstruction_covers_more_with_severity():
    # the shape at a lower severity lies inside the shape at a higher one, for every draw
    for seed in range(8):
        masks = [faults.obstruction_mask(120, 160, s, np.random.default_rng(seed))
                 for s in (0.0, 0.2, 0.5, 0.8, 1.0)]
        cover = [float(m.mean()) for m in masks]
        assert cover[0] == 0.0
        assert all(np.diff(cover) > 0), (seed, cover)
        assert all((masks[i] <= masks[i + 1] + 1e-6).all() for i in range(4)), seed
        assert 0.3 < cover[-1] < 0.95, (seed, cover)


def test_obstruction_enters_from_an_edge(image):
    h, w = image.shape[:2]
    for seed in range(8):
        m = faults.obstruction_mask(h, w, 0.3, np.random.default_rng(seed)) > 0.5
        edges = [m[0].mean(), m[-1].mean(), m[:, 0].mean(), m[:, -1].mean()]
        assert max(edges) > 0.2, seed              # it touches an edge...
        assert not m[h // 2 - 5:h // 2 + 5, w // 2 - 5:w // 2 + 5].any(), seed  # ...not the centre


def test_obstruction_hides_the_scene_and_never_darkens_the_rest(image):
    for seed in range(6):
        out = faults.obstruction(image, 0.8, np.random.default_rng(seed))
        m = faults.obstruction_mask(*image.shape[:2], 0.8, np.random.default_rng(seed),
                                    faults.edge_brightness(image))
        covered, clear = m > 0.99, m < 0.01
        # under the object the scene's detail is gone: a smooth, untextured shape
        assert _luma(out)[covered].std() < 0.5 * _luma(image)[covered].std(), seed
        # glare (lifted blacks, bloom) only adds light where the scene still shows
        assert (_luma(out)[clear] >= _luma(image)[clear] - 1 / 255).all(), seed
    lifts = []
    for seed in range(6):
        clear = faults.obstruction_mask(*image.shape[:2], 1.0, np.random.default_rng(seed),
                                        faults.edge_brightness(image)) < 0.01
        out = faults.obstruction(image, 1.0, np.random.default_rng(seed))
        lifts.append(np.percentile(_luma(out)[clear], 1) - np.percentile(_luma(image)[clear], 1))
    assert max(lifts) > 0.05, lifts   # some draws lift the blacks visibly


def test_obstruction_comes_from_the_light_and_is_sometimes_sharp():
    """Half the draws enter from the brightest edge (a hand raised against the sun, as on
    tree.avi), and half have a nearly sharp outline rather than an out-of-focus one."""
    h, w = 120, 160
    image = np.full((h, w, 3), 60, np.uint8)
    image[: h // 4] = 250                                  # a blown-out sky at the top
    bright = faults.edge_brightness(image)
    assert int(np.argmax(bright)) == 0
    from_top, sharp = 0, 0
    for seed in range(40):
        m = faults.obstruction_mask(h, w, 0.5, np.random.default_rng(seed), bright)
        hard = m > 0.5
        from_top += bool(hard[0].mean() > max(hard[-1].mean(), hard[:, 0].mean(),
                                             hard[:, -1].mean()))
        # the width of the soft rim: pixels neither clearly in nor clearly out
        sharp += bool(((m > 0.05) & (m < 0.95)).sum() < 0.3 * hard.sum())
    assert from_top >= 20, from_top          # chance alone: about 10 of 40
    assert 8 <= sharp <= 32, sharp


def test_obstruction_is_seeded(image):
    a = faults.apply("obstruction", image, 0.7, seed=11)
    assert np.array_equal(a, faults.apply("obstruction", image, 0.7, seed=11))
    others = [faults.apply("obstruction", image, 0.7, seed=s) for s in range(4)]
    assert any(not np.array_equal(others[0], o) for o in others[1:])
