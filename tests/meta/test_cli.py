"""``archlab meta-train`` and ``archlab meta-eval``: JSON contract, checkpoints, resume, errors."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

import archlab
from archlab.cli import main
from archlab.engine import Callback, callbacks, read_config
from archlab.engine.checkpoint import read_training_state
from archlab.errors import TrainingInterrupted
from archlab.jobs import MetaConfig, meta_train
from archlab.models.registry import load_model


def run_json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_maml_sinusoid_train_then_eval(tmp_path, capsys):
    out = tmp_path / "run"
    payload = run_json(capsys, "meta-train", "maml", "--data", "sinusoid", "--iterations", "4", "--meta-batch", "3",
                       "--eval-tasks", "5", "--eval-steps", "1,2", "--out", str(out), "--json")
    assert {"test_mse_step1", "test_mse_step1_ci95", "test_mse_step2", "test_mse_step2_ci95"} <= set(payload["metrics"])
    assert payload["checkpoint"] == str(out)
    config = read_config(out)
    assert config["meta"]["algorithm"] == "maml" and config["meta"]["inner_lr"] == 0.001  # Finn's code
    model = load_model(out)
    assert model(torch.zeros(3, 1)).shape == (3, 1)
    payload = run_json(capsys, "meta-eval", str(out), "--tasks", "4", "--inner-steps", "0,3", "--shots", "5", "--json")
    assert set(payload["metrics"]) == {f"test_mse_step{k}{suffix}" for k in (0, 3) for suffix in ("", "_ci95", "_median")}


def test_maml_digits_with_meta_sgd(tmp_path, capsys):
    out = tmp_path / "run"
    payload = run_json(capsys, "meta-train", "maml", "--data", "digits", "--ways", "3", "--shots", "1",
                       "--iterations", "2", "--meta-batch", "2", "--learn-inner-lr", "--eval-tasks", "3",
                       "--strategy", "threads", "--out", str(out), "--json")
    assert "test_accuracy_step10" in payload["metrics"]  # scored after the digits recipe's 10 inner steps
    assert (out / "inner_lrs.safetensors").is_file()
    payload = run_json(capsys, "meta-eval", str(out), "--tasks", "3", "--steps", "1,3", "--json")
    assert 0 <= payload["metrics"]["test_accuracy_step3"] <= 1
    assert main(["meta-eval", str(out), "--ways", "4", "--tasks", "2"]) == 2
    assert "3-way output layer; got --ways 4" in capsys.readouterr().err


def test_reptile_sinusoid(tmp_path, capsys):
    payload = run_json(capsys, "meta-train", "reptile", "--data", "sinusoid", "--iterations", "3", "--meta-batch",
                       "2", "--eval-tasks", "3", "--out", str(tmp_path / "r"), "--json")
    assert "test_mse_step10" in payload["metrics"]
    assert read_config(tmp_path / "r")["meta"]["inner_optimizer"] == "sgd"


def test_resume_continues_bitwise(tmp_path, capsys):
    common = ["meta-train", "maml", "--data", "digits", "--ways", "3", "--meta-batch", "2", "--eval-tasks", "0",
              "--checkpoint-every", "1", "--json"]
    run_json(capsys, *common, "--iterations", "4", "--out", str(tmp_path / "full"))
    run_json(capsys, *common, "--iterations", "2", "--out", str(tmp_path / "part"))
    run_json(capsys, *common, "--iterations", "4", "--out", str(tmp_path / "part"), "--resume")
    full, part = load_model(tmp_path / "full").state_dict(), load_model(tmp_path / "part").state_dict()
    for k in full:
        torch.testing.assert_close(part[k], full[k], rtol=0, atol=0)
    assert main([*common, "--iterations", "5", "--inner-lr", "0.2", "--out", str(tmp_path / "part"), "--resume"]) == 2
    assert "differ from the saved ones: inner_lr" in capsys.readouterr().err


def assert_same_run(a, b):
    """The same weights and, for Meta-SGD, the same learned step sizes, bitwise."""
    for name in ("model.safetensors", "inner_lrs.safetensors"):
        if (a / name).is_file() or (b / name).is_file():
            x, y = load_file(a / name), load_file(b / name)
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), name


RUNS = {
    "maml-meta-sgd": ["maml", "--data", "digits", "--ways", "3", "--meta-batch", "2", "--learn-inner-lr",
                      "--strategy", "loop"],
    "reptile": ["reptile", "--data", "sinusoid", "--meta-batch", "2", "--inner-steps", "2"],
    "anil": ["anil", "--data", "digits", "--ways", "3", "--meta-batch", "2", "--strategy", "loop"],
    "protonet": ["protonet", "--data", "digits", "--ways", "3", "--query", "2"],
}


@pytest.fixture
def ticking_clock(monkeypatch):
    """The time limit's clock advances one second each time it is read (0 at the start of a run)."""
    readings = iter(range(10**9))
    monkeypatch.setattr(callbacks, "now", lambda: float(next(readings)))


@pytest.mark.parametrize("run", list(RUNS))
def test_a_run_stopped_by_its_time_limit_resumes_bitwise(tmp_path, capsys, ticking_clock, run):
    common = ["meta-train", *RUNS[run], "--iterations", "5", "--eval-tasks", "2", "--log-every", "2", "--json"]
    full = run_json(capsys, *common, "--out", str(tmp_path / "full"))
    cut = run_json(capsys, *common, "--out", str(tmp_path / "cut"), "--time-limit", "2.5s")
    assert cut["stopped"] == "time_limit" and cut["metrics"] == {"iterations": 3}  # not finished: no meta-test
    assert read_training_state(tmp_path / "cut")["step"] == 3
    done = run_json(capsys, *common, "--out", str(tmp_path / "cut"), "--resume")
    assert "stopped" not in done and done["metrics"] == full["metrics"]
    assert_same_run(tmp_path / "full", tmp_path / "cut")
    assert (tmp_path / "cut" / "history.csv").read_text().splitlines()[0].startswith("epoch,step,")


class InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("algorithm, options", [
    ("maml", dict(data="digits", ways=3, meta_batch=2, learn_inner_lr=True, strategy="loop")),
    ("reptile", dict(data="sinusoid", meta_batch=2, inner_steps=2)),
])
def test_an_interrupted_run_resumes_bitwise(tmp_path, algorithm, options):
    config = MetaConfig(algorithm=algorithm, iterations=4, **options)
    run = dict(eval_tasks=0, log_every=2, quiet=True)
    meta_train(config, out=tmp_path / "full", **run)
    with pytest.raises(TrainingInterrupted, match="at step 3"):
        meta_train(config, out=tmp_path / "cut", callbacks=(InterruptAt(3),), **run)
    result = meta_train(config, out=tmp_path / "cut", resume=True, **run)
    assert result.metrics == {"iterations": 4} and [row["step"] for row in result.history] == [2, 4]
    assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_meta_and_plain_training_write_the_same_training_state(tmp_path, capsys):
    run_json(capsys, "meta-train", "maml", "--data", "sinusoid", "--iterations", "2", "--meta-batch", "2",
             "--eval-tasks", "0", "--out", str(tmp_path / "meta"), "--json")
    archlab.train("mlp", "iris", epochs=1, quiet=True, out=tmp_path / "plain")
    meta, plain = read_training_state(tmp_path / "meta"), read_training_state(tmp_path / "plain")
    assert set(meta) == set(plain) and meta["finished"] and meta["step"] == 2
    assert json.loads((tmp_path / "meta" / "metrics.json").read_text()) == {"metrics": {"iterations": 2},
                                                                            "details": {}}


BAD_INPUT = [
    (["--data", "digits", "--ways", "7"], "ways=7 is larger than the 6 meta-train classes"),
    (["--data", "digits", "--shots", "100", "--query", "100"], "shots + query = 100 + 100 = 200"),
    (["--data", "sinusoid", "--strategy", "vmap", "--model", "gru"], "strategy='vmap' cannot run this model"),
    (["--data", "sinusoid", "--model", "mlp", "--set", "hiden_dims=[3]"], "Valid keys:"),
    (["--data", "digits", "--ways", "5"], "ways=5 is larger than the 4 meta-test classes of dataset 'digits' "
                                          "([6, 7, 8, 9])"),
]


# (ANIL batches a recurrent body instead of vmapping it; protonet has no strategies)
@pytest.mark.parametrize("algorithm, argv, message", [
    (algorithm, argv, message) for algorithm in ("maml", "anil", "protonet") for argv, message in BAD_INPUT
    if algorithm == "maml" or "--strategy" not in argv])
def test_bad_input_exits_2(tmp_path, capsys, argv, message, algorithm):
    code = main(["meta-train", algorithm, *argv, "--iterations", "1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err


def test_protonet_digits_train_then_eval_at_other_ways(tmp_path, capsys):
    out = tmp_path / "run"
    payload = run_json(capsys, "meta-train", "protonet", "--data", "digits", "--ways", "3", "--iterations", "3",
                       "--eval-tasks", "4", "--out", str(out), "--json")
    assert set(payload["metrics"]) == {"test_accuracy", "test_accuracy_ci95", "test_loss", "iterations"}
    config = read_config(out)["meta"]
    assert (config["algorithm"], config["meta_batch"], config["query"]) == ("protonet", 1, 5)  # Snell's episodes
    model = load_model(out)
    assert model(torch.zeros(2, *model.input_shape)).shape == (2, 64)  # Conv-4's embedding, no classifier
    payload = run_json(capsys, "meta-eval", str(out), "--ways", "4", "--shots", "2", "--tasks", "5", "--json")
    assert 0 <= payload["metrics"]["test_accuracy"] <= 1  # any number of ways: there is no output layer
    assert main(["meta-eval", str(out), "--inner-steps", "1"]) == 2
    assert "prototypical network, which has no inner loop" in capsys.readouterr().err


def test_anil_digits_train_then_eval(tmp_path, capsys):
    out = tmp_path / "run"
    payload = run_json(capsys, "meta-train", "anil", "--data", "digits", "--ways", "3", "--iterations", "2",
                       "--meta-batch", "2", "--first-order", "--eval-tasks", "3", "--eval-steps", "1,2",
                       "--out", str(out), "--json")
    assert {"test_accuracy_step1", "test_accuracy_step2_ci95"} <= set(payload["metrics"])
    payload = run_json(capsys, "meta-eval", str(out), "--tasks", "3", "--inner-steps", "0,3", "--json")
    assert 0 <= payload["metrics"]["test_accuracy_step3"] <= 1
    assert main(["meta-eval", str(out), "--ways", "4", "--tasks", "2"]) == 2
    assert "3-way output layer; got --ways 4" in capsys.readouterr().err


def write_image_folder(root, classes: int = 10, per_class: int = 16):
    """A folder of 8x8 grayscale PNGs in ImageFolder's layout: a bar whose position is the class."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.rand(8, 8, generator=g) * 60
            pixels[c % 8, :] += 180 if c < 8 else 0
            pixels[:, c % 8] += 180 if c >= 8 else 0
            Image.fromarray(pixels.clamp(0, 255).to(torch.uint8).numpy()).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.mark.parametrize("algorithm", ["protonet", "anil"])
def test_a_users_image_folder_is_an_episode_source(tmp_path, capsys, algorithm):
    folder = write_image_folder(tmp_path / "images")
    out = tmp_path / "run"
    payload = run_json(capsys, "meta-train", algorithm, "--data", str(folder), "--ways", "2", "--query", "2",
                       "--iterations", "2", "--eval-tasks", "3", "--out", str(out), "--json")
    metric = "test_accuracy" if algorithm == "protonet" else "test_accuracy_step1"
    assert 0 <= payload["metrics"][metric] <= 1
    assert main(["meta-train", algorithm, "--data", str(folder), "--ways", "3", "--iterations", "1",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "ways=3 is larger than the 2 meta-test classes" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv, message", [
    (["--data", "sinusoid"], "protonet classifies; 'sinusoid' gives regression tasks"),
    (["--data", "digits", "--inner-steps", "2", "--first-order"], "leave out inner_steps, first_order"),
    (["--data", "digits", "--eval-steps", "1"], "protonet has no inner steps to score"),
])
def test_protonet_refuses_what_it_does_not_have(tmp_path, capsys, argv, message):
    code = main(["meta-train", "protonet", *argv, "--iterations", "1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
