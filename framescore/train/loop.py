"""The training loop every recipe shares: epochs of steps, validation, checkpoints, resume.

What a recipe supplies is a :class:`Task` (the data of each epoch, one training step, the
validation metrics); :func:`fit` does the rest:

* **optimizer and schedule** from the settings (:func:`make_optimizer`, :func:`make_scheduler`);
* **mixed precision** on CUDA (fp16 autocast + gradient scaling; channels-last inputs), plain
  fp32 on the CPU;
* **checkpoints** after every epoch, written atomically (a temporary file renamed into place):
  ``last.pt`` (model, optimizer, schedule, scaler, RNG states, epoch, history) and ``best.pt``
  (the model of the best validation epoch). Both hold ``{"state_dict": ..., "meta": ...}`` and
  load with :func:`framescore.models.weights.load_into`;
* **resume** from ``last.pt``: every random choice of epoch ``e`` is drawn from generators
  seeded with ``(seed, e)`` (data order, sampling, augmentation, dropout), and model,
  optimizer, schedule and scaler states are restored, so on the CPU a resumed run is
  bit-identical to an uninterrupted one;
* **early stopping** after ``early_stop`` epochs without a better validation ``monitor``
  (higher is better), and the ``plateau`` schedule on the same value;
* **logs**: ``metrics.csv`` (one row per epoch, rewritten atomically from the history kept in
  the checkpoint), ``run.json`` (status, best epoch, timing), TensorBoard scalars when the
  ``tensorboard`` package is installed, and a progress bar on a terminal;
* **many GPUs** when launched by ``torchrun``: the process group is initialized from the
  environment, the model wrapped in ``DistributedDataParallel``, each process reads its share
  of every epoch (``DistributedSampler``), rank 0 validates and alone writes files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
)

from framescore.errors import OutputError, UsageError, WeightsError
from framescore.outputs import write_text_atomic

LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.csv"
CONFIG = "config.toml"
RUN_JSON = "run.json"
TENSORBOARD = "tensorboard"
#: What a run folder holds (``--force`` removes exactly these before starting over).
RUN_FILES = (LAST, BEST, METRICS, CONFIG, RUN_JSON, "test.json", TENSORBOARD)

Log = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# what a recipe provides


@dataclass
class StepResult:
    """The outcome of one training step: the loss to back-propagate, how many images it saw,
    and extra scalars to average over the epoch (e.g. the terms of a composite loss)."""

    loss: torch.Tensor
    images: int
    logs: dict[str, float] = field(default_factory=dict)


class Context:
    """Where the step runs: device, precision, and the model call (through DDP when
    distributed). ``call(method, *args)`` runs ``model.method(*args)`` so that DDP sees every
    forward pass, whichever of the family's methods (``forward_views``, ``compare``...) it is.
    """

    def __init__(self, net: nn.Module, device: torch.device, amp: bool,
                 channels_last: bool) -> None:
        self._net = net
        self.device = device
        self.amp = amp
        self.channels_last = channels_last

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._net(method, *args, **kwargs)

    def tensor(self, images: torch.Tensor | np.ndarray, spec: Any) -> torch.Tensor:
        """A collated uint8 batch ``(N, H, W, 3)`` as the model's normalized input."""
        from framescore.preprocess import to_tensor

        return to_tensor(images, spec, self.device, channels_last=self.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)


class Task(Protocol):
    """What :func:`fit` needs from a recipe."""

    def train_data(self, epoch: int) -> Dataset:
        """The training dataset of ``epoch`` (may be resampled per epoch from ``(seed, epoch)``)."""

    def collate(self, items: list) -> dict:
        """The DataLoader's ``collate_fn`` (``batch["size"]``: readable items, ``"skipped"``)."""

    def step(self, ctx: Context, batch: dict) -> StepResult:
        """Forward one batch and return its loss (runs under autocast on CUDA)."""

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        """Validation metrics with ``"monitor"`` (higher is better); ``{}`` without a
        validation set. Runs on rank 0 only, on the unwrapped model, in eval mode."""

    def trainable(self, model: nn.Module) -> list:
        """Parameters (or parameter groups) for the optimizer."""

    def start(self, model: nn.Module, ctx: Context) -> None:
        """Once before the first epoch of a fresh run (not on resume)."""

    def train_mode(self, model: nn.Module) -> None:
        """Put the model in training mode (frozen parts may stay in eval mode)."""

    def prepare(self, model: nn.Module, ctx: Context) -> None:
        """Once before training, fresh or resumed (after :meth:`start`): e.g. compute or load
        a cache of a frozen part's outputs."""


class Dispatch(nn.Module):
    """``forward(method, *args)`` → ``model.method(*args)``: lets DDP wrap any model method."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = self.model if method == "forward" else getattr(self.model, method)
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# distribution


@dataclass(frozen=True)
class Dist:
    """This process's place in a ``torchrun`` job (world 1, rank 0 without one)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def dist_from_env() -> Dist:
    """The ``torchrun`` environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), if any."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise UsageError("WORLD_SIZE / RANK / LOCAL_RANK must be whole numbers") from None
    return Dist(world, rank, local)


def init_distributed(dist_info: Dist, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, Gloo on the CPU) and pick this rank's device."""
    if not dist_info.active:
        return device
    import torch.distributed as tdist

    if device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def all_ranks_have(count: int, dist_info: Dist, device: torch.device) -> bool:
    """True when every process of the job holds at least one image in its batch (``count``).

    A rank whose batch held no readable image must not skip the step alone: the others would
    wait in DDP's gradient all-reduce for it, and the ranks fall out of step (a hang, or
    gradients of different steps averaged). So every rank asks all the others, and all skip
    together. One small all-reduce per step, only in a job of several processes."""
    if not dist_info.active:
        return count > 0
    import torch.distributed as tdist

    flag = torch.tensor([1 if count > 0 else 0], device=device, dtype=torch.int32)
    tdist.all_reduce(flag, op=tdist.ReduceOp.MIN)
    return bool(flag.item())


def with_sync_batchnorm(model: nn.Module, dist_info: Dist,
                        config: Mapping[str, Any]) -> nn.Module:
    """``model`` with its BatchNorm layers synchronized across the job's processes when the
    ``sync_bn`` setting asks for it in a job of several processes (statistics over the whole
    batch, not each GPU's few images); else ``model`` itself. Frozen layers stay frozen (a
    converted layer keeps its parameters, buffers and ``requires_grad``)."""
    if not (dist_info.active and config.get("sync_bn")):
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def _broadcast(obj: Any, dist_info: Dist) -> Any:
    if not dist_info.active:
        return obj
    import torch.distributed as tdist

    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------------------------------------
# optimizer, schedule, seeds


def make_optimizer(params: list, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW with the configured rate and weight decay."""
    if not params:
        raise UsageError("the model has no trainable parameters")
    name, lr, wd = config["optimizer"], config["lr"], config["weight_decay"]
    if name == "sgd":
        nesterov = bool(config["nesterov"])
        if nesterov and config["momentum"] <= 0:
            raise UsageError("nesterov needs momentum > 0")
        return torch.optim.SGD(params, lr=lr, momentum=config["momentum"], weight_decay=wd,
                               nesterov=nesterov)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def make_scheduler(optimizer: torch.optim.Optimizer, config: Mapping[str, Any]) -> Any:
    """The per-epoch learning-rate schedule (None for ``none``)."""
    kind = config["lr_schedule"]
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config["lr_step"], config["lr_gamma"])
    if kind in ("plateau", "plateau-train"):
        # plateau: the validation monitor (higher is better); plateau-train: the epoch's mean
        # training loss (lower is better; Jin et al. divide the rate by 10 when it stops falling)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if kind == "plateau" else "min", factor=config["lr_gamma"],
            patience=config["plateau_patience"])
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["epochs"])
    if kind == "warmup-cosine":
        if not config["steps_per_epoch"]:
            raise UsageError("the warmup-cosine schedule counts steps: set steps_per_epoch")
        return WarmupCosine(optimizer, config["lr"], config.get("warmup_steps", 0),
                            config["epochs"] * config["steps_per_epoch"])
    return None


class WarmupCosine:
    """The ``warmup-cosine`` schedule, set per optimizer step: a linear warm-up over
    ``warmup`` steps, then a cosine decay to 2 % of the rate at step ``total``. Each parameter
    group runs at that rate × its ``lr_scale`` (1 when it has none): a recipe can let a
    pretrained body learn slower than its new layers."""

    FLOOR = 0.02

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, warmup: int,
                 total: int) -> None:
        self.optimizer = optimizer
        self.lr, self.warmup, self.total = lr, warmup, total
        self.last_step = 0
        self._apply()

    def rate(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based)."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = (step - self.warmup) / max(1, self.total - self.warmup)
        return self.lr * (self.FLOOR + (1 - self.FLOOR) * 0.5 *
                          (1 + math.cos(math.pi * min(1.0, t))))

    def _apply(self) -> None:
        lr = self.rate(self.last_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def step(self) -> None:
        """After an optimizer step: the rate of the next one."""
        self.last_step += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.last_step = int(state["last_step"])
        self._apply()


#: schedules stepped after every optimizer step (the others once an epoch)
STEP_SCHEDULES = ("warmup-cosine",)


def epoch_seed(seed: int, epoch: int, salt: int = 0) -> int:
    """A 63-bit seed for ``(seed, epoch, salt)`` (SeedSequence mixing, not a plain sum)."""
    entropy = [seed & 0xFFFFFFFF, epoch & 0xFFFFFFFF, salt & 0xFFFFFFFF]
    words = np.random.SeedSequence(entropy).generate_state(2)
    return int.from_bytes(words.astype("<u4").tobytes(), "little") & (2**63 - 1)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------
# files


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` through a temporary file beside it and a rename, so
    ``path`` is always either the old complete file or the new complete file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"{path}: cannot write checkpoint ({err.strerror or err})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A framescore checkpoint (``weights_only=True``); a bad file is one :class:`WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable checkpoint ({first[:120]})") from None
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise WeightsError(f"{path}: not a framescore training checkpoint")
    return obj


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` of a checkpoint written by :func:`fit` (``{}`` for plain state dicts)."""
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - the caller's load_into reports a bad file properly
        return {}
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def check_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    """Whether the run folder may be used (no side effects): never reuse one without
    ``resume`` (which needs its ``last.pt``) or ``force``."""
    run_dir = Path(run_dir)
    if resume and force:
        raise UsageError("--resume continues a run and --force starts it over: choose one")
    if resume:
        if not (run_dir / LAST).is_file():
            raise UsageError(f"--resume: no {LAST} in {run_dir}")
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"{run_dir}: exists and is not a folder")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not force:
        raise OutputError(f"{run_dir}: exists already (use --resume to continue that run "
                          "or --force to start it over)")


def prepare_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    """Check (:func:`check_run_dir`) and make the run folder; ``force`` removes the files a
    run writes (:data:`RUN_FILES`) and nothing else."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume, force)
    if resume:
        return
    if run_dir.is_dir() and force:
        import shutil

        for name in RUN_FILES:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{run_dir}: cannot create ({err.strerror or err})") from None


def metrics_csv(history: list[dict[str, Any]]) -> str:
    """The epoch history as CSV text (columns: the union of the keys, first-seen order)."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in history:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(_json_safe(obj), indent=1) + "\n", force=True)


# ---------------------------------------------------------------------------------------------
# progress


class _Bar:
    """A rich progress bar over the steps of an epoch (inert when disabled or not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                                 transient=True)
        self.progress.start()
        self.task = None

    def epoch(self, description: str, total: int | None) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(description, total=total, info="")

    def advance(self, info: str, steps: int = 1) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=steps, info=info)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _tensorboard(run_dir: Path) -> Any:
    """A TensorBoard writer when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / TENSORBOARD))


# ---------------------------------------------------------------------------------------------
# the loop


@dataclass
class FitResult:
    """How a run went: epochs done, the best validation epoch and value, the history."""

    run_dir: Path
    epochs_done: int
    best_epoch: int | None
    best_value: float | None
    history: list[dict[str, Any]]
    status: str  # finished | early-stopped | stopped


def _loader(dataset: Dataset, config: Mapping[str, Any], dist_info: Dist, epoch: int,
            collate: Callable, device: torch.device, pass_no: int,
            cache: dict[str, Any] | None = None) -> DataLoader:
    """The DataLoader of one pass. With worker processes, the loader of a dataset seen before
    (``cache`` remembers one) is reused with its sampler reseeded, so its workers persist
    across passes and epochs instead of starting again (``persistent_workers``)."""
    seed = epoch_seed(config["seed"], epoch, 1 + pass_no)
    per_rank = max(1, config["batch_size"] // dist_info.world)
    workers = config["workers"]
    if cache is not None and workers > 0 and cache.get("dataset") is dataset:
        gen = cache["generator"].manual_seed(seed)
        # a fresh loader's iterator draws its workers' base seed from ``gen`` before the
        # sampler draws the order; draw it here too, so the epoch's order is a fresh loader's
        # (the workers keep the seeds they started with: their random views continue, so a
        # resumed run with workers matches an uninterrupted one in order, not in crops)
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        if dist_info.active:
            cache["sampler"].set_epoch(epoch * 1000 + pass_no)
        return cache["loader"]
    gen = torch.Generator().manual_seed(seed)
    if dist_info.active:
        sampler: Any = DistributedSampler(dataset, num_replicas=dist_info.world,
                                          rank=dist_info.rank,
                                          shuffle=not getattr(dataset, "in_order", False),
                                          seed=config["seed"], drop_last=False)
        sampler.set_epoch(epoch * 1000 + pass_no)
        share = len(sampler)
    elif getattr(dataset, "in_order", False):
        # the task drew the epoch's order itself (seeded): keep it
        sampler = SequentialSampler(dataset)
        share = len(dataset)
    else:
        sampler = RandomSampler(dataset, generator=gen)
        share = len(dataset)
    loader = DataLoader(dataset, batch_size=per_rank, sampler=sampler, num_workers=workers,
                        collate_fn=collate, drop_last=share >= per_rank,
                        pin_memory=device.type == "cuda", generator=gen,
                        persistent_workers=workers > 0)
    if cache is not None and workers > 0:
        cache.clear()  # a new dataset: the old loader's workers end with it
        cache.update(dataset=dataset, loader=loader, generator=gen, sampler=sampler)
    return loader


def _batches(task: Task, config: Mapping[str, Any], dist_info: Dist, epoch: int,
             device: torch.device, cache: dict[str, Any] | None = None
             ) -> tuple[Iterator[dict], int]:
    """The batches of one epoch and how many there are: one pass over the epoch's data, or
    ``steps_per_epoch`` batches (as many passes as that takes, each freshly shuffled)."""
    dataset = task.train_data(epoch)
    if len(dataset) == 0:
        raise UsageError("no training data left (check the dataset and the split settings)")
    first = _loader(dataset, config, dist_info, epoch, task.collate, device, 0, cache)
    per_pass = len(first)
    steps = config["steps_per_epoch"] or per_pass

    def gen() -> Iterator[dict]:
        done, pass_no, loader = 0, 0, first
        while True:
            for batch in loader:
                if done >= steps:
                    return
                done += 1
                yield batch
            if done >= steps or per_pass == 0:
                return
            pass_no += 1
            loader = _loader(dataset, config, dist_info, epoch, task.collate, device, pass_no,
                             cache)

    return gen(), steps


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def fit(model: nn.Module, task: Task, config: Mapping[str, Any], run_dir: str | Path, *,
        meta: Mapping[str, Any] | None = None, resume: bool = False,
        device: torch.device | str = "cpu", progress: bool = False, log: Log | None = None,
        stop_after: int | None = None) -> FitResult:
    """Train ``model`` on ``task`` for ``config["epochs"]`` epochs into ``run_dir``.

    ``run_dir`` must have been checked with :func:`prepare_run_dir` (the CLI does it);
    ``resume`` continues from its ``last.pt``. ``meta`` (model name, config, input spec...) is
    stored in every checkpoint. ``stop_after``: return after that many epochs of this call
    (the run can be resumed later, as if it had been interrupted).
    """
    run_dir = Path(run_dir)
    log = log or (lambda _msg: None)
    dist_info = dist_from_env()
    device = init_distributed(dist_info, torch.device(device))
    main = dist_info.main
    use_amp = bool(config["amp"]) and device.type == "cuda"
    channels_last = device.type == "cuda"
    if config["deterministic"]:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if config["batch_size"] < dist_info.world:
        raise UsageError(f"batch_size {config['batch_size']} is smaller than the "
                         f"{dist_info.world} processes")

    model = model.to(device)
    model = with_sync_batchnorm(model, dist_info, config)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    net: nn.Module = Dispatch(model)
    if dist_info.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    ctx = Context(net, device, use_amp, channels_last)
    optimizer = make_optimizer(task.trainable(model), config)
    scheduler = make_scheduler(optimizer, config)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    per_step = config["lr_schedule"] in STEP_SCHEDULES

    start_epoch = 0
    history: list[dict[str, Any]] = []
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs = 0
    if resume:
        state = read_checkpoint(run_dir / LAST)
        try:
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler"):
                scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else "mismatch"
            raise WeightsError(f"{run_dir / LAST}: does not fit this model and settings "
                               f"({first[:120]})") from None
        start_epoch = int(state["epoch"])
        history = list(state.get("history", []))
        best = state.get("best") or {}
        best_value, best_epoch = best.get("value"), best.get("epoch")
        bad_epochs = int(state.get("bad_epochs", 0))
        _set_rng_state(state["rng"])
        log(f"resuming after epoch {start_epoch}")
    else:
        seed_everything(epoch_seed(config["seed"], -1))
        task.start(model, ctx)

    prepare = getattr(task, "prepare", None)
    if prepare is not None:
        prepare(model, ctx)

    elapsed_before = float(history[-1].get("time_s", 0.0)) if history else 0.0
    writer = _tensorboard(run_dir) if main else None
    bar = _Bar(progress and main)
    started = time.time()
    status = "finished"
    base_meta = dict(meta or {})
    run_info = {"status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "device": str(device), "world_size": dist_info.world, "amp": use_amp,
                "torch": torch.__version__, **{k: v for k, v in base_meta.items()
                                               if k in ("model", "recipe", "data")}}
    if main:
        write_json(run_dir / RUN_JSON, run_info)
    epochs_this_call = 0
    epoch = start_epoch
    loaders: dict[str, Any] = {}  # the training DataLoader kept across epochs (its workers)
    try:
        for epoch in range(start_epoch, config["epochs"]):
            if stop_after is not None and epochs_this_call >= stop_after:
                status = "stopped"
                break
            seed_everything(epoch_seed(config["seed"], epoch))
            row = _train_epoch(task, ctx, net, optimizer, scaler, config, dist_info, epoch,
                               device, bar, writer, len(history), loaders,
                               scheduler if per_step else None)
            val = task.validate(model, ctx) if main else {}
            task.train_mode(model)
            val = _broadcast(val, dist_info)
            monitor = val.get("monitor")
            row.update({f"val_{k}": v for k, v in val.items() if k != "monitor"})
            if monitor is not None:
                row["val_monitor"] = monitor
            improved = monitor is None or (
                math.isfinite(monitor) and (best_value is None or monitor > best_value))
            if improved:
                best_value, best_epoch, bad_epochs = monitor, epoch + 1, 0
            else:
                bad_epochs += 1
            if scheduler is not None and not per_step:
                if config["lr_schedule"] == "plateau-train":
                    scheduler.step(row["train_loss"])
                elif isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    if monitor is not None and math.isfinite(monitor):
                        scheduler.step(monitor)
                else:
                    scheduler.step()
            row["time_s"] = round(time.time() - started + elapsed_before, 2)
            history.append(row)
            epochs_this_call += 1
            if main:
                info = {**base_meta, "epoch": epoch + 1, "metrics": val}
                if improved:
                    save_atomic({"state_dict": model.state_dict(), "meta": info},
                                run_dir / BEST)
                save_atomic({
                    "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else {},
                    "scaler": scaler.state_dict(), "epoch": epoch + 1, "history": history,
                    "best": {"value": best_value, "epoch": best_epoch},
                    "bad_epochs": bad_epochs, "rng": _rng_state(), "meta": info},
                    run_dir / LAST)
                write_text_atomic(run_dir / METRICS, metrics_csv(history), force=True)
                if writer is not None:
                    for key, value in row.items():
                        if isinstance(value, int | float) and key != "epoch":
                            writer.add_scalar(f"epoch/{key}", value, epoch + 1)
                    writer.flush()
                write_json(run_dir / RUN_JSON, {**run_info, "epochs_done": epoch + 1,
                                                "best_epoch": best_epoch,
                                                "best_monitor": best_value})
                log(_epoch_line(row, config["epochs"], improved and monitor is not None))
            if config["early_stop"] and bad_epochs >= config["early_stop"]:
                status = "early-stopped"
                log(f"early stop: no validation gain for {bad_epochs} epochs "
                    f"(best: epoch {best_epoch})")
                break
    except KeyboardInterrupt:
        if main:
            write_json(run_dir / RUN_JSON, {**run_info, "status": "interrupted",
                                            "epochs_done": len(history),
                                            "best_epoch": best_epoch,
                                            "best_monitor": best_value})
        raise
    finally:
        loaders.clear()  # the persistent workers end here
        bar.close()
        if writer is not None:
            writer.close()
    done = len(history)
    if main:
        write_json(run_dir / RUN_JSON, {**run_info, "status": status, "epochs_done": done,
                                        "best_epoch": best_epoch, "best_monitor": best_value,
                                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                        "seconds": round(time.time() - started, 1)})
    return FitResult(run_dir, done, best_epoch, best_value, history, status)


def _train_epoch(task: Task, ctx: Context, net: nn.Module, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, config: Mapping[str, Any], dist_info: Dist,
                 epoch: int, device: torch.device, bar: _Bar, writer: Any,
                 epochs_before: int, loaders: dict[str, Any] | None = None,
                 step_schedule: Any = None) -> dict[str, Any]:
    net.train()
    task.train_mode(_unwrap(net).model)
    batches, steps = _batches(task, config, dist_info, epoch, device, loaders)
    bar.epoch(f"epoch {epoch + 1}/{config['epochs']}", steps)
    loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
    nonfinite = torch.zeros((), device=device, dtype=torch.long)
    extra: dict[str, torch.Tensor] = {}
    n_steps = images = skipped = 0
    t0 = time.perf_counter()
    lr = optimizer.param_groups[0]["lr"]
    for batch in batches:
        skipped += int(batch.get("skipped", 0))
        if not all_ranks_have(int(batch.get("size", 1)), dist_info, device):
            continue  # every rank skips it together (a lone skip would hang DDP)
        with ctx.autocast():
            result = task.step(ctx, batch)
        loss = result.loss.float()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config["grad_clip"] > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], config["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        if step_schedule is not None:
            step_schedule.step()
        finite = torch.isfinite(loss.detach())
        nonfinite += (~finite).long()
        # with AMP an overflowing step is skipped by the scaler: keep it out of the mean
        loss_sum += torch.where(finite, loss.detach(), torch.zeros_like(loss)) if ctx.amp \
            else loss.detach()
        n_steps += 1
        images += result.images
        for key, v in result.logs.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
            extra[key] = extra.get(key, 0.0) + v.to(device)
        if n_steps % 10 == 0 or n_steps == steps:  # a sync point: check and show the loss
            mean = float(loss_sum) / max(n_steps - int(nonfinite), 1)
            if not math.isfinite(mean) and not ctx.amp:
                raise UsageError(f"the loss became {mean} in epoch {epoch + 1}: lower the "
                                 "learning rate (lr) or check the data")
            rate = images * dist_info.world / max(time.perf_counter() - t0, 1e-9)
            bar.advance(f"loss {mean:.4f}  {rate:.1f} img/s", 10 if n_steps % 10 == 0
                        else n_steps % 10)
        if writer is not None and n_steps % config["log_every"] == 0:
            writer.add_scalar("step/loss", float(loss), epochs_before * steps + n_steps)
    if n_steps == 0:
        raise UsageError(f"epoch {epoch + 1}: no readable training batch")
    bad = int(nonfinite)
    mean_loss = float(loss_sum) / max(n_steps - bad, 1) if ctx.amp else float(loss_sum) / n_steps
    if (not ctx.amp and not math.isfinite(mean_loss)) or bad == n_steps:
        raise UsageError(f"the loss became {'non-finite' if bad else mean_loss} in epoch "
                         f"{epoch + 1}: lower the learning rate (lr) or check the data")
    seconds = time.perf_counter() - t0
    row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "train_loss": mean_loss,
                           "steps": n_steps, "images": images * dist_info.world,
                           "images_per_s": round(images * dist_info.world / seconds, 2),
                           "skipped": skipped}
    if bad:
        row["nonfinite_steps"] = bad
    row.update({f"train_{k}": float(v) / n_steps for k, v in extra.items()})
    return row


def _epoch_line(row: Mapping[str, Any], epochs: int, best: bool) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    parts += [f"{k[4:]} {v:.4f}" for k, v in row.items()
              if k.startswith("val_") and k != "val_monitor" and isinstance(v, float)]
    parts.append(f"{row['images_per_s']:.1f} img/s")
    if row.get("skipped"):
        parts.append(f"{row['skipped']} unreadable skipped")
    return "  ".join(parts) + ("  *best*" if best else "")
