"""What both exporters share: a registered model made ready to export.

:func:`prepare` turns a registry name (and weights) into an :class:`Exportable`: the torch module,
its input spec (optionally at another size), the names of its outputs and the *reference* scorer
the exported files must agree with. :class:`Normalized` wraps the module so that the exported
graph takes plain RGB pixels and returns a flat, named tuple of outputs:

* ONNX (``mode="pixels"``): input ``image`` float32 ``(N, 3, H, W)``, RGB in 0..255. The graph
  computes ``x = image * a + b`` per channel with ``a = 1 / (255 std)`` and
  ``b = -mean / std``, i.e. exactly ``(image / 255 - mean) / std``, so callers need no per-model
  constants.
* Core ML (``mode="coreml"``): the ``ImageType`` input already applies ``scale * pixel + bias``
  (one scale for all channels, one bias per channel). With ``scale = 1 / (255 std_0)`` and
  ``bias_c = -mean_c / std_0``, what is left for channel ``c`` is a factor ``std_0 / std_c``,
  which the wrapper multiplies in (and leaves out when every channel has the same std).

A model without a network (``rules``) is exported through the torch port its registry entry
names (``ModelInfo.port``, e.g. :class:`framescore.scorers.rules_torch.RulesNet`) and checked
against its own scorer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from framescore.errors import FramescoreError, UsageError
from framescore.models.spec import InputSpec, ModelInfo, Scorer

Mode = Literal["pixels", "coreml"]


class ExportError(FramescoreError):
    """A conversion or a verification that failed; nothing is left behind."""


@dataclass
class Exportable:
    """A registered model made ready for export."""

    info: ModelInfo
    module: nn.Module                # takes the normalized (N, 3, H, W) batch, returns a dict
    spec: InputSpec                  # the exported input (``--size`` may change height/width)
    outputs: tuple[str, ...]         # output names, "score" first
    reference: Scorer                # what the exported files must agree with
    weights: Path | None = None
    weights_sha256: str | None = None
    squeeze_score: bool = False      # the module returns score as (N, 1)
    reference_label: str = "PyTorch"
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per image, no batch axis

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def parameters(self) -> int:
        """Number of learned parameters (0 for a ported rule-based scorer)."""
        return sum(p.numel() for p in self.module.parameters())


def parse_size(text: str | int | None) -> tuple[int, int] | None:
    """``224`` or ``"224"`` → (224, 224); ``"192x256"`` → (192, 256) (height x width)."""
    if text is None:
        return None
    if isinstance(text, int):
        parts = [text]
    else:
        try:
            parts = [int(p) for p in str(text).lower().split("x")]
        except ValueError:
            raise UsageError(f"--size {text!r}: expected S or HxW in pixels") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8 or max(parts) > 4096:
        raise UsageError(f"--size {text!r}: expected S or HxW between 8 and 4096 pixels")
    return parts[0], parts[1]


def prepare(name: str, weights: str | Path | None = None,
            size: tuple[int, int] | None = None, module: nn.Module | None = None) -> Exportable:
    """Build ``name`` with its weights, at ``size`` if given, and find its outputs.

    ``module``: an already built (e.g. just trained) network of that registry entry, used
    as it is instead of building one and loading ``weights``.
    Unknown names, missing or unfitting weights and sizes the network cannot take are one-line
    :class:`~framescore.errors.FramescoreError` s.
    """
    from framescore.models.registry import build_module, get
    from framescore.models.weights import sha256_of
    from framescore.scorers import import_object
    from framescore.scorers.torch import TorchScorer

    info = get(name)
    spec = info.spec if size is None else replace(info.spec, height=size[0], width=size[1])
    path: Path | None = None
    if info.build is None:
        if info.port is None or info.scorer is None:
            raise UsageError(f"model {name!r} has no network to export")
        if weights:
            raise UsageError(f"model {name!r} takes no weights")
        module = import_object(info.port)().eval()
        reference: Scorer = import_object(info.scorer)()
        if size is not None:
            reference.spec = spec  # the rules measure at whatever size they are given
    else:
        if module is None:
            info, module = build_module(name, weights)
            path = Path(weights) if weights else info.bundled_path
            if path is not None and not path.is_file():
                path = None
        module = module.eval()
        reference = TorchScorer(name, module, spec, device="cpu", fp16=False)
    shapes, squeeze = probe_outputs(module, spec, name)
    return Exportable(info=info, module=module, spec=spec, outputs=tuple(shapes),
                      reference=reference, weights=path,
                      weights_sha256=sha256_of(path) if path else None,
                      squeeze_score=squeeze, shapes=shapes,
                      reference_label="PyTorch" if info.build is not None
                      else f"the numpy {name} scorer")


def probe_outputs(module: nn.Module, spec: InputSpec,
                  name: str) -> tuple[dict[str, tuple[int, ...]], bool]:
    """Run the module once on a blank batch of two; return its outputs' per-image shapes
    (``score`` first, as ``()``) and whether it gives the score as ``(N, 1)``. A module that
    cannot take the input or returns no score is an error."""
    x = torch.zeros(2, 3, spec.height, spec.width)
    try:
        with torch.inference_mode():
            out = module(x)
    except Exception as exc:  # noqa: BLE001 - any failure means the size does not fit
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"model {name!r} cannot take a {spec.height}x{spec.width} input "
                         f"({first[:160]})") from None
    if isinstance(out, torch.Tensor):
        out = {"score": out}
    if not isinstance(out, dict) or "score" not in out:
        raise ExportError(f"model {name!r} returns no 'score' output; cannot export it")
    for key, value in out.items():
        if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != 2:
            raise ExportError(f"model {name!r}: output {key!r} is not a per-image tensor")
    score = out["score"]
    if not (score.dim() == 1 or (score.dim() == 2 and score.shape[1] == 1)):
        raise ExportError(f"model {name!r}: score has shape {tuple(score.shape)}, "
                          "expected (N,) or (N, 1)")
    shapes = {"score": ()}
    shapes.update({k: tuple(v.shape[1:]) for k, v in out.items() if k != "score"})
    return shapes, score.dim() == 2


def coreml_image_scale(spec: InputSpec) -> tuple[float, tuple[float, float, float],
                                                  tuple[float, float, float]]:
    """Core ML ``ImageType`` scale and bias, and the per-channel factor left for the graph.

    ``scale * p + bias_c`` then ``* factor_c`` equals ``(p / 255 - mean_c) / std_c``.
    """
    s0 = spec.std[0]
    scale = 1.0 / (255.0 * s0)
    bias = tuple(-m / s0 for m in spec.mean)
    factor = tuple(s0 / s for s in spec.std)
    return scale, bias, factor  # type: ignore[return-value]


class Normalized(nn.Module):
    """``module`` behind the input normalization, with its outputs as a named flat tuple.

    ``mode="pixels"``: input RGB 0..255, the whole ``(p / 255 - mean) / std`` happens here.
    ``mode="coreml"``: the image input has applied scale and bias; only the per-channel factor
    of :func:`coreml_image_scale` remains (skipped when it is 1 for every channel).
    Outputs are ``exp.outputs`` in order, in float32, the score as ``(N,)``.
    """

    def __init__(self, exp: Exportable, mode: Mode = "pixels") -> None:
        super().__init__()
        self.module = exp.module
        self.outputs = exp.outputs
        self.squeeze_score = exp.squeeze_score
        spec = exp.spec
        if mode == "pixels":
            a = [1.0 / (255.0 * s) for s in spec.std]
            b = [-m / s for m, s in zip(spec.mean, spec.std, strict=True)]
        elif mode == "coreml":
            a = list(coreml_image_scale(spec)[2])
            b = [0.0, 0.0, 0.0]
        else:
            raise ValueError(f"unknown mode {mode!r}")
        self.identity_scale = all(abs(v - 1.0) < 1e-12 for v in a)
        self.zero_shift = all(v == 0.0 for v in b)
        self.register_buffer("a", torch.tensor(a, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("b", torch.tensor(b, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = image
        if not self.identity_scale:
            x = x * self.a
        if not self.zero_shift:
            x = x + self.b
        out = self.module(x)
        if isinstance(out, torch.Tensor):
            out = {"score": out}
        result: list[torch.Tensor] = []
        for key in self.outputs:
            value = out[key]
            if key == "score" and self.squeeze_score:
                value = value[:, 0]
            value = value.float()
            if any(value is r for r in result):
                # two names for one tensor (e.g. score = prob_high): give each its own node,
                # or converters merge them into one output under one name
                value = value * 1.0
            result.append(value)
        return tuple(result)


def describe(exp: Exportable) -> dict[str, str]:
    """Text metadata both exporters embed: what the model is and what its score means."""
    from framescore import __version__

    info, spec = exp.info, exp.spec
    weights = "none (no learned parameters)" if exp.weights is None and not info.needs_weights \
        else (f"{exp.weights.name} sha256:{exp.weights_sha256}" if exp.weights else "none")
    return {
        "framescore.model": info.name,
        "framescore.version": __version__,
        "framescore.paper": info.paper,
        "framescore.summary": info.summary,
        "framescore.score": info.score_meaning or
                            f"{info.summary}. One number per image; higher is better.",
        "framescore.license": info.license or "MIT (framescore); weights: see the model card",
        "framescore.view": spec.view,
        "framescore.resample": spec.resample,
        "framescore.height": str(spec.height),
        "framescore.width": str(spec.width),
        "framescore.mean": ",".join(repr(float(v)) for v in spec.mean),
        "framescore.std": ",".join(repr(float(v)) for v in spec.std),
        "framescore.outputs": ",".join(exp.outputs),
        "framescore.weights": weights,
    }
