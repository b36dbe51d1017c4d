"""Data-parallel training: shards, and 2 gloo processes against 1 (same global batch and seed).

The equivalence runs the two ranks with `torch.multiprocessing.spawn` in torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...), each family after the other in one process group,
and compares rank 0's final checkpoint with a one-process run's, tensor by tensor: to 1e-5 in
float32, and to 1e-10 for the cases also run in float64 (``precision="64"``), which shows that
what separates them in float32 is the order of the sums' rounding, not a different computation.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from archlab.data.fewshot import TaskBatch
from archlab.engine.distributed import Shard, World, shard_batch

from ..conftest import SHARED_DATA

STEPS = 20


def test_shards_are_disjoint_contiguous_and_cover_the_batch():
    batch = {"x": torch.arange(11).view(11, 1).float(), "y": torch.arange(11), "note": "kept"}
    shards = [shard_batch(batch, World(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([s.batch["y"] for s in shards]), batch["y"])
    assert [s.count for s in shards] == [3, 4, 4] and all(s.total == 11 for s in shards)
    assert all(s.batch["note"] == "kept" for s in shards)
    # the weighted mean over ranks of the shards' means is the batch's mean
    means = [s.batch["x"].mean() * s.weight(3) for s in shards]
    torch.testing.assert_close(sum(means) / 3, batch["x"].mean())


def test_a_rank_without_examples_holds_a_stand_in_weighted_zero():
    shard = shard_batch({"x": torch.ones(1, 2)}, World(0, 2))  # rank 1 holds the one example
    assert shard.count == 0 and len(shard.batch["x"]) == 1 and shard.weight(2) == 0


def test_task_batches_split_by_tasks_and_graphs_replicate():
    tasks = TaskBatch(torch.randn(5, 2, 3), torch.zeros(5, 2), torch.randn(5, 4, 3), torch.zeros(5, 4))
    shard = shard_batch({"tasks": tasks, "index": 7}, World(1, 2))
    assert len(shard.batch["tasks"]) == 3 and shard.batch["index"] == 7
    assert (shard.batch["task_count"], shard.batch["total_tasks"]) == (3, 5)
    graph = {"x": torch.randn(4, 2), "edge_index": torch.zeros(2, 6, dtype=torch.long)}
    replicated = shard_batch(graph, World(1, 2), replicated=True)
    assert replicated.batch is graph and replicated.weight(2) == 1
    assert shard_batch(graph, World()) == Shard(graph, 1, 1)


# ---- 2 processes against 1 ----------------------------------------------------------------

def cases(root: Path) -> dict[str, dict]:
    """Tiny models of each family, 20 steps each (dropout off: each rank draws its own masks)."""
    common = {"steps": STEPS, "seed": 3, "quiet": True, "eval_every": STEPS, "device": "cpu"}
    found = {
        "cnn": dict(model="cnn", data="digits", batch_size=30, model_kwargs={"channels": [4], "hidden_dims": [],
                                                                             "dropout": 0.0}, **common),
        "gru": dict(model="gru", data="digits-seq", batch_size=24, model_kwargs={"hidden_dim": 8}, **common),
        "gpt": dict(model="gpt", data="arithmetic", batch_size=6, model_kwargs={
            "num_layers": 1, "num_heads": 2, "embed_dim": 16, "context_length": 16},
            task_options={"eval_batches": 2}, **common),
        # binarization and reparameterization noise drawn for the global batch (`shard_rows`)
        "vae": dict(model="vae", data="digits", batch_size=30, model_kwargs={"latent_dim": 4, "hidden_dims": [16]},
                    **common),
    }
    if (root / "images").is_dir():
        # a streamed image folder: each rank decodes its own files, with the whole batch's crops and flips
        found["cnn-streamed"] = dict(model="cnn", data=str(root / "images"), batch_size=30,
                                     data_options={"memory_budget": "1KB", "num_workers": 0, "augment": True},
                                     model_kwargs={"channels": [4], "hidden_dims": [], "dropout": 0.0}, **common)
    if (SHARED_DATA / "planetoid" / "ind.cora.graph").is_file():
        # a replicated full graph: dropout draws the same mask on every rank, as in one process
        found["gcn"] = dict(model="gcn", data="cora", data_dir=str(SHARED_DATA), model_kwargs={"hidden_dim": 8},
                            **common)
    return found


MAML = dict(algorithm="maml", data="digits", ways=3, shots=1, query=2, meta_batch=6, iterations=STEPS,
            model="cnn", model_kwargs={"channels": [4], "hidden_dims": [], "dropout": 0.0, "batch_norm": False},
            seed=5)


REPTILE = {**MAML, "algorithm": "reptile", "meta_batch": 5, "inner_steps": 2}
META = {"maml": MAML, "reptile": REPTILE}

#: the suffix of a case run in float64, and the cases that are (a few, for CI time)
FLOAT64 = "-float64"
IN_FLOAT64 = ("cnn", "gru", "gpt", "gcn", "vae", "maml")


def case_names(root: Path) -> list[str]:
    found = [*cases(root), *META]
    return found + [name + FLOAT64 for name in IN_FLOAT64 if name in found]


def run_case(name: str, root: Path, out: Path) -> None:
    from archlab import jobs

    precision = {"precision": "64"} if name.endswith(FLOAT64) else {}
    name = name.removesuffix(FLOAT64)
    if name in META:
        jobs.meta_train(jobs.MetaConfig(**META[name]), out=out, device="cpu", eval_tasks=4,
                        checkpoint_every=STEPS, log_every=STEPS, quiet=True, **precision)
        return
    spec = dict(cases(root)[name])
    jobs.train(spec.pop("model"), spec.pop("data"), out=out, **spec, **precision)


def _rank_main(rank: int, port: int, root: str) -> None:
    import time

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    for name in case_names(Path(root)):
        started = time.perf_counter()
        run_case(name, Path(root), Path(root) / f"{name}-2")
        if rank == 0:
            print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
    interrupted_run(rank, Path(root))
    stopped_run(rank, Path(root))
    nan_run(rank, Path(root))


class At:
    """Callback: `action` after step `step`."""

    def __init__(self, step, action):
        self.step, self.action = step, action

    def on_step_end(self, state):
        if state.step == self.step:
            self.action()


INTERRUPTED = dict(model_kwargs={"channels": [4], "hidden_dims": [], "dropout": 0.0}, steps=30, batch_size=30,
                   seed=4, quiet=True, device="cpu")


def stopped_run(rank: int, root: Path) -> None:
    """A callback on rank 1 only stops the run after step 5 (as a time limit would): every rank stops
    after step 6, the step whose all-reduce carries the request."""
    from archlab import jobs

    class StopAt5OnRank1:
        def on_step_end(self, state):
            if state.step == 5 and rank == 1:
                state.stopped = "enough"

        def on_fit_end(self, state):
            self.step = state.step

    callback = StopAt5OnRank1()
    result = jobs.train("cnn", "digits", callbacks=(callback,), **INTERRUPTED)
    (root / f"stopped-{rank}").write_text(f"{callback.step} {result.stopped}")


def nan_run(rank: int, root: Path) -> None:
    """Rank 1's loss turns NaN at step 3 (after a checkpoint at step 2): every rank must stop there."""
    import torch.nn.functional as F

    from archlab.data import load_dataset
    from archlab.engine import ClassificationTask, TrainConfig, fit
    from archlab.errors import NonFiniteLossError
    from archlab.models.registry import create_model

    class NaNOnRank1(ClassificationTask):
        calls = 0

        def training_step(self, model, batch):
            self.calls += 1
            loss = F.cross_entropy(self.forward(model, batch), batch["y"])
            return loss * float("nan") if rank == 1 and self.calls == 3 else loss

    model = create_model("cnn", in_channels=1, num_classes=10, input_size=[8, 8], channels=[4], hidden_dims=[])
    config = TrainConfig(steps=10, batch_size=30, checkpoint_every=2, quiet=True, device="cpu")
    try:
        fit(model, NaNOnRank1(10), load_dataset("digits"), config, out=root / "nan")
    except NonFiniteLossError as err:
        (root / f"nan-{rank}").write_text(f"{err.step} {str(err)}")


def interrupted_run(rank: int, root: Path) -> None:
    """Ctrl-C reaches rank 0 only, after step 13: both ranks hear of it in step 14's all-reduce and stop
    after step 14, rank 0 saves. Then the same run uninterrupted, for the test to compare with a
    1-process resume."""
    from archlab import jobs
    from archlab.errors import TrainingInterrupted

    def interrupt():
        if rank == 0:
            os.kill(os.getpid(), signal.SIGINT)

    try:
        jobs.train("cnn", "digits", out=root / "cut", callbacks=(At(13, interrupt),), **INTERRUPTED)
    except TrainingInterrupted as err:
        (root / f"interrupted-{rank}").write_text(str(err.step))
    jobs.train("cnn", "digits", out=root / "whole", **INTERRUPTED)


def write_images(folder: Path, count: int = 150) -> None:
    """scikit-learn's first digits as PNGs, a subfolder a class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:count], digits.target[:count])):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).astype("uint8")).save(folder / str(label) / f"{i}.png")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    write_images(root / "images")
    torch.multiprocessing.spawn(_rank_main, args=(free_port(), str(root)), nprocs=2, join=True)
    return root


@pytest.mark.parametrize("name", ["cnn", "cnn-streamed", "gru", "gpt", "gcn", "vae", "maml", "reptile",
                                  *(name + FLOAT64 for name in IN_FLOAT64)])
def test_two_processes_end_with_the_weights_of_one(name, two_process_runs, tmp_path, single_thread):
    root = two_process_runs
    if name not in case_names(root):
        pytest.skip("the Planetoid Cora files are not in ../shared/data/planetoid")
    run_case(name, root, tmp_path / name)
    one, two = load_file(tmp_path / name / "model.safetensors"), load_file(root / f"{name}-2" / "model.safetensors")
    assert one.keys() == two.keys()
    dtype, atol = (torch.float64, 1e-10) if name.endswith(FLOAT64) else (torch.float32, 1e-5)
    for key in one:
        assert not one[key].is_floating_point() or one[key].dtype == two[key].dtype == dtype, f"{name}: {key}"
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=atol, msg=f"{name}: {key}")
    assert not (one[next(iter(one))] == 0).all()


def test_ctrl_c_stops_every_rank_at_one_step_and_a_one_process_resume_ends_as_two(two_process_runs):
    root = two_process_runs
    from archlab import jobs

    # asked for after step 13 on rank 0, agreed in step 14's all-reduce (which runs during its backward)
    assert (root / "interrupted-0").read_text() == (root / "interrupted-1").read_text() == "14"
    config = json.loads((root / "cut" / "config.json").read_text())
    assert (config["step"], config["revision"]) == (14, 1)  # one checkpoint, at the interrupt
    result = jobs.train("cnn", "digits", out=root / "cut", resume=True, **INTERRUPTED)
    assert result.history[-1]["step"] == INTERRUPTED["steps"]
    one, two = load_file(root / "cut" / "model.safetensors"), load_file(root / "whole" / "model.safetensors")
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=1e-5, msg=key)


def test_a_stop_asked_for_on_one_rank_stops_every_rank_after_the_same_step(two_process_runs):
    root = two_process_runs
    assert (root / "stopped-0").read_text() == "6 stopped on another rank"
    assert (root / "stopped-1").read_text() == "6 enough"


def test_a_nan_loss_on_one_rank_stops_every_rank_at_that_step_keeping_the_last_checkpoint(two_process_runs):
    root = two_process_runs
    steps = [(root / f"nan-{rank}").read_text().split()[0] for rank in (0, 1)]
    assert steps == ["3", "3"]
    assert "the last good checkpoint is kept at" in (root / "nan-0").read_text()
    assert json.loads((root / "nan" / "config.json").read_text())["step"] == 2
