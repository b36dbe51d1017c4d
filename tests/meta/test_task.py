"""Meta-learners as tasks of `fit`: a step is one outer update on the step's task batch, exactly
as a hand-written loop would do it; the episodes split draws batch i from seed + i; Meta-SGD's
step sizes travel with the checkpoint."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.data import EpisodeSplit, NWayKShot, Sinusoid
from archlab.engine import TrainConfig, fit
from archlab.errors import ConfigError
from archlab.meta import MAML, Reptile
from archlab.meta.task import INNER_LRS_FILE, MAMLTask, ReptileTask, meta_task

from .helpers import assert_unchanged, snapshot, tiny_cnn, tiny_mlp

SEED = 3


def sinusoid_mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return archlab.create_model("mlp", in_features=1, num_classes=1, hidden_dims=[8, 8])


def tasks_of_step(sampler, i: int, n: int = 2):
    return sampler.sample(n, torch.Generator().manual_seed(SEED * 1_000_003 + i))


def config(steps: int, **kwargs) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=2, optimizer="adam", lr=1e-2, seed=SEED, quiet=True, device="cpu",
                       **kwargs)


def test_the_episodes_split_draws_batch_i_from_seed_plus_i():
    split = EpisodeSplit(Sinusoid(3, 4))
    first = list(zip(range(4), split.batches(2, seed=7)))
    later = next(split.batches(2, seed=7, start=2))
    assert [b["index"] for _, b in first] == [0, 1, 2, 3] and later["index"] == 2
    torch.testing.assert_close(later["tasks"].query_y, first[2][1]["tasks"].query_y, rtol=0, atol=0)
    expected = Sinusoid(3, 4).sample(2, torch.Generator().manual_seed(9))
    torch.testing.assert_close(first[2][1]["tasks"].support_x, expected.support_x, rtol=0, atol=0)


@pytest.mark.parametrize("learn_inner_lr", [False, True])
def test_fit_takes_the_same_steps_as_a_hand_written_maml_loop(learn_inner_lr):
    sampler = Sinusoid(5, 5)
    hand = MAML(sinusoid_mlp(), inner_lr=0.05, kind="regression", learn_inner_lr=learn_inner_lr, strategy="loop")
    optimizer = torch.optim.Adam(hand.parameters(), lr=1e-2)
    for i in range(4):
        hand.meta_step(tasks_of_step(sampler, i), optimizer)
    learner = MAML(sinusoid_mlp(), inner_lr=0.05, kind="regression", learn_inner_lr=learn_inner_lr, strategy="loop")
    result = fit(learner.model, MAMLTask(learner), {"train": EpisodeSplit(sampler)}, config(4, eval_every=2))
    assert_unchanged(learner.model, snapshot(hand.model))
    if learn_inner_lr:
        for mine, theirs in zip(learner.inner_lrs, hand.inner_lrs):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    assert [row["step"] for row in result.history] == [2, 4]
    assert {"train_loss", "train_mse", "lr"} <= set(result.history[0])


def test_fit_takes_the_same_steps_as_a_hand_written_reptile_loop():
    sampler = Sinusoid(5, 5)
    hand = Reptile(sinusoid_mlp(), inner_lr=0.02, inner_steps=2, inner_optimizer="sgd", total_iterations=4,
                   meta_step_size_final=0.1, kind="regression", strategy="loop")
    for i in range(4):
        hand.meta_step(tasks_of_step(sampler, i), i)
    learner = Reptile(sinusoid_mlp(), inner_lr=0.02, inner_steps=2, inner_optimizer="sgd", total_iterations=4,
                      meta_step_size_final=0.1, kind="regression", strategy="loop")
    task = meta_task(learner)
    assert isinstance(task, ReptileTask)
    result = fit(learner.model, task, {"train": EpisodeSplit(sampler)}, config(4, eval_every=1))
    assert_unchanged(learner.model, snapshot(hand.model))
    # the annealed meta step: epsilon_t = (1 - t/n) epsilon_0 + (t/n) epsilon_final, at t = 0, 1, 2, 3
    assert [row["train_meta_step_size"] for row in result.history] == pytest.approx([1.0, 0.775, 0.55, 0.325])
    assert "lr" not in result.history[0]  # Reptile has no optimizer


def test_meta_sgd_step_sizes_are_written_with_every_checkpoint_and_restored_on_resume(tmp_path):
    sampler = Sinusoid(5, 5)
    full = MAML(sinusoid_mlp(), inner_lr=0.05, kind="regression", learn_inner_lr=True, strategy="loop")
    fit(full.model, MAMLTask(full), {"train": EpisodeSplit(sampler)}, config(4), out=tmp_path / "full")
    cut = MAML(sinusoid_mlp(), inner_lr=0.05, kind="regression", learn_inner_lr=True, strategy="loop")
    fit(cut.model, MAMLTask(cut), {"train": EpisodeSplit(sampler)}, config(2), out=tmp_path / "cut")
    assert (tmp_path / "cut" / INNER_LRS_FILE).is_file()
    fresh = MAML(sinusoid_mlp(seed=9), inner_lr=0.05, kind="regression", learn_inner_lr=True, strategy="loop")
    fit(fresh.model, MAMLTask(fresh), {"train": EpisodeSplit(sampler)}, config(4), out=tmp_path / "cut",
        resume=True)
    assert_unchanged(fresh.model, snapshot(full.model))
    for mine, theirs in zip(fresh.inner_lrs, full.inner_lrs):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


def test_evaluation_adapts_to_the_split_sampler():
    torch.manual_seed(0)
    sampler = NWayKShot("digits", 3, 1, 2)
    learner = MAML(tiny_cnn().float(), inner_lr=0.1, strategy="loop")
    task = MAMLTask(learner, eval_tasks=4, eval_steps=[0, 1], eval_seed=2)
    scores = task.evaluate(learner.model, EpisodeSplit(sampler), 512)
    assert scores == learner.evaluate(sampler, 4, [0, 1], seed=2)
    assert task.monitor == "val_accuracy_step1" and task.mode == "max"


def test_a_task_refuses_a_model_that_is_not_its_learners():
    learner = MAML(tiny_mlp(), inner_lr=0.1)
    with pytest.raises(ConfigError, match="pass learner.model to fit"):
        fit(tiny_mlp(seed=1), MAMLTask(learner), {"train": EpisodeSplit(Sinusoid())}, config(1))
