"""The ``width`` option of Kong's AlexNet and Jin's VGG16 models: width 1 is torchvision's
network layer for layer; a reduced width keeps every layer, scales channels and fc sizes, and
runs at small inputs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import alexnet, vgg16

from framescore.errors import UsageError
from framescore.models import kong, weighted
from framescore.models.registry import get
from framescore.models.width import scaled


def layout(module: nn.Module) -> list[tuple[str, str]]:
    """(name, kind) of every leaf layer, in order."""
    return [(name, type(m).__name__) for name, m in module.named_modules()
            if not list(m.children())]


def shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def torchvision_trunk(net: nn.Module) -> dict[str, tuple[int, ...]]:
    """A torchvision classifier's state-dict shapes under the trunk's names (fc8 dropped)."""
    out = {}
    for key, shape in shapes(net).items():
        if key.startswith("classifier."):
            if int(key.split(".")[1]) >= 6:
                continue
            key = "fc67." + key.removeprefix("classifier.")
        out[key] = shape
    return out


@pytest.mark.parametrize(("trunk", "reference"), [(kong.AlexNetTrunk, alexnet),
                                                  (weighted.VGG16Trunk, vgg16)])
def test_width_one_is_torchvisions_network(trunk, reference) -> None:
    ours, ref = trunk(), reference(weights=None)
    assert shapes(ours) == torchvision_trunk(ref)
    assert layout(ours.features) == layout(ref.features)
    assert layout(ours.fc67) == layout(ref.classifier)[:6]
    assert ours.avgpool.output_size == ref.avgpool.output_size
    assert ours.out_features == type(ours).out_features == 4096


def test_vgg_starts_from_torchvisions_initialization() -> None:
    trunk = weighted.VGG16Trunk(width=0.25)
    conv = trunk.features[0]
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.25)
    assert trunk.fc67[0].weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert all(not m.bias.detach().any() for m in trunk.modules()
               if isinstance(m, nn.Conv2d | nn.Linear))


@pytest.mark.parametrize("width", [1 / 8, 1 / 16])
def test_reduced_kong_keeps_every_layer(width: float) -> None:
    full, small = kong.KongNet(attributes=True, content_k=10), \
        kong.KongNet(attributes=True, content_k=10, width=width)
    assert layout(small) == layout(full)
    convs = [m.out_channels for m in small.trunk.features if isinstance(m, nn.Conv2d)]
    assert convs == [scaled(c, width) for c in (64, 192, 384, 256, 256)]
    assert small.trunk.out_features == scaled(4096, width)
    assert small.aesthetic[0].out_features == scaled(512, width)
    assert small.attr_hidden[0][0].out_features == scaled(256, width)
    assert small.fuse[0].out_features == scaled(128, width)
    assert tuple(small.centroids.shape) == (10, scaled(4096, width))
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small < 0.05 * sum(p.numel() for p in full.parameters())


@pytest.mark.parametrize("cls", [weighted.JinRegression, weighted.JinHistogram])
def test_reduced_jin_keeps_every_layer(cls) -> None:
    small = cls(width=1 / 16)
    assert layout(small) == layout(cls())
    convs = [m.out_channels for m in small.trunk.features if isinstance(m, nn.Conv2d)]
    assert convs == [4, 4, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 32]
    assert small.trunk.fc67[0].in_features == 32 * 7 * 7
    assert small.head.in_features == small.trunk.out_features == 256


def test_widths_never_drop_a_channel() -> None:
    tiny = kong.KongNet(attributes=True, width=1e-4)
    assert all(m.out_channels == 1 for m in tiny.trunk.features if isinstance(m, nn.Conv2d))
    assert tiny.fuse[0].out_features == 1
    with torch.no_grad():
        assert tiny.eval()(torch.zeros(1, 3, 64, 64))["score"].shape == (1,)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="width"):
            weighted.VGG16Trunk(width=bad)


@pytest.mark.parametrize(("build", "side"), [
    (partial(kong.KongNet, attributes=True, content_k=10), kong.MIN_SIDE),
    (weighted.JinHistogram, weighted.MIN_SIDE),
])
def test_reduced_nets_take_small_inputs(build, side: int) -> None:
    net = build(width=1 / 16).eval()
    with torch.no_grad():
        for s in (side, 64, 100):
            out = net(torch.rand(2, 3, s, s))
            assert out["score"].shape == (2,) and bool(torch.isfinite(out["score"]).all())
        with pytest.raises(RuntimeError):
            net(torch.rand(1, 3, side - 1, side - 1))


@pytest.mark.parametrize("name", ["kong-reg", "kong-full", "jin-wmse", "jin-histogram"])
def test_registry_builds_take_a_width(name: str) -> None:
    info = get(name)
    net = partial(info.build, width=1 / 8)().eval()
    assert net.trunk.width == 1 / 8
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 64))
    assert set(info.outputs) <= set(out)


def test_imagenet_weights_need_width_one(tmp_path: Path) -> None:
    path = tmp_path / "alexnet.pth"
    torch.save(alexnet(weights=None).state_dict(), path)
    with pytest.raises(UsageError, match="width"):
        kong.load_imagenet_backbone(kong.KongNet(width=0.5), path)
    kong.load_imagenet_backbone(kong.KongNet(), path)  # width 1 loads
    with pytest.raises(UsageError, match="width"):
        weighted.load_imagenet_backbone(weighted.JinRegression(width=0.5), path)
