"""Prototypical networks: prototypes are mean embeddings, logits are negative squared distances,
meta-training lowers the query loss, evaluation scores the same tasks as MAML's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import archlab
from archlab.data import NWayKShot, Sinusoid, TaskBatch
from archlab.errors import ConfigError
from archlab.meta import ProtoNet, class_prototypes, squared_euclidean


def test_prototype_is_the_mean_embedding_of_each_class():
    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(7, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([2, 0, 1, 2, 0, 2, 1])
    prototypes = class_prototypes(embeddings, labels, 3)
    for k in range(3):
        torch.testing.assert_close(prototypes[k], embeddings[labels == k].mean(0), rtol=0, atol=1e-15)


def test_prototypes_refuse_a_class_without_support_and_labels_out_of_range():
    with pytest.raises(ValueError, match=r"each of the 3 classes; classes \[1\] have none"):
        class_prototypes(torch.zeros(2, 4), torch.tensor([0, 2]), 3)
    with pytest.raises(ValueError, match=r"labels in 0..1; got labels from 0 to 2"):
        class_prototypes(torch.zeros(2, 4), torch.tensor([0, 2]), 2)


def test_squared_euclidean_distance():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, 4, generator=g, dtype=torch.float64)
    b = torch.randn(3, 4, generator=g, dtype=torch.float64)
    d = squared_euclidean(a, b)
    expected = torch.tensor([[((x - y) ** 2).sum().item() for y in b] for x in a], dtype=torch.float64)
    torch.testing.assert_close(d, expected, rtol=0, atol=1e-13)
    torch.testing.assert_close(d, torch.cdist(a, b) ** 2)
    assert squared_euclidean(b, b).diagonal().abs().max() == 0  # exactly zero: no cancellation


def linear_protonet(seed: int = 0) -> ProtoNet:
    torch.manual_seed(seed)
    return ProtoNet(torch.nn.Linear(4, 3).double())


def episode(seed: int = 2, ways: int = 3, shots: int = 2, query: int = 4):
    """Classes around the corners of a cube, in random positions: the embedding can learn to
    separate them."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.eye(4, dtype=torch.float64)[torch.randperm(4, generator=g)[:ways]] * 2

    def examples(per_class: int) -> dict[str, torch.Tensor]:
        y = torch.arange(ways).repeat_interleave(per_class)
        return {"x": centers[y] + torch.randn(len(y), 4, generator=g, dtype=torch.float64), "y": y}

    return examples(shots), examples(query)


def test_logits_are_negative_squared_distances_to_the_prototypes():
    net = linear_protonet()
    support, query = episode()
    logits = net.logits(support, query)
    f_s, f_q = net.model(support["x"]), net.model(query["x"])
    for i in range(len(f_q)):
        for k in range(3):
            c_k = f_s[support["y"] == k].mean(0)
            torch.testing.assert_close(logits[i, k], -((f_q[i] - c_k) ** 2).sum())
    # softmax over -d: a shift of every embedding by the same vector changes nothing
    shifted = ProtoNet(net.model, forward=lambda call, b: call(b["x"]) + 5.0)
    torch.testing.assert_close(shifted.logits(support, query), logits)


def test_a_query_on_a_prototype_is_classified_as_its_class():
    net = ProtoNet(torch.nn.Identity())
    support = {"x": torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 4.0], [4.0, 6.0]]), "y": torch.tensor([0, 0, 1, 1])}
    query = {"x": torch.tensor([[1.0, 0.0], [4.0, 5.0]])}
    logits = net.predict(support, query["x"])
    assert logits.argmax(-1).tolist() == [0, 1] and logits[0, 0] == 0 and logits[1, 1] == 0


def tasks_of(n: int, seed: int = 3) -> TaskBatch:
    parts = [episode(seed + i) for i in range(n)]
    stack = lambda key, which: torch.stack([p[which][key] for p in parts])  # noqa: E731
    return TaskBatch(stack("x", 0), stack("y", 0), stack("x", 1), stack("y", 1))


def test_meta_step_returns_the_loss_before_the_update_and_lowers_it():
    net = linear_protonet()
    tasks = tasks_of(3)
    loss, accuracy = net.meta_loss(tasks)
    expected = torch.stack([F.cross_entropy(net.logits(*tasks.task(i)), tasks.task(i)[1]["y"]) for i in range(3)])
    torch.testing.assert_close(loss, expected.mean())
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    first = net.meta_step(tasks, opt)
    assert first["loss"] == pytest.approx(loss.item()) and first["accuracy"] == pytest.approx(accuracy.item())
    for _ in range(30):
        last = net.meta_step(tasks, opt)
    assert last["loss"] < 0.6 * first["loss"]


def test_meta_step_leaves_the_network_unchanged_on_a_non_finite_loss():
    net = linear_protonet()
    tasks = tasks_of(2)
    bad = TaskBatch(tasks.support_x.clone(), tasks.support_y, tasks.query_x, tasks.query_y)
    bad.support_x[1, 0, 0] = float("nan")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    with pytest.raises(archlab.meta.AdaptationError, match="query loss of task 1 is not finite"):
        net.meta_step(bad, opt)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def conv4(track_running_stats: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    return archlab.create_model("cnn", in_channels=1, input_size=8, channels=[8, 8], hidden_dims=[], dropout=0.0,
                                batch_norm=True, track_running_stats=track_running_stats, num_classes=0)


def test_evaluate_scores_seeded_tasks_in_eval_mode():
    sampler = NWayKShot("digits", 3, 1, 2, split="test")
    net = ProtoNet(conv4())
    net.train()
    scores = net.evaluate(sampler, 5, seed=4)
    assert set(scores) == {"accuracy", "accuracy_ci95", "loss"} and 0 <= scores["accuracy"] <= 1
    assert net.training  # restored
    # the same 5 tasks, one by one in eval mode
    g = torch.Generator().manual_seed(4)
    tasks = sampler.sample(5, g)
    net.eval()
    with torch.no_grad():
        by_hand = [(net.logits(*tasks.task(i)).argmax(-1) == tasks.query_y[i]).double().mean().item()
                   for i in range(5)]
    assert scores["accuracy"] == pytest.approx(sum(by_hand) / 5)


def test_bad_input():
    with pytest.raises(ConfigError, match="'model' parameter of ProtoNet must be a torch.nn.Module"):
        ProtoNet("cnn")
    with pytest.raises(ConfigError, match="ProtoNet classifies; the sampler gives regression tasks"):
        ProtoNet(torch.nn.Linear(1, 4)).evaluate(Sinusoid(5, 5), 2)
