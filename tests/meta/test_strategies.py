"""Loop, threads and vmap execute the same maths; `auto` picks vmap only where it may."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.errors import ConfigError
from archlab.data import TaskBatch
from archlab.meta import MAML, choose_strategy
from archlab.meta.batchnorm import BatchStatisticsNorm
from archlab.meta.functional import AdaptationError
from archlab.meta.parallel import run_in_threads
from archlab.meta.strategy import THREADS_MAX_WORK_CPU, VMAP_MAX_WORK_CPU

from .helpers import assert_unchanged, classification_tasks, grads_of, meta_gradient, snapshot, tiny_cnn, tiny_mlp


@pytest.fixture
def two_threads():
    """torch with two intra-op threads (CI machines have two cores), restored afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn-batchnorm"])
def test_loop_and_vmap_agree(make, first_order):
    model = make()
    tasks = classification_tasks(shape=(4,) if make is tiny_mlp else (1, 8, 8))
    maml = MAML(model, inner_lr=0.3, inner_steps=2, first_order=first_order)
    loop = meta_gradient(maml, tasks, "loop")
    vmap = meta_gradient(maml, tasks, "vmap")
    torch.testing.assert_close(vmap, loop, rtol=0, atol=1e-10)
    loss_loop, acc_loop = maml.meta_loss(tasks, strategy="loop")
    loss_vmap, acc_vmap = maml.meta_loss(tasks, strategy="vmap")
    torch.testing.assert_close(loss_vmap, loss_loop, rtol=0, atol=1e-12)
    torch.testing.assert_close(acc_vmap, acc_loop)


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn-batchnorm"])
def test_threads_and_loop_agree(make, first_order, two_threads):
    model = make()
    tasks = classification_tasks(n_tasks=5, shape=(4,) if make is tiny_mlp else (1, 8, 8))
    maml = MAML(model, inner_lr=0.3, inner_steps=2, first_order=first_order)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keeps the weights: compare gradients only
    got = {}
    for strategy in ("loop", "threads", "threads"):
        stats = maml.meta_step(tasks, optimizer, strategy=strategy)
        got.setdefault(strategy, []).append((grads_of(model), stats))
    (loop, loop_stats), = got["loop"]
    (first, first_stats), (second, _) = got["threads"]
    torch.testing.assert_close(first, loop, rtol=0, atol=1e-12)  # the same sums, added in another order
    assert first_stats["accuracy"] == loop_stats["accuracy"]
    assert first_stats["loss"] == pytest.approx(loop_stats["loss"], rel=1e-6)
    for name in first:  # a fixed assignment of tasks to workers: the same bits every time
        assert torch.equal(first[name], second[name])
    loss_loop, acc_loop = maml.meta_loss(tasks, strategy="loop")
    loss_threads, acc_threads = maml.meta_loss(tasks, strategy="threads")
    torch.testing.assert_close(loss_threads, loss_loop, rtol=0, atol=1e-12)
    torch.testing.assert_close(acc_threads, acc_loop)
    assert torch.get_num_threads() == 2


def test_threads_meta_loss_backward_matches_the_loop(two_threads):
    maml = MAML(tiny_cnn(), inner_lr=0.3, inner_steps=1)
    tasks = classification_tasks(n_tasks=4, shape=(1, 8, 8))
    torch.testing.assert_close(meta_gradient(maml, tasks, "threads"), meta_gradient(maml, tasks, "loop"),
                               rtol=0, atol=1e-12)


def test_a_failing_task_in_a_worker_leaves_the_model_unchanged(two_threads):
    model = tiny_mlp()
    tasks = classification_tasks(n_tasks=6)
    support_x = tasks.support_x.clone()
    support_x[3, 0, 0] = float("nan")  # task 3 runs on the second worker
    support_x[5, 0, 0] = float("nan")
    bad = TaskBatch(support_x, tasks.support_y, tasks.query_x, tasks.query_y)
    maml = MAML(model, inner_lr=0.3, inner_steps=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    before = snapshot(model)
    with pytest.raises(AdaptationError, match="inner step 1 of 1 on task 3"):
        maml.meta_step(bad, optimizer, strategy="threads")
    assert_unchanged(model, before)
    assert all(p.grad is None for p in model.parameters())
    assert torch.get_num_threads() == 2


def test_run_in_threads_spreads_tasks_and_reports_the_first_failure(two_threads):
    seen = run_in_threads(lambda w, indices: (w, list(indices), torch.get_num_threads()), 5, 2)
    assert seen == [(0, [0, 2, 4], 1), (1, [1, 3], 1)]  # one intra-op thread inside the workers
    assert torch.get_num_threads() == 2

    def work(w, indices):
        for i in indices:
            if i in (3, 4):
                raise ValueError(f"task {i}")
    with pytest.raises(ValueError, match="task 3"):
        run_in_threads(work, 6, 2)
    assert torch.get_num_threads() == 2


def test_loop_and_vmap_agree_for_meta_sgd():
    model = tiny_mlp()
    tasks = classification_tasks()
    maml = MAML(model, inner_lr=0.3, inner_steps=2, learn_inner_lr=True)
    got = {}
    for strategy in ("loop", "vmap", "threads"):
        maml.zero_grad(set_to_none=True)
        maml.meta_loss(tasks, strategy=strategy)[0].backward()
        got[strategy] = [p.grad.clone() for p in maml.parameters()]
    torch.testing.assert_close(got["vmap"], got["loop"], rtol=0, atol=1e-10)
    torch.testing.assert_close(got["threads"], got["loop"], rtol=0, atol=1e-12)


def test_batch_statistics_norm_matches_torch_batch_norm():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3, track_running_stats=False).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    with BatchStatisticsNorm():
        ours = bn(x)
    torch.testing.assert_close(ours, bn(x), rtol=0, atol=1e-12)


def test_auto_strategy(two_threads):
    cpu = torch.device("cpu")
    cnn = tiny_cnn()
    n_params = sum(p.numel() for p in cnn.parameters())
    assert choose_strategy(cnn, cpu, 10) == "vmap"
    assert choose_strategy(cnn, cpu, VMAP_MAX_WORK_CPU // n_params + 1) == "threads"
    assert choose_strategy(cnn, cpu, THREADS_MAX_WORK_CPU // n_params + 1) == "loop"
    assert choose_strategy(cnn, cpu, VMAP_MAX_WORK_CPU // n_params + 1, n_tasks=1) == "loop"
    paper = archlab.create_model("cnn", input_size=28, channels=[64] * 4, hidden_dims=[], num_classes=5,
                                 batch_norm=True, track_running_stats=False)
    assert choose_strategy(paper, cpu, 5 * (1 + 1)) == "threads"  # 5-way 1-shot, 1 query a class
    assert choose_strategy(paper, cpu, 5 * (1 + 15)) == "loop"  # 15 queries a class
    torch.set_num_threads(1)
    assert choose_strategy(paper, cpu, 5 * (1 + 1)) == "loop"  # one core: nothing to spread over
    torch.set_num_threads(2)
    assert choose_strategy(cnn, torch.device("cuda"), 1000) == "vmap"
    assert choose_strategy(cnn, cpu, 10, "loop") == "loop"
    assert choose_strategy(cnn, cpu, 10, "threads") == "threads"
    gru = archlab.create_model("gru", input_dim=3, num_classes=3, hidden_dim=4)
    assert choose_strategy(gru, cpu, 10) == "threads"  # no vmap for fused recurrent kernels
    assert choose_strategy(gru, torch.device("cuda"), 10) == "loop"
    with pytest.raises(ConfigError, match="GRU.*Use strategy='loop'"):
        choose_strategy(gru, cpu, 10, "vmap")
    with pytest.raises(ConfigError, match="'strategy'.*'threads'"):
        choose_strategy(gru, cpu, 10, "thread")


def test_threads_workers_run_the_cheap_second_order_batch_norm(two_threads, monkeypatch):
    """The batch-norm override is a thread-local function mode: each worker must enter it itself."""
    import threading

    from archlab.meta import second_order_batchnorm

    calls: dict[str, int] = {}
    original = second_order_batchnorm._BatchNorm.apply

    def counted(*args):
        name = threading.current_thread().name
        calls[name] = calls.get(name, 0) + 1
        return original(*args)

    monkeypatch.setattr(second_order_batchnorm._BatchNorm, "apply", counted)
    maml = MAML(tiny_cnn(), inner_lr=0.3, inner_steps=1)
    maml.meta_step(classification_tasks(n_tasks=4, shape=(1, 8, 8)), torch.optim.SGD(maml.parameters(), lr=0.0),
                   strategy="threads")
    assert len(calls) == 2 and all(n == 2 * 2 for n in calls.values())  # 2 tasks a worker, 2 batch norms a task


@pytest.mark.parametrize("learner", ["maml", "reptile"])
@pytest.mark.parametrize("data", ["digits", "sinusoid"])
def test_threaded_evaluation_scores_like_the_single_thread(learner, data, two_threads):
    from archlab.data import NWayKShot, Sinusoid
    from archlab.meta import Reptile

    torch.manual_seed(0)
    if data == "digits":
        sampler = NWayKShot("digits", 3, 1, 4, split="test")
        model = archlab.create_model("cnn", in_channels=1, num_classes=3, input_size=8, channels=[4], hidden_dims=[],
                                     batch_norm=True, track_running_stats=False)
        kind = "classification"
    else:
        sampler = Sinusoid(5, 5)
        model = archlab.create_model("mlp", in_features=1, num_classes=1, hidden_dims=[16])
        kind = "regression"
    if learner == "maml":
        threaded, single = MAML(model, 0.1, 1, kind=kind), MAML(model, 0.1, 1, kind=kind, strategy="loop")
    else:
        threaded = single = Reptile(model, inner_lr=0.01, inner_steps=2, kind=kind)
    n = 37  # two chunks of 32, spread unevenly over the workers
    got = threaded.evaluate(sampler, n, [0, 2])
    torch.set_num_threads(1)  # one worker: the plain loop over tasks
    want = single.evaluate(sampler, n, [0, 2])
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("inner_optimizer", ["sgd", "adam"])
def test_reptile_threads_and_loop_agree(inner_optimizer, two_threads):
    from archlab.meta import Reptile

    tasks = classification_tasks(n_tasks=5, shape=(1, 8, 8))
    results = {}
    for strategy in ("loop", "threads", "threads"):
        model = tiny_cnn()
        stats = Reptile(model, inner_lr=0.05, inner_steps=3, meta_step_size=0.5, inner_optimizer=inner_optimizer,
                        strategy=strategy).meta_step(tasks)
        results.setdefault(strategy, []).append((snapshot(model), stats))
    (loop, loop_stats), = results["loop"]
    (first, first_stats), (second, _) = results["threads"]
    torch.testing.assert_close(first, loop, rtol=0, atol=1e-12)  # the same mean, summed in another order
    assert first_stats == pytest.approx(loop_stats, rel=1e-12)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert torch.get_num_threads() == 2


def test_reptile_failing_task_in_a_worker_and_bad_strategy(two_threads):
    from archlab.meta import Reptile

    model = tiny_mlp()
    tasks = classification_tasks(n_tasks=4)
    support_x = tasks.support_x.clone()
    support_x[1, 0, 0] = float("nan")  # the second worker's first task
    before = snapshot(model)
    with pytest.raises(AdaptationError, match="on task 1"):
        Reptile(model, inner_lr=0.1, inner_steps=1, strategy="threads").meta_step(
            TaskBatch(support_x, tasks.support_y, tasks.query_x, tasks.query_y))
    assert_unchanged(model, before)
    with pytest.raises(ConfigError, match="'strategy' parameter of Reptile.*vmap is for MAML"):
        Reptile(model, strategy="vmap")


@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn-batchnorm"])
def test_meta_step_reports_the_float64_loss_under_every_strategy(make, two_threads):
    model = make()
    tasks = classification_tasks(n_tasks=5, shape=(4,) if make is tiny_mlp else (1, 8, 8))
    maml = MAML(model, inner_lr=0.3, inner_steps=2)
    exact = maml.meta_loss(tasks, strategy="loop")[0]
    assert exact.dtype == torch.float64
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keeps the weights: the same loss each time
    for strategy in ("loop", "threads"):
        assert maml.meta_step(tasks, optimizer, strategy=strategy)["loss"] == exact.item(), strategy
    assert maml.meta_step(tasks, optimizer, strategy="vmap")["loss"] == pytest.approx(exact.item(), rel=0, abs=1e-12)
