"""Fault injection on checkpoint folders: a run into an existing checkpoint, two writers at
once, SIGKILL at every point of a write, a full disk, a flipped bit, a tampered config.json
and a pickle that would run code."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

import archlab
from archlab.cli import main
from archlab.engine.checkpoint import read_config, read_training_state, read_weights, save_checkpoint
from archlab.models.registry import load_model
from archlab.errors import CheckpointError, ConfigError, DiskFullError, NonFiniteLossError
from archlab.models.bert import read_hf_state

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
IRIS = dict(epochs=1, quiet=True, model_kwargs={"hidden_dims": [8]})


def small_model(seed=0, hidden=4):
    torch.manual_seed(seed)
    return archlab.create_model("mlp", in_features=3, num_classes=2, hidden_dims=[hidden])


def save_at(path, model, step, **kwargs):
    return save_checkpoint(path, model, meta={"model": model.archlab_config}, training_state={"step": step}, **kwargs)


def contents(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()}


def leftovers(parent):
    return sorted(p.name for p in Path(parent).iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def one_line(err):
    text = str(err.value)
    assert "\n" not in text, text
    return text


# ---- item 1: a new run never replaces a checkpoint silently -----------------------------


def test_a_new_run_refuses_to_replace_a_checkpoint(tmp_path):
    ck = tmp_path / "ck"
    archlab.train("mlp", "iris", out=ck, **IRIS)
    before = contents(ck)
    with pytest.raises(ConfigError) as err:
        archlab.train("cnn", "digits", out=ck, epochs=1, quiet=True)
    message = one_line(err)
    assert str(ck) in message and "(model mlp, step 4)" in message
    assert "--resume" in message and "--out" in message and "--overwrite" in message
    assert contents(ck) == before
    archlab.train("mlp", "iris", out=ck, overwrite=True, seed=3, **IRIS)
    assert read_config(ck)["train"]["seed"] == 3


def test_the_cli_refuses_with_one_line_and_exit_2_unless_overwrite(tmp_path, capsys):
    argv = ["train", "mlp", "--data", "iris", "--epochs", "1", "--quiet", "--out", str(tmp_path / "ck")]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds a checkpoint" in err and "--overwrite" in err
    assert main([*argv, "--overwrite"]) == 0


# ---- item 2: one writer at a time -------------------------------------------------------

HOLD_AT_STEP_ONE = textwrap.dedent("""
    import sys
    import archlab

    class Hold:
        def on_step_end(self, state):
            if state.step == 1:
                print("training", flush=True)
                sys.stdin.readline()

    archlab.train("mlp", "iris", out=sys.argv[1], epochs=1, quiet=True, callbacks=(Hold(),))
""")

TRY_LOCK = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)")


def lock_is_free(out):
    """Whether another process can take the folder's lock now (a bare flock, no archlab)."""
    out = Path(out)
    lock = out.with_name(f".{out.name}.lock")
    free = subprocess.run([sys.executable, "-c", TRY_LOCK, str(lock)], capture_output=True).returncode == 0
    if free and lock.stat().st_size == 0:
        lock.unlink()  # created by the probe itself
    return free


def test_a_second_run_on_the_same_out_fails_at_once_naming_the_holder(tmp_path):
    ck = tmp_path / "ck"
    first = subprocess.Popen([sys.executable, "-c", HOLD_AT_STEP_ONE, str(ck)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert first.stdout.readline().strip() == "training"
        started = time.perf_counter()
        with pytest.raises(ConfigError) as err:
            archlab.train("mlp", "iris", out=ck, overwrite=True, **IRIS)
        assert time.perf_counter() - started < 10  # loading iris and building the model included
        message = one_line(err)
        assert f"in use by another archlab run (PID {first.pid}" in message and "--out" in message
        first.stdin.close()
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    assert read_training_state(ck)["step"] == 4  # the first run's work is whole
    assert lock_is_free(ck)


class Raise:
    def __init__(self, error, out):
        self.error, self.out = error, out

    def on_step_end(self, state):
        assert not lock_is_free(self.out)  # held while training
        raise self.error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit("killed"), RuntimeError("boom")])
def test_the_lock_is_released_on_every_exit_path(tmp_path, error):
    ck = tmp_path / "ck"
    with pytest.raises(type(error)):
        archlab.train("mlp", "iris", out=ck, callbacks=(Raise(error, ck),), **IRIS)
    assert lock_is_free(ck) and not (tmp_path / ".ck.lock").exists()
    archlab.train("mlp", "iris", out=ck, **IRIS)
    assert lock_is_free(ck)


def test_the_lock_is_released_after_a_nan_loss(tmp_path):
    class NaN:
        def on_step_end(self, state):
            raise NonFiniteLossError(state.step, float("nan"))

    with pytest.raises(NonFiniteLossError):
        archlab.train("mlp", "iris", out=tmp_path / "ck", callbacks=(NaN(),), **IRIS)
    assert lock_is_free(tmp_path / "ck")


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".ck.lock").write_text(f"{dead.pid}\n")
    archlab.train("mlp", "iris", out=tmp_path / "ck", **IRIS)
    assert read_training_state(tmp_path / "ck")["step"] == 4 and not (tmp_path / ".ck.lock").exists()


# ---- item 3: SIGKILL anywhere in a write; recovery by revision and step ----------------

# Every file-system step a checkpoint write takes.
STEPS = [(os, "mkdir"), (os, "rename"), (os, "fsync"), (os, "chmod"), (shutil, "rmtree"), (shutil, "copy2"),
         (torch, "save"), (Path, "write_bytes"), (Path, "write_text")]


def write_killed_at(k, folder, model, step):
    """Fork a writer that SIGKILLs itself at its k-th step boundary (before or after a step);
    True when it was killed, False when it finished first."""
    pid = os.fork()
    if pid == 0:
        try:
            import builtins

            import archlab.engine.checkpoint as checkpoint

            count = [0]

            def boundary():
                if count[0] == k:
                    os.kill(os.getpid(), signal.SIGKILL)
                count[0] += 1

            def traced(function):
                def run(*args, **kwargs):
                    boundary()
                    out = function(*args, **kwargs)
                    boundary()
                    return out
                return run

            for owner, name in STEPS:
                setattr(owner, name, traced(getattr(owner, name)))
            checkpoint.save_file = traced(checkpoint.save_file)
            real_open = builtins.open
            builtins.open = lambda file, mode="r", *a, **kw: (traced(real_open) if "w" in mode else real_open)(
                file, mode, *a, **kw)
            save_at(folder, model, step, metrics={"step": step}, extra_files={"notes.txt": "x"})
        except BaseException:
            os._exit(1)
        os._exit(0)
    deadline = time.monotonic() + 120
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"writer stuck at step {k}")
        time.sleep(0.01)
    status = done[1]
    assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, f"writer failed at step {k}"
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_at_every_step_of_a_write_leaves_the_old_or_the_new_checkpoint(tmp_path):
    old, new = small_model(0), small_model(1)
    expected = {1: old.state_dict(), 2: new.state_dict()}
    seen = set()
    k = 0
    while True:
        ck = tmp_path / f"k{k}" / "ck"
        save_at(ck, old, 1)
        killed = write_killed_at(k, ck, new, 2)
        step = read_config(ck)["step"]
        assert read_training_state(ck)["step"] == step
        seen.add(step)
        weights = load_model(ck).state_dict()
        assert all(torch.equal(weights[n], expected[step][n]) for n in weights), (k, step)
        assert leftovers(ck.parent) == [], k
        save_at(ck, new, 3)  # the next writer takes over a lock left by the killed one
        assert read_training_state(ck)["step"] == 3 and leftovers(ck.parent) == []
        if not killed:
            break
        k += 1
    assert k > 40 and seen == {1, 2}


@pytest.mark.parametrize("legacy", [False, True], ids=["recorded", "training_state"])
def test_a_crash_between_the_renames_restores_the_newest_not_a_stale_leftover(tmp_path, legacy):
    ck = tmp_path / "ck"
    save_at(ck, small_model(0), 107)
    shutil.copytree(ck, tmp_path / "stale")
    save_at(ck, small_model(1), 244)
    if legacy:  # as written before config.json recorded the revision, the step and the digests
        for folder in (ck, tmp_path / "stale"):
            config = json.loads((folder / "config.json").read_text())
            for key in ("revision", "step", "sha256"):
                del config[key]
            (folder / "config.json").write_text(json.dumps(config))
    os.rename(tmp_path / "stale", tmp_path / ".ck.old-111")  # left by an earlier crash; sorts first
    os.rename(ck, tmp_path / ".ck.old-222")  # the latest crash, between the two renames
    assert read_training_state(ck)["step"] == 244
    assert leftovers(tmp_path) == []


def test_a_reader_leaves_a_live_writers_folders_alone(tmp_path):
    ck = tmp_path / "ck"
    save_at(ck, small_model(0), 5)
    os.rename(ck, tmp_path / ".ck.old-7")
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from archlab.engine.run_lock import hold_run_dir\n"
                               "with hold_run_dir(sys.argv[1]):\n    print('held', flush=True); sys.stdin.readline()",
                               str(ck)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FileNotFoundError):  # after waiting for the writer's second rename
            read_config(ck)
        assert leftovers(tmp_path) == [".ck.old-7"]
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
    assert read_training_state(ck)["step"] == 5 and leftovers(tmp_path) == []


def test_a_finished_temporary_folder_is_rolled_forward(tmp_path):
    ck = tmp_path / "ck"
    save_at(ck, small_model(0), 5)
    shutil.copytree(ck, tmp_path / "new")
    save_at(tmp_path / "new", small_model(1), 6)
    os.rename(ck, tmp_path / ".ck.old-7")
    os.rename(tmp_path / "new", tmp_path / ".ck.tmp-abc")
    assert read_training_state(ck)["step"] == 6 and leftovers(tmp_path) == []


def test_an_unfinished_temporary_folder_is_never_restored(tmp_path):
    ck = tmp_path / "ck"
    save_at(ck, small_model(0), 5)
    shutil.copytree(ck, tmp_path / ".ck.tmp-abc")
    save_at(tmp_path / "x", small_model(1), 9)
    shutil.copy(tmp_path / "x" / "config.json", tmp_path / ".ck.tmp-abc" / "config.json")  # digests differ
    os.rename(ck, tmp_path / ".ck.old-7")
    assert read_training_state(ck)["step"] == 5 and leftovers(tmp_path) == []


# ---- item 4: a full disk -----------------------------------------------------------------

Usage = namedtuple("Usage", "total used free")


def free_space(monkeypatch, free):
    monkeypatch.setattr("archlab.engine.checkpoint.shutil.disk_usage", lambda path: Usage(10**12, 0, free))


def test_a_save_that_does_not_fit_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    save_at(ck, small_model(0), 1)
    before = contents(ck)
    free_space(monkeypatch, 1000)
    with pytest.raises(DiskFullError) as err:
        save_at(ck, small_model(1), 2)
    message = one_line(err)
    assert "not enough free space" in message and "1.0 KB are free" in message
    assert "previous checkpoint is kept" in message
    assert contents(ck) == before and leftovers(tmp_path) == []


def test_a_run_checks_free_space_before_training(tmp_path, monkeypatch):
    free_space(monkeypatch, 50_000)

    class Count:
        steps = 0

        def on_step_end(self, state):
            Count.steps += 1

    with pytest.raises(DiskFullError, match="not enough free space for the checkpoint"):
        archlab.train("cnn", "digits", out=tmp_path / "ck", epochs=1, quiet=True, callbacks=(Count(),))
    assert Count.steps == 0 and not (tmp_path / "ck").exists()


@pytest.mark.parametrize("target, error", [
    ("archlab.engine.checkpoint.save_file",
     SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")),
    ("torch.save", RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")),
    ("pathlib.Path.write_bytes", OSError(errno.ENOSPC, "No space left on device")),
], ids=["safetensors", "torch", "oserror"])
def test_running_out_of_space_while_writing_is_one_line(tmp_path, monkeypatch, target, error):
    ck = tmp_path / "ck"
    save_at(ck, small_model(0), 1, metrics={"v": 1})
    before = contents(ck)
    calls = []

    def usage(path):  # plenty before the write; none once it has filled the disk
        calls.append(path)
        return Usage(10**12, 0, 10**9 if len(calls) == 1 else 0)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("archlab.engine.checkpoint.shutil.disk_usage", usage)
    monkeypatch.setattr(target, fail)
    with pytest.raises(DiskFullError) as err:
        save_at(ck, small_model(1), 2, metrics={"v": 2})
    assert "disk filled up while saving" in one_line(err) and "previous checkpoint is kept" in str(err.value)
    assert contents(ck) == before and leftovers(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs, where the test may mount one (root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root on Linux; the disk_usage tests cover the logic")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk, leave):
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_a_real_full_disk_keeps_the_previous_checkpoint(tiny_disk):
    ck = tiny_disk / "ck"
    save_at(ck, small_model(0), 1)
    before = contents(ck)
    fill(tiny_disk, 100_000)
    big = archlab.create_model("mlp", in_features=3, num_classes=2, hidden_dims=[20_000])  # 560 KB of weights
    with pytest.raises(DiskFullError, match="not enough free space"):
        save_at(ck, big, 2)
    assert contents(ck) == before and leftovers(tiny_disk) == []
    load_model(ck)


@pytest.mark.parametrize("file", ["model.safetensors", "training_state.pt"])
def test_a_real_write_that_hits_enospc_is_one_line(tiny_disk, monkeypatch, file):
    ck = tiny_disk / "ck"
    save_at(ck, small_model(0), 1)
    before = contents(ck)
    fill(tiny_disk, 60_000)
    real = shutil.disk_usage
    calls = []

    def usage(path):  # the check before writing is fooled; the write meets the real disk
        calls.append(path)
        return Usage(10**12, 0, 10**9) if len(calls) == 1 else real(path)

    monkeypatch.setattr("archlab.engine.checkpoint.shutil.disk_usage", usage)
    model = small_model(1, hidden=20_000) if file == "model.safetensors" else small_model(1)
    state = {"step": 2, "blob": torch.zeros(40_000)}  # 160 KB: only the torch.save file overflows
    with pytest.raises(DiskFullError) as err:
        save_checkpoint(ck, model, meta={"model": model.archlab_config}, training_state=state)
    assert "disk filled up" in one_line(err)
    assert contents(ck) == before and leftovers(tiny_disk) == []


# ---- item 9: a flipped bit ---------------------------------------------------------------


def flip_last_bit(file):
    data = bytearray(file.read_bytes())
    data[-1] ^= 1  # inside the last tensor: the file still parses
    file.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_weights_is_caught(tmp_path):
    model = small_model()
    ck = save_at(tmp_path / "ck", model, 1, best_state=model.state_dict())
    flip_last_bit(ck / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_model(ck)
    message = one_line(err)
    assert "model.safetensors does not match the SHA-256" in message and "expected" in message and "got" in message
    load_model(ck, verify=False)
    flip_last_bit(ck / "best_model.safetensors")
    with pytest.raises(CheckpointError, match="best_model.safetensors does not match"):
        read_weights(ck, "best_model.safetensors")
    assert read_weights(ck, "best_model.safetensors", verify=False).keys() == load_file(ck / "model.safetensors").keys()


def test_a_resume_from_a_damaged_checkpoint_is_refused(tmp_path):
    ck = tmp_path / "ck"
    archlab.train("mlp", "iris", out=ck, **IRIS)
    flip_last_bit(ck / "model.safetensors")
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        archlab.train("mlp", "iris", out=ck, resume=True, **{**IRIS, "epochs": 2})


def test_a_checkpoint_without_recorded_digests_still_loads(tmp_path):
    ck = save_at(tmp_path / "ck", small_model(), 1)
    config = json.loads((ck / "config.json").read_text())
    del config["sha256"]
    (ck / "config.json").write_text(json.dumps(config))
    flip_last_bit(ck / "model.safetensors")
    load_model(ck)


# ---- item 10: a tampered config.json ----------------------------------------------------


def tamper(folder, **kwargs):
    config = json.loads((folder / "config.json").read_text())
    config["model"]["kwargs"].update(kwargs)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("kwargs, limit", [
    ({"num_layers": 10**6}, "ARCHLAB_MAX_MODULES"),
    ({"embed_dim": 10**9}, "ARCHLAB_MAX_PARAMETERS"),
    ({"context_length": 10**12}, "ARCHLAB_MAX_PARAMETERS"),
])
def test_a_tampered_config_is_refused_before_it_is_built(tmp_path, kwargs, limit):
    model = archlab.create_model("gpt", vocab_size=11, num_layers=1, embed_dim=16, num_heads=2, context_length=8)
    ck = save_at(tmp_path / "ck", model, 1)
    tamper(ck, **kwargs)
    started = time.perf_counter()
    with pytest.raises(CheckpointError) as err:
        load_model(ck)
    assert time.perf_counter() - started < 10
    message = one_line(err)
    name, value = next(iter(kwargs.items()))
    assert "config.json describes a 'gpt' model of more than" in message and f"{name}={value}" in message
    assert limit in message


def test_a_long_list_setting_is_refused_too(tmp_path):
    ck = save_at(tmp_path / "ck", small_model(), 1)
    tamper(ck, hidden_dims=[8] * 10**6)
    with pytest.raises(CheckpointError, match="hidden_dims of 1000000 entries.*ARCHLAB_MAX_MODULES"):
        load_model(ck)


def test_the_parameter_limit_is_read_from_the_environment(tmp_path, monkeypatch):
    ck = save_at(tmp_path / "ck", small_model(), 1)
    monkeypatch.setenv("ARCHLAB_MAX_PARAMETERS", "10")
    with pytest.raises(CheckpointError, match="more than 1[0-9] parameters.*above the limit of 10;"):
        load_model(ck)
    monkeypatch.setenv("ARCHLAB_MAX_PARAMETERS", "1e6")
    load_model(ck)
    monkeypatch.setenv("ARCHLAB_MAX_PARAMETERS", "lots")
    with pytest.raises(ConfigError, match="ARCHLAB_MAX_PARAMETERS must be a number >= 1. Got 'lots' instead."):
        load_model(ck)


# ---- item 11: a pickle that would run code ----------------------------------------------


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.filterwarnings("error")
def test_a_malicious_pytorch_model_bin_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    folder = tmp_path / "hf"
    folder.mkdir()
    with open(tmp_path / "plain.bin", "wb") as f:
        pickle.dump({"embeddings.word_embeddings.weight": RunsCode(marker)}, f)
    torch.save({"bert.pooler.dense.weight": RunsCode(marker)}, tmp_path / "zipped.bin")
    for file in (tmp_path / "plain.bin", tmp_path / "zipped.bin"):
        shutil.copy(file, folder / "pytorch_model.bin")
        with pytest.raises(CheckpointError) as err:
            read_hf_state(folder)
        message = one_line(err)
        assert str(folder / "pytorch_model.bin") in message and "refused" in message
        assert "weights_only" not in message and err.value.__cause__ is None
    assert not marker.exists()


def test_a_malicious_training_state_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    ck = save_at(tmp_path / "ck", small_model(), 1)
    torch.save({"step": RunsCode(marker)}, ck / "training_state.pt")
    with pytest.raises(CheckpointError) as err:
        read_training_state(ck, verify=False)
    assert "training_state.pt was refused" in one_line(err) and "weights_only" not in str(err.value)
    assert not marker.exists()


def test_no_verify_on_the_command_line_reads_a_bit_flipped_checkpoint(tmp_path, capsys):
    from archlab.cli import main

    out = tmp_path / "run"
    assert main(["train", "mlp", "--data", "iris", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 1
    assert "SHA-256" in capsys.readouterr().err
    assert main(["evaluate", str(out), "--json", "--no-verify"]) == 0
