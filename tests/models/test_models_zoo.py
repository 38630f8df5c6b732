"""The papers' model families: registry entries, sizes, outputs, training helpers, weights."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import alexnet, vgg16

from framescore.errors import UsageError, WeightsError
from framescore.models import kong, rapid, relative, weighted
from framescore.models.registry import REGISTRY, get
from framescore.models.spec import MODELS_DIR
from framescore.preprocess import to_tensor, view
from framescore.samples import photo
from framescore.scorers import load_scorer
from framescore.train.losses import (
    kong_loss,
    rapid_cross_entropy,
    relative_hinge_loss,
    weighted_chi2_loss,
)

ZOO = ("rapid-scnn", "rapid-scnn-center", "rapid-scnn-pad", "rapid-scnn-patch", "rapid-style",
       "rapid-dcnn", "rapid-rdcnn-style", "rapid-rdcnn-semantic", "relative-siamese",
       "kong-reg", "kong-reg-rank", "kong-reg-rank-att", "kong-full", "jin-wmse", "jin-mse",
       "jin-histogram")

# hand-counted parameters
_SCNN_COLUMN = (3 * 64 * 121 + 64) + (64 * 64 * 25 + 64) + 2 * (64 * 64 * 9 + 64) \
    + (64 * 26 * 26 * 1000 + 1000) + (1000 * 256 + 256)
_ALEXNET_TRUNK = 61_100_840 - (4096 * 1000 + 1000)          # torchvision alexnet minus fc8
# the style column (Table IV): half the filters (32) in conv1 and conv4
_STYLE_COLUMN = (3 * 32 * 121 + 32) + (32 * 64 * 25 + 64) + (64 * 64 * 9 + 64) \
    + (64 * 32 * 9 + 32) + (32 * 26 * 26 * 1000 + 1000) + (1000 * 256 + 256)
_VGG16_TRUNK = 138_357_544 - (4096 * 1000 + 1000)            # torchvision vgg16 minus fc8
_ATT_HEAD = (4096 * 512 + 512) + 11 * (4096 * 256 + 256) + 11 * 257 + (3328 * 128 + 128)
# the relative-aesthetics column (Table I): 2 x 2 pools after conv1 and conv2, 224 padded by 3
# → a 64 x 27 x 27 map before fc1000
_RELATIVE_COLUMN = (3 * 64 * 121 + 64) + (64 * 64 * 25 + 64) + 2 * (64 * 64 * 9 + 64) \
    + (64 * 27 * 27 * 1000 + 1000) + (1000 * 256 + 256)
EXPECTED_PARAMS = {
    "rapid-scnn": _SCNN_COLUMN + 256 * 2 + 2,
    "rapid-style": _STYLE_COLUMN + 256 * 14 + 14,
    "rapid-dcnn": 2 * _SCNN_COLUMN + 512 * 2 + 2,
    "rapid-rdcnn-style": 2 * _SCNN_COLUMN + _STYLE_COLUMN + 768 * 2 + 2,
    # semantic column: ImageNet AlexNet + fc256 (+ its 2-way head for the first stage)
    "rapid-rdcnn-semantic": 2 * _SCNN_COLUMN + _ALEXNET_TRUNK + (4096 * 256 + 256)
    + (256 * 2 + 2) + 768 * 2 + 2,
    "relative-siamese": 2 * _RELATIVE_COLUMN + 512 * 256 + 256,
    "kong-reg": _ALEXNET_TRUNK + 4097,
    "kong-reg-rank": _ALEXNET_TRUNK + 4097,
    "kong-reg-rank-att": _ALEXNET_TRUNK + _ATT_HEAD + 129,
    # + the frozen content branch: a second AlexNet trunk (Kong et al. freeze it)
    "kong-full": 2 * _ALEXNET_TRUNK + _ATT_HEAD + 128 * 10 + 10,
    "jin-wmse": _VGG16_TRUNK + 4097,
    "jin-mse": _VGG16_TRUNK + 4097,
    "jin-histogram": _VGG16_TRUNK + 4096 * 10 + 10,
}

_cache: dict[str, nn.Module] = {}
_CACHE_SIZE = 1          # these nets weigh 0.2-0.6 GB each: keep only the last built


def model(name: str) -> nn.Module:
    """A freshly initialized (seeded) model in eval mode, reused while it is recent."""
    if name not in _cache:
        while len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        torch.manual_seed(0)
        _cache[name] = get(name).build().eval()
    else:
        _cache[name] = _cache.pop(name)          # most recently used goes last
    return _cache[name]


@pytest.fixture(autouse=True)
def _drop_checkpoints(tmp_path: Path):
    """Checkpoints written by a test are hundreds of MB: remove them when it ends."""
    yield
    for f in tmp_path.glob("*.pt"):
        f.unlink()


def batch(name: str, photos: tuple[str, ...] = ("astronaut", "chelsea")) -> torch.Tensor:
    """Real photos brought to the model's input (VGG16 models get one: they cost the most)."""
    if name.startswith("jin-"):
        photos = photos[:1]
    spec = get(name).spec
    images = np.stack([view(photo(p), spec) for p in photos])
    return to_tensor(images, spec)


def save_state(module: nn.Module, path: Path) -> Path:
    torch.save(module.state_dict(), path)
    return path


# --------------------------------------------------------------------------- registry
def test_every_paper_model_is_registered_with_card_and_recipe() -> None:
    for name in ZOO:
        info = REGISTRY[name]
        assert info.needs_weights and not info.weights_available, name
        assert info.card and (MODELS_DIR / info.card).is_file(), name
        card = (MODELS_DIR / info.card).read_text()
        assert f"framescore train {name} --data ROOT --out RUN" in card, name
        assert info.training.recipe in ("rapid", "relative", "kong", "jin")
        assert info.training.paper_settings and isinstance(info.training.reported, dict)
        assert info.outputs[0] == "score"


def test_every_zoo_module_registers_its_entries_with_a_typed_training_spec() -> None:
    from framescore.models import catalogue
    from framescore.models.registry import family_of
    from framescore.models.spec import BUILDERS, ModelInfo, TrainingSpec, register_model
    from framescore.train.recipes import RECIPES

    records = catalogue.records()          # imports every zoo module: their builders register
    assert all(BUILDERS.get(family) for family in catalogue.FAMILIES)
    names = [r["name"] for r in records]
    assert len(names) == len(set(names)) == len(REGISTRY)
    for name in names:
        info = get(name)
        assert family_of(info) == catalogue.read()[name].family
        if info.training is not None:
            assert isinstance(info.training, TrainingSpec)
            assert info.training.recipes and set(info.training.recipes) <= set(RECIPES), name
    mobile = get("framescore-mobile")
    assert family_of(mobile) == "mobile" and mobile.training.recipe == "hints"
    assert get("rules").training is None
    # the decorator files a builder under its module's name, one entry or a list
    before = dict(BUILDERS)
    try:
        @register_model
        def one() -> ModelInfo:
            return get("rules")

        assert BUILDERS["test_models_zoo"] == [one]
        from framescore.models.spec import registered

        assert [m.name for m in registered("test_models_zoo")] == ["rules"]
    finally:
        BUILDERS.clear()
        BUILDERS.update(before)


def test_arod_has_a_card_that_names_the_papers_ava_protocol() -> None:
    info = REGISTRY["arod-resnet50"]
    card = (MODELS_DIR / info.card).read_text()
    assert "framescore train arod-resnet50 --data ROOT --out RUN" in card
    assert "75.83" in card and "fine-tune" in card and "ava_protocol" in card


def test_scoring_without_weights_is_a_one_line_error() -> None:
    with pytest.raises(WeightsError, match="needs weights"):
        load_scorer("kong-reg")


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts(name: str) -> None:
    assert get(name).parameters() == EXPECTED_PARAMS[name]


# --------------------------------------------------------------------------- forward passes
@pytest.mark.parametrize("name", ["rapid-scnn", "rapid-scnn-pad", "rapid-style", "rapid-dcnn",
                                  "rapid-rdcnn-style", "rapid-rdcnn-semantic",
                                  "relative-siamese", "kong-reg", "kong-reg-rank-att",
                                  "kong-full", "jin-mse", "jin-histogram"])
def test_forward_outputs_match_the_registry(name: str) -> None:
    info = get(name)
    x = batch(name)
    n = x.shape[0]
    assert tuple(x.shape) == (n, 3, *info.spec.size)
    with torch.no_grad():
        out = model(name)(x)
    assert set(out) == set(info.outputs)
    assert out["score"].shape == (n,)
    for key, value in out.items():
        assert value.shape[0] == n and bool(torch.isfinite(value).all()), key
    widths = {"logits": 14 if name == "rapid-style" else 2, "style_probs": 14,
              "attributes": 11, "content": 10, "histogram": 10}
    for key, width in widths.items():
        if key in out:
            assert out[key].shape == (n, width), key
    if "prob_high" in out:
        assert bool(((out["prob_high"] >= 0) & (out["prob_high"] <= 1)).all())


def test_style_column_outputs_and_loss() -> None:
    out = model("rapid-style")(batch("rapid-style"))
    probs = torch.softmax(out["logits"], 1)
    assert torch.allclose(out["style_probs"], probs)
    assert torch.allclose(out["score"], probs.max(1).values)
    assert len(get("rapid-style").training.styles) == 14
    loss = rapid_cross_entropy(out["logits"], torch.tensor([0, 13]))
    assert loss.item() == pytest.approx(-probs[[0, 1], [0, 13]].log().mean().item(), rel=1e-5)
    loss.backward()                                  # the style column trains on this loss
    assert model("rapid-style").column.convs[0].weight.grad is not None
    model("rapid-style").zero_grad(set_to_none=True)


def test_eval_forward_is_deterministic() -> None:
    x = batch("rapid-scnn")
    with torch.no_grad():
        a, b = model("rapid-scnn")(x)["score"], model("rapid-scnn")(x)["score"]
    assert torch.equal(a, b)


def test_trained_checkpoint_scores_through_the_registry(tmp_path: Path) -> None:
    path = save_state(model("rapid-scnn"), tmp_path / "scnn.pt")
    scorer = load_scorer("rapid-scnn", weights=path)
    spec = scorer.spec
    images = np.stack([view(photo(p), spec) for p in ("astronaut", "coffee")])
    out = scorer.score_batch(images)
    with torch.no_grad():
        direct = model("rapid-scnn")(to_tensor(images, spec))["score"].numpy()
    np.testing.assert_allclose(out["score"], direct, rtol=1e-5, atol=1e-6)
    assert out["logits"].shape == (2, 2)


# --------------------------------------------------------------------------- RAPID
def test_dcnn_single_tensor_forward_feeds_both_columns() -> None:
    net = model("rapid-dcnn")
    g = batch("rapid-dcnn")
    local = to_tensor(np.stack([view(photo(p), rapid.LOCAL_SPEC) for p in ("astronaut",
                                                                         "chelsea")]),
                      rapid.LOCAL_SPEC)
    with torch.no_grad():
        single = net(g)
        same = net.forward_views(g, g)
        two = net.forward_views(g, local)
    assert torch.equal(single["logits"], same["logits"])
    assert not torch.allclose(single["logits"], two["logits"])
    assert net.features_views(g, local).shape == (2, 512)


def test_rdcnn_column_stays_frozen_and_in_eval() -> None:
    net = model("rapid-rdcnn-style").train()
    assert not net.reg_column.training and net.global_column.training
    frozen = sum(p.numel() for p in net.reg_column.parameters())
    trainable = sum(p.numel() for p in net.trainable_parameters())
    assert frozen == _STYLE_COLUMN
    assert trainable == EXPECTED_PARAMS["rapid-rdcnn-style"] - frozen
    x = batch("rapid-scnn")
    try:
        loss = rapid_cross_entropy(net.forward_views(x, x)["logits"], torch.tensor([1, 0]))
        loss.backward()
        assert all(p.grad is None for p in net.reg_column.parameters())
        assert net.global_column.convs[0].weight.grad is not None
        assert net.local_column.convs[0].weight.grad is not None
    finally:
        net.zero_grad(set_to_none=True)
        net.eval()


def test_scnn_column_checkpoints_seed_dcnn_and_style_columns(tmp_path: Path) -> None:
    style = model("rapid-style")
    path = save_state(style, tmp_path / "style.pt")
    torch.manual_seed(2)
    rd = rapid.RDCNN("style")
    rapid.load_style_column(rd, path)
    for a, b in zip(rd.reg_column.state_dict().values(), style.column.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in rd.reg_column.parameters())
    # the style column has half the filters in conv1 and conv4 (Table IV)
    assert tuple(style.column.convs[0].weight.shape) == (32, 3, 11, 11)
    assert tuple(style.column.convs[10].weight.shape) == (32, 64, 3, 3)
    assert tuple(style.column.fc[1].weight.shape) == (1000, 32 * 26 * 26)
    scnn = rapid.SCNN()
    assert tuple(scnn.column.convs[0].weight.shape) == (64, 3, 11, 11)
    assert tuple(scnn.column.convs[10].weight.shape) == (64, 64, 3, 3)
    dcnn = rapid.DCNN()
    rapid.load_scnn_column(dcnn.global_column, save_state(scnn, tmp_path / "scnn.pt"))
    assert torch.equal(dcnn.global_column.convs[0].weight, scnn.column.convs[0].weight)
    with pytest.raises(WeightsError, match="not an SCNN checkpoint"):
        rapid.load_scnn_column(dcnn.local_column, path)  # a style column does not fit
    bad = save_state(nn.Linear(3, 2), tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="not an SCNN checkpoint"):
        rapid.load_scnn_column(dcnn.local_column, bad)
    with pytest.raises(UsageError):
        rapid.load_style_column(rapid.RDCNN("semantic"), path)


def test_random_views_and_averaging() -> None:
    rng = np.random.default_rng(0)
    image = photo("chelsea")
    views = rapid.random_views(image, rapid.GLOBAL_SPEC, 3, rng)
    assert views.shape == (3, 224, 224, 3) and views.dtype == np.uint8
    assert not np.array_equal(views[0], views[1])          # random 224 crops of the 256 warp
    patches = rapid.random_views(image, rapid.LOCAL_SPEC, 2, rng)
    assert patches.shape == (2, 224, 224, 3)
    net = model("rapid-scnn")
    x = to_tensor(views, rapid.GLOBAL_SPEC)
    stacked = x.unsqueeze(1)                                # (V = 3, N = 1, 3, H, W)
    avg = rapid.average_over_views(net, stacked)
    with torch.no_grad():
        each = net(x)["prob_high"]
    assert avg["prob_high"].shape == (1,)
    assert avg["prob_high"].item() == pytest.approx(each.mean().item(), rel=1e-5)
    local = to_tensor(patches, rapid.LOCAL_SPEC).unsqueeze(1)   # (V = 2, N = 1, ...)
    two = rapid.average_over_views(model("rapid-dcnn"), stacked[:2], local)
    assert two["score"].shape == (1,)
    with pytest.raises(ValueError, match="as many local views"):
        rapid.average_over_views(model("rapid-dcnn"), stacked, local)
    with pytest.raises(ValueError):
        rapid.random_views(image, rapid.GLOBAL_SPEC, 0, rng)


def test_rapid_imagenet_init(tmp_path: Path, alexnet_file: Path) -> None:
    net = model("rapid-rdcnn-semantic")
    rapid.load_imagenet_backbone(net, alexnet_file)
    src = torch.load(alexnet_file, weights_only=True, mmap=True)
    assert torch.equal(net.reg_column.trunk.features[0].weight, src["features.0.weight"])
    assert not any(p.requires_grad for p in net.reg_column.parameters())
    with pytest.raises(UsageError, match="from scratch"):
        rapid.load_imagenet_backbone(rapid.SCNN(), alexnet_file)


def test_rdcnn_semantic_column_is_fine_tuned_first_then_frozen(tmp_path: Path) -> None:
    """RDCNN-semantic's third column: AlexNet + fc256 fine-tuned to aesthetics on its own
    (tune_semantic), then installed frozen; the classifier sees 3 × 256 features."""
    torch.manual_seed(0)
    stage = rapid.RDCNN("semantic", size=64).tune_semantic(True).train()
    assert tuple(stage.reg_column.fc[0].weight.shape) == (256, 4096)
    assert tuple(stage.classifier.weight.shape) == (2, 768)
    trainable = {n for n, p in stage.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("reg_column.", "semantic_head.")) for n in trainable)
    assert stage.reg_column.training  # the first stage trains it (dropout on)
    x = torch.randn(2, 3, 64, 64)
    out = stage.forward_semantic(x)
    torch.nn.functional.cross_entropy(out["logits"], torch.tensor([0, 1])).backward()
    assert stage.reg_column.fc[0].weight.grad is not None
    assert stage.global_column.convs[0].weight.grad is None
    path = save_state(stage, tmp_path / "stage.pt")
    rd = rapid.load_semantic_column(rapid.RDCNN("semantic", size=64), path)
    assert torch.equal(rd.reg_column.fc[0].weight, stage.reg_column.fc[0].weight)
    assert not any(p.requires_grad for p in rd.reg_column.parameters())
    assert rd.global_column.convs[0].weight.requires_grad
    rd.train()
    assert not rd.reg_column.training
    with pytest.raises(WeightsError, match="semantic column"):
        rapid.load_semantic_column(rd, save_state(rapid.SCNN(), tmp_path / "scnn.pt"))


# --------------------------------------------------------------------------- relative
def test_relative_column_follows_table_one() -> None:
    """Max-pools that halve the map after conv1 and conv2, no normalization layer, conv1
    padded by 3, dropout 0.5 at both dense layers; the training set's mean RGB is
    subtracted through ``mean_shift``."""
    col = relative.RelativeColumn()
    kinds = [type(m).__name__ for m in col.convs]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d",
                     "ReLU", "Conv2d", "ReLU"]
    assert not any(isinstance(m, nn.LocalResponseNorm | nn.BatchNorm2d)
                   for m in col.modules())
    assert col.convs[0].padding == (3, 3) and col.convs[0].stride == (2, 2)
    assert all(p.kernel_size == 2 and p.stride == 2 for p in col.convs
               if isinstance(p, nn.MaxPool2d))
    x = torch.zeros(1, 3, 224, 224)
    shapes = []
    for m in col.convs:
        x = m(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes[0] == (64, 110, 110) and shapes[2] == (64, 55, 55)
    assert shapes[5] == (64, 27, 27) and shapes[-1] == (64, 27, 27)
    dense = [m for m in col.fc if isinstance(m, nn.Linear)]
    drops = [m for m in col.fc if isinstance(m, nn.Dropout)]
    assert [d.out_features for d in dense] == [1000, 256] and [d.p for d in drops] == [0.5, 0.5]
    net = relative.RelativeNet(size=64).eval()
    img = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = net.embed(img)
        net.set_mean_rgb(torch.tensor([0.5, -1.0, 2.0]))
        assert torch.allclose(net.embed(img + torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)),
                              before, atol=1e-5)


def test_siamese_difference_identities() -> None:
    net = model("relative-siamese")
    x = batch("relative-siamese", ("astronaut", "coffee"))
    a, b = x[:1], x[1:]
    with torch.no_grad():
        d_ab = net.compare(a, b)
        ca, cb = net.embed(a), net.embed(b)
        d_ba = net.head(cb - ca)            # = compare(b, a), without re-running the columns
        single = net(x)
        w1, w2 = net.w1.weight, net.w2.weight
        linear = ((ca - cb) @ w1.T @ w2.T).squeeze(1)
        absolute = (torch.abs((ca - cb) @ w1.T) @ w2.T).squeeze(1)
    assert d_ab.item() == pytest.approx(net.head(ca - cb).item(), rel=1e-5, abs=1e-6)
    assert net.head(ca - ca).item() == 0.0                          # d(I, I) = 0
    # d(a,b) − d(b,a) = w2ᵀ w1ᵀ (Ca − Cb) and d(a,b) + d(b,a) = w2ᵀ |w1ᵀ (Ca − Cb)|
    assert (d_ab - d_ba).item() == pytest.approx(linear.item(), rel=1e-4, abs=1e-4)
    assert (d_ab + d_ba).item() == pytest.approx(absolute.item(), rel=1e-4, abs=1e-4)
    # one channel: s = w2ᵀ relu(w1ᵀ C), prob = sigmoid(s)
    assert single["score"][0].item() == pytest.approx(net.head(ca).item(), rel=1e-5)
    assert single["score"][1].item() == pytest.approx(net.head(cb).item(), rel=1e-5)
    assert torch.allclose(single["prob_high"], torch.sigmoid(single["score"]))


def test_siamese_hinge_training_orders_a_pair() -> None:
    torch.manual_seed(3)
    net = relative.RelativeNet().eval()    # no dropout: a clean before/after comparison
    x = batch("relative-siamese", ("astronaut", "hubble_deep_field"))
    a, b = x[:1], x[1:]
    # the convolutions stay fixed to keep this fast on 2 CPU cores; the gradient still flows
    # through both columns' fc layers and the w1/w2 head, for both images of the pair
    net.global_column.convs.requires_grad_(False)
    net.local_column.convs.requires_grad_(False)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3,
                          momentum=0.9, nesterov=True)
    # both orders of the pair, as the loader presents them: d(a, b) with y = +1 (a is the
    # better image) and d(b, a) with y = −1, from one embedding of each image
    ca, cb = net.embed(a), net.embed(b)
    d = torch.cat([net.head(ca - cb), net.head(cb - ca)])
    loss = relative_hinge_loss(d, torch.tensor([1.0, -1.0]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        ca, cb = net.embed(a), net.embed(b)
        after = torch.stack([net.head(ca - cb), net.head(cb - ca)]).squeeze(1)
        after_loss = relative_hinge_loss(after, torch.tensor([1.0, -1.0]))
    assert after_loss.item() < loss.item()
    assert after[0].item() > d[0].item() + 0.05 and after[0].item() > 0 > after[1].item()
    with pytest.raises(UsageError):
        relative.load_imagenet_backbone(net, "unused.pt")


# --------------------------------------------------------------------------- Kong
def test_kong_imagenet_init_matches_torchvision(alexnet_file: Path) -> None:
    net = kong.KongNet()
    kong.load_imagenet_backbone(net, alexnet_file)
    ref = alexnet(weights=None)
    ref.load_state_dict(torch.load(alexnet_file, weights_only=True))
    ref.eval()
    net.eval()
    x = batch("kong-reg")
    with torch.no_grad():
        want = ref.classifier[:6](torch.flatten(ref.avgpool(ref.features(x)), 1))
        got = net.features(x)
    torch.testing.assert_close(got, want)


def test_kong_rejects_a_wrong_backbone(tmp_path: Path) -> None:
    other = save_state(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 2)), tmp_path / "x.pt")
    net = model("kong-reg")
    before = net.trunk.features[0].weight.clone()
    with pytest.raises(WeightsError, match="not a torchvision alexnet"):
        kong.load_imagenet_backbone(net, other)
    with pytest.raises(WeightsError, match="not found"):
        kong.load_imagenet_backbone(net, tmp_path / "missing.pt")
    assert torch.equal(net.trunk.features[0].weight, before)
    with pytest.raises(ValueError):
        kong.KongNet(attributes=False, content_k=10)


def test_kong_content_gating_follows_the_centroids() -> None:
    net = model("kong-full")
    x = batch("kong-full", ("astronaut", "coffee"))
    with torch.no_grad():
        uniform = net(x)["content"]
        fc7 = net.features(x)
        content_fc7 = net.content_features(x)
    assert torch.allclose(uniform, torch.full_like(uniform, 0.1))     # no centroids yet
    rows = torch.nn.functional.normalize(torch.randn(10, 4096), dim=1)
    rows[3] = torch.nn.functional.normalize(content_fc7[0], dim=0)
    rows[7] = torch.nn.functional.normalize(content_fc7[1], dim=0)
    net.set_centroids(rows)
    try:
        with torch.no_grad():
            out = net(x)
        assert out["content"].argmax(1).tolist() == [3, 7]
        assert torch.allclose(out["content"].sum(1), torch.ones(2))
        heads = net.head(net.fuse(torch.cat(
            [net.aesthetic(fc7), *[h(fc7) for h in net.attr_hidden]], dim=1)))
        assert torch.allclose(out["score"], (heads * out["content"]).sum(1), atol=1e-6)
    finally:
        net.centroids.zero_()
    with pytest.raises(ValueError, match="shape"):
        net.set_centroids(torch.zeros(3, 4096))


def test_kong_content_gate_comes_from_a_frozen_branch() -> None:
    """Kong et al. gate the content heads with a frozen content branch: a training step moves
    the trunk, never the content trunk or its classifier, and the gate reads only the frozen
    branch."""
    torch.manual_seed(0)
    net = kong.KongNet(attributes=True, content_k=8, width=0.125, content_gate="classifier")
    net.freeze_content_branch()
    assert all(not p.requires_grad for p in net.content_branch_parameters())
    assert tuple(net.content_classifier.weight.shape) == (8, net.trunk.out_features)
    x = torch.randn(4, 3, 64, 64)
    frozen = {k: v.clone() for k, v in net.content_trunk.state_dict().items()}
    trunk_before = net.trunk.features[0].weight.clone()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    assert not net.content_trunk.training  # no dropout in the frozen branch
    out = net(x)
    (out["score"].sum() + out["attributes"].sum()).backward()
    opt.step()
    assert not torch.equal(net.trunk.features[0].weight, trunk_before)
    assert all(torch.equal(v, frozen[k]) for k, v in net.content_trunk.state_dict().items())
    net.eval()
    with torch.no_grad():
        probs = net(x)["content"]
        expected = torch.softmax(net.content_classifier(net.content_features(x)), dim=1)
    assert torch.allclose(probs, expected)


def test_content_classifier_fits_separable_categories() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.eye(6)[:3] * 5
    feats = torch.cat([c + 0.3 * torch.randn(20, 6, generator=gen) for c in centres])
    labels = torch.arange(3).repeat_interleave(20)
    w, b = kong.fit_content_classifier(feats, labels, 3)
    assert tuple(w.shape) == (3, 6) and tuple(b.shape) == (3,)
    assert ((feats @ w.T + b).argmax(1) == labels).all()


def test_kmeans_finds_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.eye(8)[:4] * 10
    pts = torch.cat([c + 0.1 * torch.randn(25, 8, generator=gen) for c in centres])
    found = kong.kmeans(pts, k=4, seed=1)
    unit = torch.nn.functional.normalize(centres, dim=1)
    nearest = torch.cdist(unit, found).argmin(1)
    assert sorted(nearest.tolist()) == [0, 1, 2, 3]
    assert torch.cdist(unit, found).min(1).values.max() < 0.1
    with pytest.raises(ValueError):
        kong.kmeans(pts[:3], k=4)


def test_kong_attribute_model_trains_on_its_loss() -> None:
    net = model("kong-reg-rank-att")
    x = batch("kong-reg-rank-att", ("astronaut", "coffee"))
    out = net.train()(x)
    try:
        loss = kong_loss(out["score"][:1], torch.tensor([0.7]), out["score"][1:],
                         torch.tensor([0.4]), attr_i=out["attributes"][:1],
                         attr_target_i=torch.zeros(1, 11), attr_j=out["attributes"][1:],
                         attr_target_j=torch.ones(1, 11))
        loss.backward()
        assert net.attr_hidden[0][0].weight.grad is not None
        assert net.trunk.features[0].weight.grad is not None
    finally:
        net.zero_grad(set_to_none=True)
        net.eval()


# --------------------------------------------------------------------------- Jin
def test_histogram_moments_by_hand() -> None:
    hist = torch.tensor([[0, 0, 0, 0, 1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0, 1.0]])
    mean, std = weighted.histogram_moments(hist)
    assert mean.tolist() == pytest.approx([5.5, 5.5])
    assert std.tolist() == pytest.approx([0.5, 4.5])
    counts = torch.tensor([[0, 0, 2, 0, 0, 0, 0, 0, 0, 2.0]])      # unnormalized votes
    assert weighted.histogram_moments(counts)[0].item() == pytest.approx(6.5)


def test_jin_histogram_score_is_the_histogram_mean() -> None:
    net = model("jin-histogram")
    with torch.no_grad():
        out = net(batch("jin-histogram"))
    hist = out["histogram"]
    k = torch.arange(1, 11, dtype=hist.dtype)
    assert torch.allclose(hist.sum(1), torch.ones(1))
    assert torch.allclose(out["score"], (hist * k).sum(1), atol=1e-5)
    var = (hist * (k - out["score"].unsqueeze(1)) ** 2).sum(1)
    assert torch.allclose(out["std"], var.sqrt(), atol=1e-5)
    assert bool(((out["score"] >= 1) & (out["score"] <= 10)).all())
    target = torch.tensor([[0, 0, 1, 2, 5, 8, 4, 2, 1, 0.0]])
    loss = weighted_chi2_loss(hist[:1], target / target.sum(), torch.tensor([2.0]))
    assert 0 <= loss.item() <= 1


def test_jin_regression_starts_mid_scale() -> None:
    net = model("jin-mse")
    assert net.head.bias.item() == pytest.approx(5.5)


def test_jin_imagenet_init(vgg16_file: Path) -> None:
    net = model("jin-mse")
    weighted.load_imagenet_backbone(net, vgg16_file)
    src = torch.load(vgg16_file, weights_only=True, mmap=True)
    assert torch.equal(net.trunk.features[0].weight, src["features.0.weight"])
    assert torch.equal(net.trunk.fc67[3].weight, src["classifier.3.weight"])
    assert net.head.bias.item() == pytest.approx(5.5)             # fc8 is not taken over
    with pytest.raises(TypeError):
        weighted.load_imagenet_backbone(nn.Linear(2, 2), vgg16_file)


def test_jin_rejects_alexnet_weights(alexnet_file: Path) -> None:
    with pytest.raises(WeightsError, match="not a torchvision vgg16"):
        weighted.load_imagenet_backbone(model("jin-histogram"), alexnet_file)


# --------------------------------------------------------------------------- fixtures
def _saved(tmp_path_factory: pytest.TempPathFactory, name: str,
           make: Callable[[], nn.Module]) -> Iterator[Path]:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("imagenet") / f"{name}.pth"
    torch.save(make().state_dict(), path)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A torchvision AlexNet state dict (random weights: nothing is downloaded)."""
    yield from _saved(tmp_path_factory, "alexnet", lambda: alexnet(weights=None))


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A torchvision VGG16 state dict (random weights: nothing is downloaded)."""
    yield from _saved(tmp_path_factory, "vgg16", lambda: vgg16(weights=None))
