"""The model registry: a name → its description, how to build it, its input spec and weights.

Listing models, checking a name and choosing the default read the light catalogue
(:mod:`framescore.models.catalogue`) and import no network code; :func:`get` and
:func:`build_module` import the model's family module (and torch) when a model is used.
Turning a name into a scorer is the scorer layer's work (:func:`framescore.scorers.load_scorer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from framescore.errors import UsageError, WeightsError
from framescore.models.catalogue import FAMILIES, Entry, read
from framescore.models.spec import ModelInfo

if TYPE_CHECKING:
    from torch import nn

__all__ = ["FAMILIES", "REGISTRY", "build_module", "default_model", "entry", "family_of", "get",
           "register"]

#: name → light catalogue entry (attributes it lacks, like ``build``, come from the full
#: entry), or a full ModelInfo registered at run time (:func:`register`)
REGISTRY: dict[str, Entry | ModelInfo] = read()


def entry(name: str) -> Entry | ModelInfo:
    """The catalogue entry called ``name``; an unknown name is a one-line :class:`UsageError`."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UsageError(f"unknown model {name!r} (known: {known}; "
                         "or a path to an exported .onnx file)") from None


def get(name: str) -> ModelInfo:
    """The full registry entry called ``name`` (its family module is imported)."""
    found = entry(name)
    return found if isinstance(found, ModelInfo) else found.info()


def register(info: ModelInfo) -> ModelInfo:
    """Add a model at run time (a network of one's own, a test's); the name must be new."""
    if info.name in REGISTRY:
        raise UsageError(f"model {info.name!r} is registered already")
    REGISTRY[info.name] = info
    return info


def family_of(info: ModelInfo | Entry) -> str:
    """The zoo module an entry comes from (``rules``, ``arod``, ``rapid``, ``mobile``...)."""
    if info.family:
        return info.family
    fn = info.build         # a model registered at run time: the module of its network
    while hasattr(fn, "func"):  # functools.partial
        fn = fn.func
    return str(getattr(fn, "__module__", "?")).rsplit(".", 1)[-1]


def default_model() -> str:
    """The highest-ranked model whose weights are available."""
    usable = [m for m in REGISTRY.values() if m.weights_available and m.default_rank > 0]
    return max(usable, key=lambda m: m.default_rank).name


def build_module(name: str, weights: str | Path | None = None) -> tuple[ModelInfo, nn.Module]:
    """Build a torch model and load its weights (``weights`` or the bundled file)."""
    from framescore.models.weights import load_into

    info = get(name)
    if info.build is None:
        raise UsageError(f"model {name!r} has no neural network (nothing to load)")
    module = info.build()
    path = Path(weights) if weights else info.bundled_path
    if path is None or not path.is_file():
        if weights:
            raise WeightsError(f"{weights}: weights file not found")
        if info.needs_weights:
            raise WeightsError(f"model {name!r} needs weights: pass --weights FILE "
                               "(a checkpoint from `framescore train` or a converted release)")
    else:
        load_into(module, path, sha256=None if weights else info.sha256)
    return info, module.eval()
