"""The training loop, settings and the train / evaluate commands.

Resume equality (stopped after an epoch, and interrupted in the middle of one), atomic
checkpoints, early stopping, run-folder rules, config files and overrides, and bad input:
one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from framescore.cli import main
from framescore.errors import OutputError, UsageError
from framescore.models.weights import load_into
from framescore.train import loop
from framescore.train.config import (
    ConfigError,
    load_file,
    parse_override,
    resolve,
    to_toml,
)
from framescore.train.recipes import RapidRecipe, make_recipe, options_for
from tests.datasets_fixtures import make_ava

TINY = ["size=32", "batch_size=4", "steps_per_epoch=2", "workers=0", "test_views=2",
        "eval_batch_size=16", "lr_schedule=\"step\"", "lr_step=1", "lr_gamma=0.5"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small AVA folder (real-photo crops degraded by score), shared by the tests here."""
    return make_ava(tmp_path_factory.mktemp("ava") / "ava", n=28, seed=3, size=40).root


def _config(*extra: str) -> dict:
    return resolve(options_for("rapid-scnn"), overrides=[*TINY, *extra])


def _train(ava: Path, run: Path, config: dict, *, resume: bool = False,
           stop_after: int | None = None, recipe_cls: type = RapidRecipe):
    from framescore.models.registry import get

    recipe = recipe_cls("rapid-scnn", get("rapid-scnn"), config, ava)
    recipe.ensure_loaded()
    if not resume:
        loop.prepare_run_dir(run, False, False)
    loop.seed_everything(loop.epoch_seed(config["seed"], -2))
    model = recipe.build_model()
    result = loop.fit(model, recipe, config, run, meta={"model": "rapid-scnn",
                                                        "config": config},
                      resume=resume, stop_after=stop_after)
    return model, result


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _history(result) -> list[dict]:
    drop = {"time_s", "images_per_s"}
    return [{k: v for k, v in row.items() if k not in drop} for row in result.history]


# ---------------------------------------------------------------------------------------------
# resume


def test_resume_after_an_epoch_is_bit_identical(ava, tmp_path):
    config = _config("epochs=3")
    full, full_result = _train(ava, tmp_path / "full", config)
    _, first = _train(ava, tmp_path / "split", config, stop_after=1)
    assert first.status == "stopped" and first.epochs_done == 1
    resumed, second = _train(ava, tmp_path / "split", config, resume=True)
    assert second.status == "finished" and second.epochs_done == 3
    _same_state(full.state_dict(), resumed.state_dict())
    assert _history(full_result) == _history(second)
    a = loop.read_checkpoint(tmp_path / "full" / loop.LAST)
    b = loop.read_checkpoint(tmp_path / "split" / loop.LAST)
    groups = list(zip(a["optimizer"]["param_groups"], b["optimizer"]["param_groups"],
                      strict=True))
    assert len(groups) == 2  # weights, then biases at twice their rate (RAPID)
    for (group_a, group_b), mult in zip(groups, (1.0, config["bias_lr_mult"]), strict=True):
        assert group_a["lr"] == group_b["lr"] == pytest.approx(config["lr"] * mult * 0.5 ** 3)
    for k, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])


class _Interrupted(RapidRecipe):
    """The real RAPID recipe, with Ctrl-C pressed before its fifth training step."""

    calls = 0

    def step(self, ctx, batch):
        type(self).calls += 1
        if type(self).calls == 5:
            raise KeyboardInterrupt
        return super().step(ctx, batch)


def test_resume_after_an_interrupt_mid_epoch_is_bit_identical(ava, tmp_path):
    config = _config("epochs=3")
    full, _ = _train(ava, tmp_path / "full", config)
    with pytest.raises(KeyboardInterrupt):
        _train(ava, tmp_path / "cut", config, recipe_cls=_Interrupted)
    run_info = json.loads((tmp_path / "cut" / loop.RUN_JSON).read_text())
    assert run_info["status"] == "interrupted" and run_info["epochs_done"] == 2
    assert not list((tmp_path / "cut").glob(".*.part"))
    resumed, result = _train(ava, tmp_path / "cut", config, resume=True)
    assert result.epochs_done == 3
    _same_state(full.state_dict(), resumed.state_dict())


# ---------------------------------------------------------------------------------------------
# checkpoints and run folder


def test_checkpoints_load_into_the_model_and_best_is_the_best_epoch(ava, tmp_path):
    config = _config("epochs=2")
    model, result = _train(ava, tmp_path / "run", config)
    run = tmp_path / "run"
    for name in (loop.LAST, loop.BEST):
        fresh = make_recipe("rapid-scnn", config, ava).build_model()
        load_into(fresh, run / name)  # weights_only loading of {"state_dict": ...}
    fresh = make_recipe("rapid-scnn", config, ava).build_model()
    load_into(fresh, run / loop.LAST)
    _same_state(fresh.state_dict(), model.state_dict())
    best = torch.load(run / loop.BEST, weights_only=True)
    assert best["meta"]["epoch"] == result.best_epoch
    monitors = [row["val_monitor"] for row in result.history]
    assert best["meta"]["metrics"]["monitor"] == max(monitors)
    rows = (run / loop.METRICS).read_text().splitlines()
    assert len(rows) == 1 + len(result.history)
    assert rows[0].startswith("epoch,lr,train_loss")
    info = json.loads((run / loop.RUN_JSON).read_text())
    assert info["status"] == "finished" and info["epochs_done"] == 2
    if not _has_tensorboard():
        assert not (run / loop.TENSORBOARD).exists()


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def test_checkpoint_writes_are_atomic(tmp_path):
    path = tmp_path / "last.pt"
    loop.save_atomic({"state_dict": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    big = {"state_dict": {"w": torch.zeros(1000)}, "junk": Unpicklable()}
    with pytest.raises(RuntimeError, match="cannot pickle"):
        loop.save_atomic(big, path)
    assert path.read_bytes() == before  # the old checkpoint is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no partial file left
    assert torch.equal(loop.read_checkpoint(path)["state_dict"]["w"], torch.ones(3))


def test_run_folder_rules(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    (run / loop.METRICS).write_text("old")
    with pytest.raises(OutputError, match="--resume"):
        loop.prepare_run_dir(run, resume=False, force=False)
    loop.prepare_run_dir(run, resume=False, force=True)
    assert (run / "notes.txt").read_text() == "mine" and not (run / loop.METRICS).exists()
    with pytest.raises(UsageError, match="last.pt"):
        loop.prepare_run_dir(run, resume=True, force=False)
    with pytest.raises(UsageError, match="choose one"):
        loop.prepare_run_dir(run, resume=True, force=True)
    loop.prepare_run_dir(tmp_path / "new" / "deep", resume=False, force=False)
    assert (tmp_path / "new" / "deep").is_dir()


# ---------------------------------------------------------------------------------------------
# the loop on a small task of its own: early stopping, schedules, loss blow-up


class _Points(Dataset):
    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 0.0])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


class _Regression:
    """A minimal task: linear regression, with a scripted validation curve."""

    def __init__(self, monitors: list[float]) -> None:
        self.monitors = monitors
        self.epoch = 0

    def train_data(self, epoch):
        return _Points()

    def collate(self, items):
        batch = torch.utils.data.default_collate(items)
        batch["size"] = len(items)
        return batch

    def step(self, ctx, batch):
        pred = ctx.call("forward", batch["x"]).squeeze(1)
        return loop.StepResult(((pred - batch["y"]) ** 2).mean(), len(pred))

    def validate(self, model, ctx):
        value = self.monitors[min(self.epoch, len(self.monitors) - 1)]
        self.epoch += 1
        return {"score": value, "monitor": value}

    def trainable(self, model):
        return list(model.parameters())

    def start(self, model, ctx):
        pass

    def train_mode(self, model):
        model.train()


def _linear_config(**kw) -> dict:
    from framescore.train.config import COMMON, defaults

    config = defaults(COMMON)
    config.update(workers=0, batch_size=8, lr=0.05, lr_schedule="none")
    config.update(kw)
    return config


def test_early_stop_and_plateau_schedule(tmp_path):
    task = _Regression([0.1, 0.5, 0.4, 0.3, 0.2, 0.9, 0.9])
    config = _linear_config(epochs=10, early_stop=3, lr_schedule="plateau", plateau_patience=1,
                            lr_gamma=0.5)
    loop.prepare_run_dir(tmp_path / "run", False, False)
    result = loop.fit(nn.Linear(4, 1), task, config, tmp_path / "run")
    assert result.status == "early-stopped"
    assert result.epochs_done == 5 and result.best_epoch == 2 and result.best_value == 0.5
    lrs = [row["lr"] for row in result.history]
    # plateau_patience 1: halved once two epochs in a row (3 and 4) brought no gain
    assert lrs[:4] == [0.05] * 4 and lrs[4] == 0.025
    assert torch.load(tmp_path / "run" / loop.BEST, weights_only=True)["meta"]["epoch"] == 2
    assert result.history[0]["train_loss"] > result.history[-1]["train_loss"]


class _ScriptedLoss(_Regression):
    """Training losses scripted per epoch, no validation (Jin et al. hold nothing out)."""

    def __init__(self, losses: list[float]) -> None:
        super().__init__([0.0])
        self.losses = losses
        self.calls = 0

    def step(self, ctx, batch):
        pred = ctx.call("forward", batch["x"]).squeeze(1)
        value = self.losses[min(self.calls // 4, len(self.losses) - 1)]  # 32 points = 4 steps
        self.calls += 1
        return loop.StepResult(pred.sum() * 0.0 + value, len(pred))

    def validate(self, model, ctx):
        return {}


def test_plateau_train_divides_the_rate_when_the_training_loss_stops_falling(tmp_path):
    task = _ScriptedLoss([1.0, 0.8, 0.8, 0.9, 0.7, 0.7])
    config = _linear_config(epochs=6, early_stop=0, lr_schedule="plateau-train",
                            plateau_patience=1, lr_gamma=0.1)
    loop.prepare_run_dir(tmp_path / "run", False, False)
    result = loop.fit(nn.Linear(4, 1), task, config, tmp_path / "run")
    lrs = [row["lr"] for row in result.history]
    # epochs 3 and 4 bring no fall below 0.8: the rate is divided by 10 for epoch 5
    assert lrs[:4] == [0.05] * 4 and lrs[4] == pytest.approx(0.005)
    assert [row["train_loss"] for row in result.history] == pytest.approx(task.losses)
    # no validation: the kept model is the last epoch's (the paper reports its 20th)
    assert result.status == "finished"
    assert torch.load(tmp_path / "run" / loop.BEST, weights_only=True)["meta"]["epoch"] == 6


def test_a_diverging_loss_is_one_clear_error(tmp_path):
    config = _linear_config(epochs=2, lr=1e6, early_stop=0)
    loop.prepare_run_dir(tmp_path / "run", False, False)
    with pytest.raises(UsageError, match="lower the learning rate"):
        loop.fit(nn.Linear(4, 1), _Regression([0.0]), config, tmp_path / "run")


def test_steps_per_epoch_beyond_one_pass_reshuffles(tmp_path):
    config = _linear_config(epochs=1, steps_per_epoch=10, early_stop=0)  # 32 points = 4 steps
    loop.prepare_run_dir(tmp_path / "run", False, False)
    result = loop.fit(nn.Linear(4, 1), _Regression([0.0]), config, tmp_path / "run")
    assert result.history[0]["steps"] == 10 and result.history[0]["images"] == 80


def test_epoch_seeds_differ_and_repeat():
    seeds = {loop.epoch_seed(0, e) for e in range(-2, 50)}
    assert len(seeds) == 52 and all(0 <= s < 2**63 for s in seeds)
    assert loop.epoch_seed(7, 3, 1) == loop.epoch_seed(7, 3, 1) != loop.epoch_seed(8, 3, 1)


# ---------------------------------------------------------------------------------------------
# settings


def test_config_files_and_overrides(tmp_path):
    options = options_for("relative-siamese")
    toml = tmp_path / "c.toml"
    toml.write_text('lr = 0.01\nepochs = 3\nfreeze = ["global_column"]\noptimizer = "adam"\n')
    config = resolve(options, toml, ["epochs=5", "nesterov=false"])
    assert config["lr"] == 0.01 and config["epochs"] == 5 and config["optimizer"] == "adam"
    assert config["freeze"] == ["global_column"] and config["nesterov"] is False
    assert config["margin"] == 3.0 and config["lr_gamma"] == 0.85  # the paper's defaults
    (tmp_path / "t.toml").write_text("[train]\nlr = 2e-3\nbatch_size = 10\n")
    assert resolve(options, tmp_path / "t.toml")["batch_size"] == 10
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("lr: 0.5\nmax_variance: 3\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="PyYAML"):
            resolve(options, yaml_file)
    else:
        config = resolve(options, yaml_file)
        assert config["lr"] == 0.5 and config["max_variance"] == 3.0
    written = tmp_path / "back.toml"
    written.write_text(to_toml(config, "header line"))
    assert load_file(written) == config


@pytest.mark.parametrize(("text", "message"), [
    ("lrr = 1\n", "unknown key 'lrr' for relative-siamese (did you mean 'lr'?)"),
    ("lr = \"fast\"\n", "'lr' must be a number"),
    ("epochs = 2.5\n", "'epochs' must be a whole number"),
    ("epochs = true\n", "'epochs' must be a whole number"),
    ("nesterov = 1\n", "'nesterov' must be true or false"),
    ("optimizer = \"rmsprop\"\n", "'optimizer' must be one of sgd, adam, adamw"),
    ("batch_size = 0\n", "'batch_size' must be >= 1"),
    ("lr = -1\n", "'lr' must be > 0"),
    ("freeze = [1]\n", "'freeze' must be a list of non-empty strings"),
    ("lr = = 3\n", "not valid TOML"),
    ("[optim]\nlr = 1\n", "'optim' is a table"),
])
def test_bad_config_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        resolve(options_for("relative-siamese"), path, what="relative-siamese")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_overrides_parse_toml_values():
    assert parse_override("lr=1e-4") == ("lr", 1e-4)
    assert parse_override("freeze=[\"a\", \"b\"]") == ("freeze", ["a", "b"])
    assert parse_override("data_format=folder") == ("data_format", "folder")
    assert parse_override(" amp = false ") == ("amp", False)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("lr")
    with pytest.raises(ConfigError):
        load_file(Path("/nonexistent/config.toml"))
    with pytest.raises(ConfigError, match=".toml, .yaml or .yml"):
        load_file(Path(__file__))


def test_every_trainable_model_has_valid_defaults():
    from framescore.errors import UsageError
    from framescore.models.registry import get
    from framescore.train.recipes import recipe_names, trainable_models

    names = trainable_models()
    assert {"rapid-scnn", "rapid-dcnn", "relative-siamese", "kong-reg", "kong-full",
            "arod-resnet50", "jin-wmse", "jin-histogram", "framescore-mobile"} <= set(names)
    for name in names:
        for recipe in recipe_names(get(name)):
            options = options_for(name, recipe)
            config = resolve(options)  # every default passes its own checks
            assert config["data_format"] == options["data_format"].choices[0]
    assert recipe_names(get("framescore-mobile")) == ("hints", "arod")
    with pytest.raises(UsageError, match="not trained with recipe 'jin'"):
        options_for("framescore-mobile", "jin")
    with pytest.raises(UsageError, match="has no training recipe"):
        options_for("rules")


# ---------------------------------------------------------------------------------------------
# command line


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("framescore: error: ")
    return err[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "no-such-model", "--data", ".", "--out", "{tmp}/r"], "unknown model"),
    (["train", "rules", "--data", ".", "--out", "{tmp}/r"], "has no training recipe"),
    (["train", "rapid-scnn", "--data", "{tmp}/missing", "--out", "{tmp}/r"],
     "data root not found"),
    (["train", "rapid-scnn", "--data", "{tmp}", "--out", "{tmp}/r", "--set", "lrr=3"],
     "unknown key 'lrr'"),
    (["train", "rapid-scnn", "--data", "{tmp}", "--out", "{tmp}/r", "--set", "epochs=0"],
     "'epochs' must be >= 1"),
    (["train", "rapid-scnn", "--data", "{tmp}", "--out", "{tmp}/r", "--config",
      "{tmp}/bad.toml"], "not valid TOML"),
    (["train", "rapid-scnn", "--data", "{tmp}", "--out", "{tmp}/r", "--config",
      "{tmp}/nothere.toml"], "config file not found"),
    (["train", "rapid-scnn", "--out", "{tmp}/r"], "--data ROOT is needed"),
    (["train", "rapid-scnn", "--data", "{tmp}", "--out", "{tmp}/r"], "AVA label file"),
    (["train", "kong-reg", "--data", "{tmp}", "--out", "{tmp}/r"], "AADB"),
    (["train", "rapid-scnn", "--data", "{tmp}", "--out", "{tmp}/r", "--resume"],
     "no last.pt"),
    (["evaluate", "rapid-scnn", "--weights", "{tmp}/none.pt", "--data", "{tmp}"],
     "weights file not found"),
    (["evaluate", "rapid-scnn", "--weights", "{tmp}/bad.toml", "--data", "{tmp}"],
     "not a readable"),
    (["evaluate", "rules", "--weights", "{tmp}/bad.toml", "--data", "{tmp}"],
     "has no training recipe"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "bad.toml").write_text("lr = = 1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(args) == 2
    assert message in _one_error_line(capsys)


def test_an_existing_run_folder_needs_resume_or_force(ava, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "x").write_text("")
    assert main(["train", "rapid-scnn", "--data", str(ava), "--out", str(run),
                 *sum((["--set", s] for s in TINY), [])]) == 2
    assert "exists already" in _one_error_line(capsys)


def test_train_evaluate_resume_from_the_command_line(ava, tmp_path, capsys):
    run = tmp_path / "run"
    sets = sum((["--set", s] for s in [*TINY, "epochs=1"]), [])
    assert main(["train", "rapid-scnn", "--data", str(ava), "--out", str(run), "--json",
                 "--device", "cpu", *sets]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["epochs"] == 1
    assert summary["figures"][0]["key"] == "ava_accuracy"
    assert summary["figures"][0]["paper"] == 67.79  # the warped SCNN (Table II), δ = 0
    for name in (loop.LAST, loop.BEST, loop.METRICS, loop.CONFIG, loop.RUN_JSON, "test.json"):
        assert (run / name).is_file(), name
    saved = load_file(run / loop.CONFIG)
    assert saved["size"] == 32 and saved["epochs"] == 1 and saved["lr"] == 1e-3
    # evaluate with the stored settings (size 32): same figure as the end-of-training test
    assert main(["evaluate", "rapid-scnn", "--weights", str(run / loop.BEST), "--data",
                 str(ava), "--json", "--set", "workers=0"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["figures"][0]["ours"] == pytest.approx(summary["figures"][0]["ours"])
    # resume with one more epoch; the stored settings apply
    assert main(["train", "rapid-scnn", "--data", str(ava), "--out", str(run), "--resume",
                 "--set", "epochs=2", "--quiet"]) == 0
    rows = (run / loop.METRICS).read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    capsys.readouterr()
    assert main(["train", "relative-siamese", "--data", str(ava), "--out", str(run),
                 "--resume"]) == 2
    assert "is a run of rapid-scnn" in _one_error_line(capsys)


def test_evaluate_faults_protocol_on_a_folder_of_photos(ava, tmp_path, capsys):
    """``--protocol faults``: the fault-type table of a trained model beside rules."""
    import shutil

    from framescore.samples import photo_paths

    _train(ava, tmp_path / "run", _config("epochs=1"))
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo_paths()["chelsea"], photos)
    assert main(["evaluate", "rapid-scnn", "--weights", str(tmp_path / "run" / loop.BEST),
                 "--data", str(photos), "--protocol", "faults", "--repeats", "1",
                 "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    tables = result["fault_tables"]
    assert [t["model"] for t in tables] == ["rapid-scnn", "rules"]
    for table in tables:
        assert len(table["per_fault"]) >= 10
        assert all(f["pairs"] == 6 for f in table["per_fault"].values())  # 4 severities, 1 draw
        assert 0.0 <= table["overall"] <= 1.0
    assert main(["evaluate", "rapid-scnn", "--weights", str(tmp_path / "run" / loop.BEST),
                 "--data", str(tmp_path / "run"), "--protocol", "faults"]) == 2
    assert "no photos" in _one_error_line(capsys)


def test_show_config_lists_the_paper_defaults(capsys):
    assert main(["train", "relative-siamese", "--show-config", "--set", "epochs=7"]) == 0
    out = capsys.readouterr().out
    assert "lr_gamma = 0.85" in out and "epochs = 7" in out and "nesterov = true" in out


def test_size_is_refused_where_a_model_cannot_take_it(ava):
    config = resolve(options_for("kong-reg"), overrides=["size=24", "workers=0"])
    with pytest.raises(UsageError, match="cannot take 24x24"):
        make_recipe("kong-reg", config, ava).build_model()


def test_freeze_keeps_parts_fixed(ava, tmp_path):
    config = _config("epochs=1", "freeze=[\"column.convs\"]")
    from framescore.models.registry import get

    recipe = RapidRecipe("rapid-scnn", get("rapid-scnn"), config, ava)
    recipe.ensure_loaded()
    model = recipe.build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loop.prepare_run_dir(tmp_path / "run", False, False)
    loop.fit(model, recipe, config, tmp_path / "run")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("column.convs"))
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    bad = _config("freeze=[\"nothing.here\"]")
    with pytest.raises(UsageError, match="no parameter"):
        make_recipe("rapid-scnn", bad, ava).build_model()


# ---------------------------------------------------------------------------------------------
# many processes


@pytest.mark.slow
def test_ddp_under_torchrun_on_the_cpu(ava, tmp_path):
    """Two processes (Gloo): each reads half of every batch, rank 0 alone writes the run."""
    run = tmp_path / "ddp"
    sets = sum((["--set", s] for s in [*TINY, "epochs=1", "test_at_end=false"]), [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = tmp_path / "framescore_cli.py"  # what the `framescore` console script runs
    script.write_text("import sys\nfrom framescore.cli import main\nsys.exit(main())\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--standalone", str(script), "train", "rapid-scnn", "--data", str(ava),
           "--out", str(run), "--device", "cpu", "-q", *sets]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((run / loop.RUN_JSON).read_text())
    assert info["world_size"] == 2 and info["status"] == "finished"
    row = (run / loop.METRICS).read_text().splitlines()[1].split(",")
    assert int(row[3]) == 2 and int(row[4]) == 8  # 2 steps x 4 images over both ranks
    state = loop.read_checkpoint(run / loop.LAST)["state_dict"]
    assert all(math.isfinite(float(v.float().abs().sum())) for v in state.values())
    assert not np.isnan(float(info["best_monitor"]))


# ---------------------------------------------------------------------------------------------
# every trainable model: one step of its recipe, then its test protocol


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.datasets_fixtures import make_aadb, make_arod

    base = tmp_path_factory.mktemp("sets")
    from tests.datasets_fixtures import make_folder

    return {"ava": make_ava(base / "ava", n=40, seed=5, size=40).root,
            "aadb": make_aadb(base / "aadb", n=40, seed=5, size=64).root,
            "arod": make_arod(base / "arod", n=40, seed=5, size=40).root,
            "folder": make_folder(base / "folder", n=30, seed=5, size=40).root}


SMOKE = {  # model: (dataset, size, extra settings)
    "rapid-scnn-center": ("ava", 32, ["test_views=2"]),
    "rapid-scnn-pad": ("ava", 32, ["test_views=2"]),
    "rapid-scnn-patch": ("ava", 32, ["test_views=2"]),
    "rapid-dcnn": ("ava", 32, ["test_views=2"]),
    "relative-siamese": ("ava", 32, ["max_variance=10.0", "n_train=6", "n_val=2"]),
    "kong-reg": ("aadb", 64, []), "kong-reg-rank": ("aadb", 64, []),
    "kong-full": ("aadb", 64, []),
    "arod-resnet50": ("arod", 32, ["batch_size=3"]),
    "arod-resnet50@ava": ("ava", 32, ["batch_size=3", "data_format=\"ava\"",
                                      "val_fraction=0.2"]),
    "framescore-mobile": ("arod", 32, ["pretrained=false", "batch_size=3"]),
    "jin-wmse": ("ava", 32, ["rs_size=6", "ed_per_bin=2"]),
    "jin-histogram": ("ava", 32, ["rs_size=6", "ed_per_bin=2"]),
    # the other data formats a recipe takes ("model@format")
    "rapid-scnn@folder": ("folder", 32, ["test_views=2", "data_format=\"folder\"",
                                         "test_fraction=0.3"]),
    "relative-siamese@folder": ("folder", 32, ["data_format=\"folder\"", "n_train=20",
                                               "n_val=5", "n_test=10", "test_fraction=0.3"]),
    "kong-reg-rank@ava": ("ava", 64, ["data_format=\"ava\"", "val_fraction=0.2"]),
    "kong-full@ava": ("ava", 64, ["data_format=\"ava\"", "val_fraction=0.2"]),
    "kong-reg@folder": ("folder", 64, ["data_format=\"folder\""]),
    "framescore-mobile@ava": ("ava", 32, ["pretrained=false", "batch_size=3",
                                          "data_format=\"ava\"", "val_fraction=0.2"]),
    "framescore-mobile@folder": ("folder", 32, ["pretrained=false", "batch_size=3",
                                                "data_format=\"folder\"",
                                                "test_fraction=0.3"]),
}


# Jin's VGG16 (134 M parameters) takes ~15 s a step here, mostly building it and writing its
# checkpoints; its recipe is exercised quickly by tests/train/test_learnability.py.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n.startswith("jin") else n for n in sorted(SMOKE)])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # untrained ResNet: inf norms
def test_every_recipe_trains_a_step_and_tests(name, datasets, tmp_path):
    kind, size, extra = SMOKE[name]
    name, _, data_format = name.partition("@")
    # framescore-mobile's own recipe (hints) has tests of its own (test_hints_recipe.py); here
    # its second one, AROD's, on AROD / AVA / folder data
    recipe_name = "arod" if name == "framescore-mobile" else None
    config = resolve(options_for(name, recipe_name), overrides=[
        f"size={size}", "batch_size=2", "epochs=1", "steps_per_epoch=1", "workers=0",
        "eval_batch_size=8", "test_at_end=false", *extra])
    recipe = make_recipe(name, config, datasets[kind], recipe_name)
    recipe.ensure_loaded()
    model = recipe.build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loop.prepare_run_dir(tmp_path / "run", False, False)
    result = loop.fit(model, recipe, config, tmp_path / "run", meta={"model": name})
    assert result.epochs_done == 1 and math.isfinite(result.history[0]["train_loss"])
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    ctx = loop.Context(loop.Dispatch(model), torch.device("cpu"), False, False)
    figures = recipe.test(model, ctx)
    assert figures and all(f.metric for f in figures)
    reported = recipe.info.training.reported
    if data_format == "ava" and name.startswith("kong"):
        assert {"spearman", "ava_accuracy"} <= {f.key for f in figures}
    if data_format == "ava" and name == "framescore-mobile":
        # no classifier head: ‖Φ‖ thresholded, which is not AROD's protocol: no paper figure
        norm = [f for f in figures if f.key == "ava_accuracy_norm"]
        assert norm and norm[0].paper is None and "ava_accuracy" not in {f.key for f in figures}
    if data_format == "ava" and name == "arod-resnet50":
        # the paper's protocol: a softmax on Φ fine-tuned to the δ = 0 labels, beside 75.83
        assert tuple(model.classify.weight.shape) == (2, 1000)
        acc = [f for f in figures if f.key == "ava_accuracy"]
        assert acc and acc[0].paper == 75.83 and "fine-tuned" in acc[0].metric
        assert all(f.paper is None for f in figures if f.key != "ava_accuracy")
    if data_format == "folder":
        assert all(f.paper is None for f in figures)  # the papers' figures are for their data
    if kind == "aadb":
        assert figures[0].key == "spearman" and figures[0].paper == reported["aadb_spearman"]
        assert "TestNew" in figures[0].note
    if name == "kong-full":
        # the content gate reads a frozen branch: the step moved the trunk, not that branch
        assert torch.equal(model.content_trunk.features[0].weight,
                           before["trunk.features.0.weight"])
        assert not torch.equal(model.trunk.features[0].weight,
                               before["trunk.features.0.weight"])
        if data_format == "ava":  # the eight AVA categories, fitted then frozen
            assert tuple(model.content_classifier.weight.shape) == (8, 4096)
            assert "11 attributes" in figures[0].note
    if name.startswith("jin"):
        keys = {f.key for f in figures}
        assert {"mse_rs", "mse_ed", "range"} <= keys
        assert ("rmser_rs" in keys) == (name == "jin-histogram")


def test_style_column_then_rdcnn_style(datasets, tmp_path, capsys):
    sets = sum((["--set", s] for s in ["size=32", "batch_size=2", "epochs=1",
                                        "steps_per_epoch=1", "workers=0", "test_views=2",
                                        "val_fraction=0.2"]), [])
    ava = str(datasets["ava"])
    assert main(["train", "rapid-style", "--data", ava, "--out", str(tmp_path / "style"),
                 "--json", *sets]) == 0
    figures = json.loads(capsys.readouterr().out)["figures"]
    assert figures[0]["key"] == "style_map" and figures[0]["paper"] == 56.81
    assert main(["train", "rapid-rdcnn-style", "--data", ava, "--out", str(tmp_path / "r"),
                 *sets]) == 2
    assert "needs style_weights" in _one_error_line(capsys)
    style = tmp_path / "style" / loop.BEST
    assert main(["train", "rapid-rdcnn-style", "--data", ava, "--out", str(tmp_path / "r"),
                 "--json", *sets, "--set", f"style_weights=\"{style}\""]) == 0
    assert json.loads(capsys.readouterr().out)["figures"][0]["paper"] == 74.46
    assert main(["train", "rapid-rdcnn-semantic", "--data", ava, "--out",
                 str(tmp_path / "s"), *sets]) == 2
    assert "needs semantic_weights" in _one_error_line(capsys)
    assert main(["train", "rapid-rdcnn-semantic", "--data", ava, "--out",
                 str(tmp_path / "s"), *sets, "--set", "semantic_stage=true"]) == 2
    assert "needs imagenet_weights" in _one_error_line(capsys)


def test_arod_finetuning_starts_from_a_triplet_checkpoint(datasets, tmp_path):
    """AROD's AVA figure comes from fine-tuning the triplet model to the discrete labels: the
    triplet checkpoint (no classifier) loads into the fine-tuning net, whose 2-way head is
    new; ava_protocol = norm keeps the plain encoder and prints no paper figure."""
    triplet = resolve(options_for("arod-resnet50"), overrides=["size=32", "workers=0"])
    encoder = make_recipe("arod-resnet50", triplet, datasets["arod"]).build_model()
    assert encoder.classify is None
    torch.save(encoder.state_dict(), tmp_path / "triplet.pt")
    config = resolve(options_for("arod-resnet50"), overrides=[
        "size=32", "workers=0", "data_format=\"ava\"", f"init_weights=\"{tmp_path}/triplet.pt\""])
    model = make_recipe("arod-resnet50", config, datasets["ava"]).build_model()
    assert tuple(model.classify.weight.shape) == (2, 1000)
    assert torch.equal(model.encode.weight, encoder.encode.weight)
    assert torch.equal(model.backbone.conv1.weight, encoder.backbone.conv1.weight)
    norm = resolve(options_for("arod-resnet50"), overrides=[
        "size=32", "workers=0", "data_format=\"ava\"", "ava_protocol=\"norm\""])
    assert make_recipe("arod-resnet50", norm, datasets["ava"]).build_model().classify is None


def test_kong_says_loudly_when_within_rater_pairs_are_missing(datasets, tmp_path, caplog):
    """Without the rater CSV the pairs are cross-rater only: a WARNING line, and the paper's
    figure (within & cross) is not printed beside ours."""
    import shutil

    root = tmp_path / "aadb"
    shutil.copytree(datasets["aadb"], root)
    for csv in root.glob("*.csv"):
        csv.unlink()
    config = resolve(options_for("kong-reg-rank"), overrides=[
        "size=64", "batch_size=2", "workers=0", "eval_batch_size=8", "n_pairs=50"])
    recipe = make_recipe("kong-reg-rank", config, root)
    with caplog.at_level("WARNING"):
        recipe.ensure_loaded()
    assert any("WARNING" in line and "within-rater" in line for line in recipe.summary)
    assert "within-rater pairs are missing" in caplog.text
    model = recipe.build_model()
    ctx = loop.Context(loop.Dispatch(model), torch.device("cpu"), False, False)
    figures = recipe.test(model, ctx)
    assert figures[0].key == "spearman" and figures[0].paper is None
    assert "no within-rater pairs" in figures[0].note
    assert len(recipe.train_data(0)) == 50


def test_rapid_biases_learn_at_twice_the_rate(datasets):
    config = resolve(options_for("rapid-scnn"), overrides=["size=32", "workers=0", "lr=0.01"])
    recipe = make_recipe("rapid-scnn", config, datasets["ava"])
    model = recipe.build_model()
    optimizer = loop.make_optimizer(recipe.trainable(model), config)
    weights, biases = optimizer.param_groups
    assert weights["lr"] == 0.01 and biases["lr"] == pytest.approx(0.02)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in biases["params"]} == {
        n for n, _ in model.named_parameters() if n.endswith("bias")}
    assert all(not names[id(p)].endswith("bias") for p in weights["params"])
    # a plateau step keeps the ratio
    scheduler = loop.make_scheduler(optimizer, {**config, "plateau_patience": 0})
    scheduler.step(1.0)
    scheduler.step(0.5)
    assert biases["lr"] == pytest.approx(2 * weights["lr"]) and weights["lr"] < 0.01


def test_rapid_content_adaptation_trains_on_one_category(datasets):
    from framescore.train.data import read_content
    from tests.datasets_fixtures import make_ava  # noqa: F401  (the fixture wrote the lists)

    config = resolve(options_for("rapid-scnn"), overrides=[
        "size=32", "workers=0", "content=\"floral\"", "val_fraction=0.0"])
    recipe = make_recipe("rapid-scnn", config, datasets["ava"])
    recipe.ensure_loaded()
    train = set(read_content(datasets["ava"], "train", ("floral",))["floral"])
    test = set(read_content(datasets["ava"], "test", ("floral",))["floral"])
    assert {r.id for r in recipe.train_records} == train
    assert {r.id for r in recipe.test_records} == test
    model = recipe.build_model()
    ctx = loop.Context(loop.Dispatch(model), torch.device("cpu"), False, False)
    figure = recipe.test(model, ctx)[0]
    assert figure.paper is None and "floral only" in figure.note


def test_rdcnn_semantic_is_two_runs(datasets, tmp_path):
    """The first run fine-tunes the semantic column alone; the second installs it frozen."""
    from torchvision.models import alexnet

    torch.save(alexnet(weights=None).state_dict(), tmp_path / "alexnet.pt")
    base = ["size=64", "workers=0", "batch_size=2", "epochs=1", "steps_per_epoch=1",
            "test_views=1", "eval_batch_size=8", "test_at_end=false"]
    with pytest.raises(UsageError, match="semantic_weights"):
        make_recipe("rapid-rdcnn-semantic", resolve(options_for("rapid-rdcnn-semantic"),
                                                    overrides=base),
                    datasets["ava"]).build_model()
    stage = resolve(options_for("rapid-rdcnn-semantic"), overrides=[
        *base, "semantic_stage=true", f"imagenet_weights=\"{tmp_path}/alexnet.pt\""])
    recipe = make_recipe("rapid-rdcnn-semantic", stage, datasets["ava"])
    recipe.ensure_loaded()
    model = recipe.build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loop.prepare_run_dir(tmp_path / "stage", False, False)
    loop.fit(model, recipe, stage, tmp_path / "stage", meta={"model": "rapid-rdcnn-semantic"})
    moved = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert moved and all(k.startswith(("reg_column.", "semantic_head.")) for k in moved)
    second = resolve(options_for("rapid-rdcnn-semantic"), overrides=[
        *base, f"semantic_weights=\"{tmp_path}/stage/best.pt\""])
    rd = make_recipe("rapid-rdcnn-semantic", second, datasets["ava"]).build_model()
    assert torch.equal(rd.reg_column.fc[0].weight, model.reg_column.fc[0].weight)
    assert not any(p.requires_grad for p in rd.reg_column.parameters())


def test_relative_single_column_threshold_mean_rgb_and_rapid_baseline(datasets, tmp_path):
    """Relative aesthetics: the training set's mean RGB is subtracted (measured before the
    first epoch), the one column + sigmoid labels images high at mean ≥ 5.5 on the AVA test
    images and on the own test pairs' images (paper: 59.41 there), and a trained RAPID
    classifier's P(high) ranks the same pairs (the paper's 62.21 / 65.87 baseline)."""
    rapid_run = tmp_path / "rapid"
    config = resolve(options_for("rapid-scnn"), overrides=[
        "size=32", "batch_size=2", "epochs=1", "steps_per_epoch=1", "workers=0",
        "test_at_end=false", "test_views=1"])
    recipe = make_recipe("rapid-scnn", config, datasets["ava"])
    recipe.ensure_loaded()
    loop.prepare_run_dir(rapid_run, False, False)
    loop.fit(recipe.build_model(), recipe, config, rapid_run,
             meta={"model": "rapid-scnn", "config": config})
    config = resolve(options_for("relative-siamese"), overrides=[
        "size=32", "batch_size=2", "epochs=1", "steps_per_epoch=1", "workers=0",
        "eval_batch_size=8", "test_at_end=false", "max_variance=10.0", "n_train=6", "n_val=2",
        "n_test=6", f"rapid_weights=\"{rapid_run / loop.BEST}\""])
    recipe = make_recipe("relative-siamese", config, datasets["ava"])
    recipe.ensure_loaded()
    model = recipe.build_model()
    assert torch.equal(model.mean_shift, torch.zeros(1, 3, 1, 1))
    loop.prepare_run_dir(tmp_path / "run", False, False)
    loop.fit(model, recipe, config, tmp_path / "run", meta={"model": "relative-siamese"})
    assert model.mean_shift.abs().sum() > 0 and any("mean RGB" in n for n in recipe.summary)
    ctx = loop.Context(loop.Dispatch(model), torch.device("cpu"), False, False)
    figures = {f.key: f for f in recipe.test(model, ctx)}
    own = figures["own_accuracy_single_column"]
    assert own.paper == 59.41 and "mean ≥ 5.5" in own.note
    images = [recipe.records[i] for i in np.unique(recipe.pairs["test"][:, :2])]
    idx, res = recipe.predict(model, images, ctx)
    labels = [images[i].score >= 5.5 for i in idx]
    assert own.ours == pytest.approx(100 * np.mean((res["prob_high"] >= 0.5) == labels))
    assert figures["ava_accuracy_single_column"].paper == 71.60
    assert figures["rapid_pair_accuracy_test"].paper == 62.21
    assert figures["rapid_pair_accuracy_standard"].paper == 65.87
    assert 0 <= figures["rapid_pair_accuracy_standard"].ours <= 100


_RANK_SCRIPT = """
import json, sys, torch, torch.distributed as tdist
from framescore.train.loop import Dist, all_ranks_have
rank, store = int(sys.argv[1]), sys.argv[2]
tdist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=2)
counts = [[3, 3, 0, 2, 0], [3, 0, 3, 2, 0]][rank]
steps, seen = 0, []
for count in counts:
    ok = all_ranks_have(count, Dist(2, rank, rank), torch.device("cpu"))
    seen.append(ok)
    if ok:   # the stand-in for DDP's gradient all-reduce: every rank must take part
        t = torch.ones(1)
        tdist.all_reduce(t)
        steps += int(t.item()) // 2
tdist.destroy_process_group()
print(json.dumps({"seen": seen, "steps": steps}))
"""


def test_a_batch_empty_on_one_rank_is_skipped_by_every_rank(tmp_path):
    """Two Gloo processes: a batch with no readable image on either rank is skipped by both,
    so they take the same steps and meet in every all-reduce (a lone skip hung DDP)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _RANK_SCRIPT, str(r),
                               str(tmp_path / "store")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for r in (0, 1)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    for out in outs:
        assert out == {"seen": [True, False, False, True, False], "steps": 2}
    assert loop.all_ranks_have(0, loop.Dist(), torch.device("cpu")) is False
    assert loop.all_ranks_have(5, loop.Dist(), torch.device("cpu")) is True


def test_sync_batchnorm_option_for_jobs_of_several_processes():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    net[1].weight.requires_grad_(False)
    assert loop.with_sync_batchnorm(net, loop.Dist(2, 0, 0), {"sync_bn": False}) is net
    assert loop.with_sync_batchnorm(net, loop.Dist(), {"sync_bn": True}) is net
    synced = loop.with_sync_batchnorm(net, loop.Dist(2, 0, 0), {"sync_bn": True})
    assert isinstance(synced[1], nn.SyncBatchNorm)
    assert not synced[1].weight.requires_grad
    assert resolve(options_for("rapid-scnn"), overrides=["sync_bn=true"])["sync_bn"] is True


class _Numbers(Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> int:
        return i


def _collate(items: list) -> dict:
    return {"x": torch.tensor(items), "size": len(items)}


def test_loader_workers_persist_across_epochs_with_the_same_order():
    """With worker processes the epoch's DataLoader is the last one, reseeded (its workers
    live on); each epoch's order is still the one a fresh loader of that epoch gives."""
    config = {"seed": 7, "batch_size": 4, "workers": 1}
    data, cache, dist = _Numbers(), {}, loop.Dist()
    first = loop._loader(data, config, dist, 0, _collate, torch.device("cpu"), 0, cache)
    order0 = [b["x"].tolist() for b in first]
    workers = first._iterator._workers if first._iterator is not None else None
    again = loop._loader(data, config, dist, 1, _collate, torch.device("cpu"), 0, cache)
    assert again is first and first.persistent_workers
    order1 = [b["x"].tolist() for b in again]
    assert again._iterator._workers == workers   # the same worker processes
    fresh = loop._loader(data, config, dist, 1, _collate, torch.device("cpu"), 0)
    assert [b["x"].tolist() for b in fresh] == order1 != order0
    assert sorted(sum(order1, [])) == list(range(12))
    cache.clear()
