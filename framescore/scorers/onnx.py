"""Scoring with an ONNX file through onnxruntime: ``--model path/to/model.onnx``, or a bundled
model's verified export, which is what runs a network on the CPU when it is there.

The file carries what is needed to use it (written by :mod:`framescore.export.onnx`): the model
name, input height/width and view in its ``metadata_props``; the graph takes float32 RGB 0..255
``(N, 3, H, W)`` and normalizes by itself. :class:`OnnxScorer` therefore only transposes the
uint8 batch (and warps it to the input size by :func:`framescore.preprocess.resize`, as
:class:`~framescore.scorers.torch.TorchScorer` does, when it is not there yet).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from framescore.errors import UsageError, WeightsError
from framescore.models.spec import InputSpec
from framescore.scorers.device import device_type


class OnnxScorer:
    """A :class:`~framescore.models.spec.Scorer` running an exported ONNX file on the CPU
    (or CUDA when onnxruntime-gpu is installed and ``device`` asks for it)."""

    runtime = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None,
                 expect: str | None = None) -> None:
        """``device``: ``cpu``, ``cuda`` or ``auto`` (CUDA when onnxruntime has it);
        ``expect``: the model name the file must carry (a bundled export)."""
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"{path}: ONNX file not found")
        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError("onnxruntime is not installed (pip install 'framescore[export]')") \
                from None
        ort.set_default_logger_severity(3)   # its provider notes would go to stdout
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # its worker threads sleep when idle instead of spinning: they share the cores with
        # the decoder, which spinning starved (bench/RESULTS.md, "onnxruntime's spinning")
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        wanted = device_type(device)
        cuda_here = "CUDAExecutionProvider" in ort.get_available_providers()
        if wanted == "cuda" and not cuda_here:
            raise UsageError("--device cuda: this onnxruntime cannot run on CUDA (install "
                             "onnxruntime-gpu, or use --device cpu)")
        if wanted in ("cuda", "auto") and cuda_here:
            providers.insert(0, "CUDAExecutionProvider")
        try:
            with warnings.catch_warnings():  # a provider it cannot start: said below, once
                warnings.simplefilter("ignore")
                self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise WeightsError(f"{path}: not a usable ONNX model ({first[:160]})") from None
        self.providers = self.session.get_providers()
        if wanted == "cuda" and self.providers[0] != "CUDAExecutionProvider":
            raise UsageError("--device cuda: onnxruntime could not start its CUDA provider "
                             f"(it fell back to {self.providers[0]}); use --device cpu")
        meta = self.session.get_modelmeta().custom_metadata_map
        if "framescore.model" not in meta:
            raise WeightsError(f"{path}: not a framescore export (no framescore metadata; "
                               "write it with `framescore export`)")
        if expect is not None and meta["framescore.model"] != expect:
            raise WeightsError(f"{path}: an export of {meta['framescore.model']!r}, not of "
                               f"{expect!r}")
        self.path = path
        self.source = str(path)
        self.metadata = dict(meta)
        self.name = meta["framescore.model"]
        self.precision = meta.get("framescore.precision", "fp32")
        mean = tuple(float(v) for v in meta.get("framescore.mean", "0,0,0").split(","))
        std = tuple(float(v) for v in meta.get("framescore.std", "1,1,1").split(","))
        self.spec = InputSpec(height=int(meta["framescore.height"]),
                              width=int(meta["framescore.width"]), mean=mean, std=std,
                              view=meta.get("framescore.view", "warp"),
                              resample=meta.get("framescore.resample", "antialias"))
        inp = self.session.get_inputs()[0]
        _check_input(path, inp, self.spec)
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        first = inp.shape[0]
        self.batch = first if isinstance(first, int) and first > 0 else None
        self.outputs = [o.name for o in self.session.get_outputs()]
        if "score" not in self.outputs:
            raise WeightsError(f"{path}: the graph has no 'score' output "
                               f"(outputs: {', '.join(self.outputs) or 'none'})")

    def __repr__(self) -> str:
        return f"OnnxScorer({str(self.path)!r}, model={self.name!r}, {self.precision})"

    def _pixels(self, images: np.ndarray) -> np.ndarray:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB images, got shape {images.shape}")
        if images.shape[1:3] != self.spec.size:
            from framescore.preprocess import resize_batch

            # the one resize, as TorchScorer's to_tensor does (and with no torch)
            images = resize_batch(images, self.spec)
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=self.input_dtype)

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Scores and extras of uint8 RGB ``(N, H, W, 3)`` images, as float32 arrays."""
        x = self._pixels(np.asarray(images))
        n = x.shape[0]
        step = self.batch or n
        parts: list[list[np.ndarray]] = []
        for start in range(0, n, step):
            chunk = x[start:start + step]
            if self.batch and len(chunk) < self.batch:  # a fixed-batch file: pad with copies
                pad = np.repeat(chunk[-1:], self.batch - len(chunk), axis=0)
                chunk = np.concatenate([chunk, pad])
            got = self.session.run(None, {self.input_name: chunk})
            parts.append([g[:min(step, n - start)] for g in got])
        out = {name: np.concatenate([p[i] for p in parts]).astype(np.float32)
               for i, name in enumerate(self.outputs)}
        out["score"] = out["score"].reshape(n)
        return out


def _check_input(path: Path, inp, spec: InputSpec) -> None:
    """One-line :class:`WeightsError` unless the graph's input is what its metadata says: a
    float tensor ``(N, 3, height, width)`` (a named dimension matches any size)."""
    shape = list(inp.shape)
    want = [None, 3, spec.height, spec.width]
    fits = ("float" in inp.type and len(shape) == 4
            and all(not isinstance(got, int) or w is None or got == w
                    for got, w in zip(shape, want, strict=True)))
    if not fits:
        shown = "x".join(str(d) if isinstance(d, int) else "N" for d in shape)
        raise WeightsError(
            f"{path}: the graph's input ({shown}, {inp.type}) does not match its metadata "
            f"(N x 3 x {spec.height} x {spec.width} float); re-export it with `framescore export`")
