"""The RAPID and relative nets built for other input sizes (``size``), and the default layout."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from framescore.errors import UsageError
from framescore.models import rapid, relative
from framescore.models.registry import REGISTRY, build_module
from framescore.models.weights import mismatch
from framescore.train.config import resolve
from framescore.train.recipes import make_recipe, options_for

N = 3

#: (builder, what forward(x)["logits"] holds per image: None when the net has no logits)
NETS: dict[str, tuple[Callable[..., nn.Module], int | None]] = {
    "scnn": (rapid.SCNN, 2),
    "style": (rapid.StyleSCNN, len(rapid.STYLES)),
    "dcnn": (rapid.DCNN, 2),
    "rdcnn-style": (partial(rapid.RDCNN, "style"), 2),
    "rdcnn-semantic": (partial(rapid.RDCNN, "semantic"), 2),
    "relative": (relative.RelativeNet, None),
}
#: AlexNet's three 3/2 max-pools need 63 px: the semantic RDCNN is tried at 64 only
CASES = [(name, size) for name in NETS for size in (32, 64)
         if not (name == "rdcnn-semantic" and size < 63)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def last_side(size: int, relative_column: bool = False) -> int:
    """The side of a column's last conv map, counted layer by layer: RAPID's (3/2 pools) or
    the relative-aesthetics column of Table I (conv1 padded by 3, 2 x 2 pools)."""
    if relative_column:
        side = (size + 2 * 3 - 11) // 2 + 1              # conv1 11 x 11, stride 2, pad 3
        return side // 2 // 2                             # pool 2/2; conv2 keeps it; pool 2/2
    side = (size - 11) // 2 + 1                           # conv1 11 x 11, stride 2
    side = (side - 3) // 2 + 1                            # max-pool 3/2
    return (side - 3) // 2 + 1                            # conv2 keeps it; max-pool 3/2


def columns(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules()
            if isinstance(m, rapid.ScnnColumn | relative.RelativeColumn)]


def fc_input(col: nn.Module, size: int) -> int:
    """What the column's fc1000 must take at ``size``: conv4's channels x the last side²."""
    conv4 = [m for m in col.convs if isinstance(m, nn.Conv2d)][-1]
    return conv4.out_channels * last_side(size, isinstance(col, relative.RelativeColumn)) ** 2


@pytest.mark.parametrize(("name", "size"), CASES)
def test_a_net_built_for_a_size_scores_that_size(name: str, size: int) -> None:
    build, classes = NETS[name]
    torch.manual_seed(0)
    net = build(size=size).eval()
    cols = columns(net)
    assert len(cols) == {"scnn": 1, "style": 1, "rdcnn-style": 3}.get(name, 2)
    for col in cols:
        assert col.fc[1].in_features == fc_input(col, size)
    x = torch.rand(N, 3, size, size)
    with torch.no_grad():
        out = net(x)
        assert out["score"].shape == (N,)
        assert torch.isfinite(out["score"]).all()
        if classes is not None:
            assert out["logits"].shape == (N, classes)
        if name == "style":
            assert out["style_probs"].shape == (N, classes)
            assert torch.allclose(out["style_probs"].sum(1), torch.ones(N))
        else:
            assert out["prob_high"].shape == (N,)
            assert ((out["prob_high"] >= 0) & (out["prob_high"] <= 1)).all()
        if hasattr(net, "forward_views"):   # two views: a distinct local view is used
            local = torch.rand(N, 3, size, size)
            two = net.forward_views(x, local)
            assert two["score"].shape == (N,)
            assert not torch.allclose(two["score"], out["score"])
        if name == "relative":
            d = net.compare(x, x.flip(0))
            assert d.shape == (N,)
            assert torch.allclose(net.compare(x, x), torch.zeros(N))
    with pytest.raises(RuntimeError):   # the fc1000 layers fit this size only
        net(torch.rand(1, 3, 2 * size, 2 * size))


def test_weights_fit_the_size_they_were_built_for() -> None:
    small, other = rapid.SCNN(size=32), rapid.SCNN(size=64)
    assert mismatch(other, small.state_dict()) is not None
    with pytest.raises(RuntimeError, match="size mismatch"):
        other.load_state_dict(small.state_dict(), strict=True)
    again = rapid.SCNN(size=32)
    again.load_state_dict(small.state_dict(), strict=True)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(again.eval()(x)["logits"], small.eval()(x)["logits"])


@pytest.mark.parametrize("name", sorted(
    n for n, info in REGISTRY.items()
    if info.training and info.training.recipe in ("rapid", "relative")))
def test_the_registry_builds_the_paper_size(name: str) -> None:
    """The registry's net (no size given) is the 224 one: same keys and shapes, so weights
    saved before the size option load strictly (checked on the meta device: no memory)."""
    info = REGISTRY[name]
    assert info.spec.size == (224, 224)
    with torch.device("meta"):
        default = info.build()
        explicit = info.build(size=224)
        small = info.build(size=64)
    assert mismatch(default, explicit.state_dict()) is None
    default.load_state_dict(explicit.state_dict(), strict=True, assign=True)
    assert mismatch(default, small.state_dict()) is not None
    side = last_side(224, name == "relative-siamese")
    assert side == (27 if name == "relative-siamese" else 26)
    assert all(c.fc[1].in_features == fc_input(c, 224) for c in columns(default))
    if name == "relative-siamese":
        assert all(c.fc[1].in_features == 64 * 27 * 27 for c in columns(default))


def test_a_default_checkpoint_loads_through_the_registry(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = rapid.SCNN().eval()
    path = tmp_path / "scnn.pt"
    torch.save(net.state_dict(), path)
    try:
        _, loaded = build_module("rapid-scnn", path)
        x = torch.rand(2, 3, 224, 224)
        with torch.no_grad():
            assert torch.equal(loaded(x)["logits"], net(x)["logits"])
    finally:
        path.unlink()


@pytest.mark.parametrize("name", ["rapid-dcnn", "rapid-rdcnn-style", "relative-siamese"])
def test_recipes_build_their_nets_at_the_training_size(name: str, tmp_path: Path) -> None:
    config = resolve(options_for(name), overrides=["size=32", "workers=0"])
    model = make_recipe(name, config, tmp_path).build_model(load_weights=False)
    cols = columns(model)
    assert cols and all(c.fc[1].in_features == fc_input(c, 32) for c in cols)
    side = 3 if name == "relative-siamese" else 2
    assert all(c.fc[1].in_features % (side * side) == 0 for c in cols)
    frozen = getattr(model, "reg_column", None)
    if frozen is not None:       # the style column stays frozen at the new size
        assert not any(p.requires_grad for p in frozen.parameters())
        model.train()
        assert not frozen.training
    with torch.no_grad():
        out = model.eval().forward_views(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert out["score"].shape == (2,)


def test_a_part_too_small_for_the_size_is_refused(tmp_path: Path) -> None:
    config = resolve(options_for("rapid-rdcnn-semantic"), overrides=["size=32", "workers=0"])
    recipe = make_recipe("rapid-rdcnn-semantic", config, tmp_path)
    with pytest.raises(UsageError, match="cannot take 32x32"):
        recipe.build_model(load_weights=False)
