"""The command line of data-parallel training, precision and compilation: bad inputs get one
line and their exit code; ``--nproc N`` runs torch's elastic launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archlab.cli import main

REPO = Path(__file__).resolve().parents[2]
TINY = ["cnn", "--data", "digits", "--set", "channels=[4]", "--set", "hidden_dims=[]", "--batch-size", "30",
        "--device", "cpu", "--quiet"]


def test_16_mixed_on_cpu_exits_2_pointing_to_bf16(tmp_path, capsys):
    assert main(["train", *TINY, "--steps", "1", "--precision", "16-mixed", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("archlab: error:") == 1 and "--precision bf16" in err


def test_nccl_without_a_gpu_exits_2(tmp_path, capsys):
    assert main(["train", *TINY, "--steps", "1", "--backend", "nccl", "--out", str(tmp_path / "r")]) == 2
    assert "--backend nccl needs CUDA GPUs" in capsys.readouterr().err


def test_resuming_with_other_data_or_model_exits_2(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "mlp", "--data", "iris", "--steps", "2", "--quiet", "--out", out]) == 0
    assert main(["train", "mlp", "--data", "wine", "--steps", "4", "--quiet", "--out", out, "--resume"]) == 2
    assert "was trained on the data 'iris'; this run reads 'wine'" in capsys.readouterr().err
    assert main(["train", "gru", "--data", "iris", "--steps", "4", "--quiet", "--out", out, "--resume"]) == 2
    assert "holds a mlp; this run asks for gru" in capsys.readouterr().err


def test_nproc_above_the_cpus_warns_and_an_error_of_every_rank_prints_once(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    code = main(["train", *TINY, "--steps", "1", "--precision", "16-mixed", "--nproc", "2",
                 "--out", str(tmp_path / "r")])
    err = capfd.readouterr().err
    assert code == 2
    assert "--nproc 2 is more than the 1 CPUs" in err
    assert err.count("archlab: error:") == 1 and "--precision bf16" in err


@pytest.mark.slow
def test_ctrl_c_to_a_two_process_run_saves_its_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen([sys.executable, "-m", "archlab", "train", *TINY, "--steps", "100000", "--nproc", "2",
                            "--eval-every", "100000", "--checkpoint-every", "20", "--out", str(out)], env=env,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (out / "config.json").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the first periodic checkpoint (step 20) says the ranks are stepping
    run.send_signal(signal.SIGINT)  # to the launcher, which forwards it to both ranks
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.count("training interrupted at step") == 1, err
    step = int(err.split("training interrupted at step ")[1].split(";")[0])
    assert json.loads((out / "config.json").read_text())["step"] == step > 20
    assert not list(tmp_path.glob(".run.*"))  # no half-written folder left beside it
