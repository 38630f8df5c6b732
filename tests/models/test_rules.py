"""The ``rules`` scorer on real photographs: each documented term moves the right way."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from framescore.models.rules import WEIGHTS, measure
from framescore.preprocess import view
from framescore.samples import photo
from framescore.scorers.rules import RulesScorer

NAMES = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"]


def batch(images: list[np.ndarray]) -> np.ndarray:
    return np.stack([view(im, RulesScorer.spec) for im in images])


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [photo(n) for n in NAMES]


def blurred(image: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def test_blur_lowers_sharpness_and_score(photos):
    for image in photos:
        terms = measure(batch([image, blurred(image, 2), blurred(image, 5)]))
        assert terms["sharpness"][0] > terms["sharpness"][1] > terms["sharpness"][2]
        out = RulesScorer().score_batch(batch([image, blurred(image, 5)]))
        assert out["score"][0] > out["score"][1]


def test_noise_lowers_cleanliness(photos):
    rng = np.random.default_rng(0)
    for image in photos:
        noisy = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
        terms = measure(batch([image, noisy]))
        assert terms["cleanliness"][0] > terms["cleanliness"][1] + 0.3


def test_bad_exposure_and_low_contrast(photos):
    for image in photos:
        dark = (image * 0.15).astype(np.uint8)
        bright = np.clip(image.astype(int) + 170, 0, 255).astype(np.uint8)
        flat = (128 + (image.astype(int) - 128) * 0.2).astype(np.uint8)
        terms = measure(batch([image, dark, bright, flat]))
        assert terms["exposure"][0] > terms["exposure"][1]
        assert terms["exposure"][0] > terms["exposure"][2]
        assert terms["contrast"][0] > terms["contrast"][3]


def test_grey_is_less_colourful(photos):
    for image in photos[:3]:
        grey = np.repeat(np.asarray(Image.fromarray(image).convert("L"))[..., None], 3, axis=2)
        terms = measure(batch([image, grey]))
        assert terms["colourfulness"][0] > terms["colourfulness"][1]


def test_black_frame_scores_lowest(photos):
    black = np.zeros_like(photos[0])
    out = RulesScorer().score_batch(batch([*photos, black]))
    assert np.argmin(out["score"]) == len(photos)
    assert out["sharpness"][-1] == 0.0


def test_score_is_the_documented_weighted_sum(photos):
    out = RulesScorer().score_batch(batch(photos))
    expected = sum(WEIGHTS[k] * out[k] for k in WEIGHTS)
    np.testing.assert_allclose(out["score"], expected, rtol=1e-6)
    assert np.all((out["score"] >= 0) & (out["score"] <= 1))


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="RGB"):
        measure(np.zeros((2, 8, 8), np.uint8))
