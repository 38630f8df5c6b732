"""Training settings: every knob has a default (the paper's where the paper gives one), and a
TOML or YAML file or ``KEY=VALUE`` overrides change them.

A config file holds flat ``key = value`` pairs (TOML) or ``key: value`` (YAML, read only when
PyYAML is installed); a ``[train]`` table (TOML) / ``train:`` mapping (YAML) holding the same
keys is accepted too. Every key is checked against the options of the recipe being run: an
unknown key, a value of the wrong type or out of range is a :class:`ConfigError`, one line that
names the file and the key (with a close match for a misspelling).

The resolved settings (defaults + file + overrides) are a plain ``dict`` and are written into
the run folder as ``config.toml`` (:func:`to_toml`), so a run can be repeated with
``--config RUN/config.toml``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from framescore.errors import UsageError


class ConfigError(UsageError):
    """A config file or override that cannot be used (unknown key, wrong type, bad value)."""


def _toml() -> Any:
    """The TOML reader: ``tomllib`` (Python 3.11+), else the ``tomli`` package."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ConfigError("reading TOML on Python 3.10 needs the package tomli "
                              "(pip install tomli)") from None
    return tomllib


Check = Callable[[Any], str | None]  # value → error message, or None when fine


@dataclass(frozen=True)
class Option:
    """One setting: its default, its type (``bool``, ``int``, ``float``, ``str`` or ``list``),
    a one-line help, and optionally the allowed ``choices`` or a ``check``."""

    default: Any
    kind: type
    help: str
    choices: tuple[str, ...] | None = None
    check: Check | None = None


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be >= {low:g}"


def above(low: float) -> Check:
    return lambda v: None if v > low else f"must be > {low:g}"


def fraction(v: float) -> str | None:
    return None if 0.0 <= v < 1.0 else "must be in [0, 1)"


#: Settings every recipe has. Recipes override the defaults with their paper's values and add
#: their own keys (see :mod:`framescore.train.recipes`).
COMMON: dict[str, Option] = {
    # schedule
    "epochs": Option(20, int, "passes over the training data", check=at_least(1)),
    "steps_per_epoch": Option(0, int, "batches per epoch (0: one full pass over the data)",
                              check=at_least(0)),
    "batch_size": Option(32, int, "images (pairs, triplets) per step, over all GPUs",
                         check=at_least(1)),
    "eval_batch_size": Option(64, int, "images per batch when validating and testing",
                              check=at_least(1)),
    # optimizer
    "optimizer": Option("sgd", str, "sgd, adam or adamw", choices=("sgd", "adam", "adamw")),
    "lr": Option(1e-3, float, "learning rate", check=above(0)),
    "momentum": Option(0.9, float, "SGD momentum", check=at_least(0)),
    "nesterov": Option(False, bool, "Nesterov momentum (SGD)"),
    "weight_decay": Option(0.0, float, "L2 weight decay", check=at_least(0)),
    "grad_clip": Option(0.0, float, "clip the gradient norm to this (0: off)",
                        check=at_least(0)),
    "lr_schedule": Option("plateau", str, "none; step (x lr_gamma every lr_step epochs); "
                          "plateau (x lr_gamma when validation stalls for plateau_patience "
                          "epochs); plateau-train (the same when the training loss stops "
                          "falling); cosine (to 0 over the epochs); warmup-cosine (per "
                          "step: linear warm-up over warmup_steps, then a cosine decay to 2 % "
                          "of lr at the last step)",
                          choices=("none", "step", "plateau", "plateau-train", "cosine",
                                   "warmup-cosine")),
    "warmup_steps": Option(0, int, "steps of linear warm-up of the warmup-cosine schedule",
                           check=at_least(0)),
    "lr_step": Option(10, int, "epochs between steps of the 'step' schedule",
                      check=at_least(1)),
    "lr_gamma": Option(0.1, float, "factor of the step / plateau schedules",
                       check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]"),
    "plateau_patience": Option(2, int, "epochs without validation gain before the plateau "
                               "schedule lowers the rate", check=at_least(0)),
    "early_stop": Option(10, int, "stop after this many epochs without validation gain "
                         "(0: never)", check=at_least(0)),
    # data
    "val_fraction": Option(0.05, float, "share of the training images held out for "
                           "validation when the dataset has no validation split",
                           check=fraction),
    "max_images": Option(0, int, "use at most this many training images (0: all)",
                         check=at_least(0)),
    "size": Option(0, int, "input side in pixels (0: the model's own size)",
                   check=at_least(0)),
    "flip": Option(False, bool, "random horizontal flips while training"),
    "workers": Option(4, int, "image-loading processes (0: load in the main process)",
                      check=at_least(0)),
    # initialisation
    "imagenet_weights": Option("", str, "torchvision ImageNet state dict for the backbone "
                               "(path; empty: none)"),
    "init_weights": Option("", str, "framescore checkpoint to start from (path; empty: none)"),
    "freeze": Option([], list, "parameter-name prefixes kept fixed (e.g. [\"trunk.features\"]); "
                     "frozen layers also keep their BatchNorm statistics",
                     check=lambda v: None if all(isinstance(x, str) and x for x in v)
                     else "must be a list of non-empty strings"),
    # run
    "seed": Option(0, int, "seed of every random choice (data split, init, sampling)"),
    "amp": Option(True, bool, "mixed precision (fp16 autocast) on CUDA; ignored on the CPU"),
    "sync_bn": Option(False, bool, "synchronized BatchNorm across the processes of a torchrun "
                      "job (for small per-GPU batches); ignored in a single process"),
    "deterministic": Option(False, bool, "deterministic CUDA kernels (slower)"),
    "log_every": Option(50, int, "steps between TensorBoard / log lines", check=at_least(1)),
    "test_at_end": Option(True, bool, "evaluate the best checkpoint on the test split at "
                          "the end"),
}


def with_defaults(options: Mapping[str, Option], **defaults: Any) -> dict[str, Option]:
    """``options`` with some defaults replaced (a recipe's paper values)."""
    out = dict(options)
    for key, value in defaults.items():
        if key not in out:
            raise KeyError(f"no option {key!r} to set a default for")
        out[key] = replace(out[key], default=value)
    return out


def defaults(options: Mapping[str, Option]) -> dict[str, Any]:
    """The default value of every option."""
    return {k: o.default for k, o in options.items()}


# ---------------------------------------------------------------------------------------------
# reading files


def load_file(path: str | Path) -> dict[str, Any]:
    """The key/value pairs of a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    if suffix == ".toml":
        toml = _toml()
        try:
            data = toml.loads(text)
        except toml.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML ({err})") from None
    elif suffix in (".yaml", ".yml"):
        data = _load_yaml(path, text)
    else:
        raise ConfigError(f"{path}: config files must end in .toml, .yaml or .yml")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds key/value pairs")
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(f"{path}: '{key}' is a table; config keys are flat "
                              "(key = value)")
    return dict(data)


def _load_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"{path}: YAML config files need PyYAML (pip install pyyaml); "
                          "or write the config as TOML") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "syntax error"
        raise ConfigError(f"{path}: not valid YAML ({first})") from None


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (a ``--set`` argument); VALUE is read as a TOML value (``3``, ``1e-4``,
    ``true``, ``"text"``, ``[1, 2]``) and otherwise taken as a plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set needs KEY=VALUE, got {text!r}")
    raw = raw.strip()
    toml = _toml()
    try:
        value = toml.loads(f"v = {raw}")["v"]
    except toml.TOMLDecodeError:
        value = raw
    return key, value


# ---------------------------------------------------------------------------------------------
# validation


def _type_name(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
            list: "a list"}.get(kind, kind.__name__)


def coerce(key: str, value: Any, option: Option, where: str) -> Any:
    """``value`` checked against ``option`` (ints are accepted where floats are expected)."""
    kind = option.kind
    ok = (isinstance(value, bool) if kind is bool
          else isinstance(value, int) and not isinstance(value, bool) if kind is int
          else isinstance(value, int | float) and not isinstance(value, bool) if kind is float
          else isinstance(value, kind))
    if not ok:
        raise ConfigError(f"{where}: '{key}' must be {_type_name(kind)}, not {value!r}")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: '{key}' must be a finite number, not {value!r}")
    if option.choices is not None and value not in option.choices:
        raise ConfigError(f"{where}: '{key}' must be one of {', '.join(option.choices)}, "
                          f"not {value!r}")
    if option.check is not None:
        problem = option.check(value)
        if problem:
            raise ConfigError(f"{where}: '{key}' {problem} (got {value!r})")
    return value


def unknown_key(key: str, known: Iterable[str], where: str, what: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{where}: unknown key '{key}' for {what}{hint}")


def resolve(options: Mapping[str, Option], file: str | Path | None = None,
            overrides: Iterable[str] = (), what: str = "this model",
            base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings: ``base`` (default: the options' defaults), then the ``file``'s keys, then
    the ``KEY=VALUE`` ``overrides``; every key and value checked against ``options``."""
    config = dict(defaults(options))
    if base:
        for key, value in base.items():
            if key in options:
                config[key] = value
    layers: list[tuple[str, dict[str, Any]]] = []
    if file is not None:
        layers.append((str(file), load_file(file)))
    if overrides:
        layers.append(("--set", dict(parse_override(o) for o in overrides)))
    for where, values in layers:
        for key, value in values.items():
            if key not in options:
                raise unknown_key(key, options, where, what)
            config[key] = coerce(key, value, options[key], where)
    return config


# ---------------------------------------------------------------------------------------------
# writing


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value)
                                                         else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c >= " " or c == "\t" else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: Mapping[str, Any], header: str = "") -> str:
    """``config`` as flat TOML (readable back by :func:`load_file`)."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key} = {_toml_value(value)}" for key, value in config.items()]
    return "\n".join(lines) + "\n"


def describe(options: Mapping[str, Option], values: Mapping[str, Any] | None = None) -> str:
    """The settings as TOML lines with each option's meaning as a comment (``values``, default:
    the defaults), for ``framescore train MODEL --show-config``."""
    values = values if values is not None else defaults(options)
    cells = [(f"{key} = {_toml_value(values[key])}", options[key].help) for key in options]
    width = max(len(c) for c, _ in cells)
    return "\n".join(f"{c:<{width}}  # {h}" for c, h in cells)
