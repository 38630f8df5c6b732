"""The light catalogue of the zoo: every model's description without importing its code.

``catalogue.json`` beside this file holds, per registered model, the fields a listing, a name
check or the choice of the default model needs (name, paper, input, weights, parameter count).
It is written from the builders the family modules register (``@register_model``) by
:func:`write`, and a test checks that it still matches them, so reading it costs a JSON parse
instead of importing torch and every network. An :class:`Entry` resolves the full
:class:`~framescore.models.spec.ModelInfo` (with ``build`` and the ``training`` spec)
on first use of an attribute it does not hold itself.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from framescore.models.spec import MODELS_DIR, InputSpec, ModelInfo, registered

CATALOGUE_FILE = MODELS_DIR / "catalogue.json"

# The zoo's modules; each registers its entries' builders with ``@register_model``.
FAMILIES = ("rules", "arod", "rapid", "relative", "kong", "weighted", "mobile")

# the fields of ModelInfo an Entry carries itself (plus ``parameters``)
LIGHT_FIELDS = ("name", "family", "paper", "summary", "scorer", "port", "weights", "sha256",
                "onnx", "onnx_sha256", "needs_weights", "default_rank", "outputs",
                "score_meaning", "license", "card", "video_fps")


@dataclass(frozen=True)
class Entry:
    """A model as the catalogue lists it; anything else (``build``, ``training``) is read from
    the full entry, whose family module is imported then."""

    name: str
    family: str
    paper: str
    summary: str
    spec: InputSpec
    parameter_count: int
    scorer: str | None = None
    port: str | None = None
    weights: str | None = None
    sha256: str | None = None
    onnx: str | None = None
    onnx_sha256: str | None = None
    needs_weights: bool = True
    default_rank: int = 0
    outputs: tuple[str, ...] = ("score",)
    score_meaning: str | None = None
    license: str | None = None
    card: str | None = None
    video_fps: float | None = 5.0

    bundled_path = ModelInfo.bundled_path
    onnx_path = ModelInfo.onnx_path
    weights_available = ModelInfo.weights_available

    def parameters(self) -> int:
        """Number of parameters (recorded in the catalogue)."""
        return self.parameter_count

    def info(self) -> ModelInfo:
        """The full registry entry (imports the family module)."""
        return full_info(self.family, self.name)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.info(), attr)


@cache
def _family_entries(family: str) -> dict[str, ModelInfo]:
    importlib.import_module(f"framescore.models.{family}")     # runs its @register_model
    return {m.name: replace(m, family=family) for m in registered(family)}


def full_info(family: str, name: str) -> ModelInfo:
    """The entry ``name`` of zoo module ``family``, built by that module."""
    return _family_entries(family)[name]


def _record(info: ModelInfo) -> dict[str, Any]:
    out = {k: getattr(info, k) for k in LIGHT_FIELDS}
    out["outputs"] = list(info.outputs)
    spec = asdict(info.spec)
    spec["mean"], spec["std"] = list(spec["mean"]), list(spec["std"])
    out["spec"] = spec
    out["parameters"] = info.parameters()
    return out


def records() -> list[dict[str, Any]]:
    """The catalogue as the family modules define it now (imports every one of them)."""
    return [_record(info) for family in FAMILIES for info in _family_entries(family).values()]


def write(path: Path = CATALOGUE_FILE) -> Path:
    """Rewrite ``catalogue.json`` from the family modules (after changing an entry)."""
    # one model a line: a changed entry is a one-line diff
    lines = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records())
    text = "[\n" + lines + "\n]\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _entry(record: dict[str, Any]) -> Entry:
    spec = dict(record["spec"])
    spec["mean"], spec["std"] = tuple(spec["mean"]), tuple(spec["std"])
    fields = {k: record[k] for k in LIGHT_FIELDS}
    fields["outputs"] = tuple(record["outputs"])
    return Entry(spec=InputSpec(**spec), parameter_count=int(record["parameters"]), **fields)


def read(path: Path = CATALOGUE_FILE) -> dict[str, Entry]:
    """The catalogue, name → :class:`Entry`, in registration order."""
    return {r["name"]: _entry(r) for r in json.loads(path.read_text(encoding="utf-8"))}
