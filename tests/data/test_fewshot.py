"""Few-shot samplers: NWayKShot over labeled datasets, sinusoids, and their input checks."""

from __future__ import annotations

import math

import pytest
import torch

from archlab.data import NWayKShot, Sinusoid, load_dataset, task_sampler
from archlab.errors import ConfigError


def test_digits_tasks_shapes_labels_and_classes():
    sampler = NWayKShot("digits", ways=4, shots=2, query=3, split="test")
    assert sampler.classes == [6, 7, 8, 9]
    tasks = sampler.sample(5, torch.Generator().manual_seed(0))
    assert tasks.support_x.shape == (5, 8, 1, 8, 8) and tasks.query_x.shape == (5, 12, 1, 8, 8)
    assert tasks.support_y[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert tasks.query_y[0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_tasks_use_only_their_split_classes_and_distinct_examples():
    data = load_dataset("digits")
    pool_x = torch.cat([data[s]["x"] for s in ("train", "val", "test")]).flatten(1)
    pool_y = torch.cat([data[s]["y"] for s in ("train", "val", "test")])
    sampler = NWayKShot(data, ways=5, shots=1, query=4, split="train")
    tasks = sampler.sample(20, torch.Generator().manual_seed(1))
    for i in range(len(tasks)):
        x = torch.cat([tasks.support_x[i], tasks.query_x[i]]).flatten(1)
        y = torch.cat([tasks.support_y[i], tasks.query_y[i]])
        match = (x[:, None] == pool_x[None]).all(-1)  # (examples, pool)
        rows = match.float().argmax(1)
        assert match.any(1).all()
        original = pool_y[rows]
        assert set(original.tolist()) <= set(range(6))
        # one original class per task label, five different classes
        assert all(len(set(original[y == c].tolist())) == 1 for c in range(5))
        assert len(set(original.tolist())) == 5


def test_same_generator_state_same_tasks():
    sampler = NWayKShot("digits", 3, 1, 2)
    a = sampler.sample(4, torch.Generator().manual_seed(7))
    b = sampler.sample(4, torch.Generator().manual_seed(7))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)


def test_default_class_split_of_other_datasets_is_disjoint():
    splits = {s: NWayKShot("wine", 1, 1, 1, split=s).classes for s in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == [0, 1, 2]


def test_bad_input_names_the_numbers():
    with pytest.raises(ConfigError, match=r"ways=5 is larger than the 4 meta-test classes"):
        NWayKShot("digits", ways=5, shots=1, query=1, split="test")
    with pytest.raises(ConfigError, match=r"shots \+ query = 100 \+ 100 = 200 examples a class are needed, but class \d of dataset .digits. has only 1\d\d"):
        NWayKShot("digits", ways=2, shots=100, query=100)
    with pytest.raises(ConfigError, match=r"The 'shots' parameter of NWayKShot must be an int >= 1\. Got 0 instead\."):
        NWayKShot("digits", ways=2, shots=0, query=1)
    with pytest.raises(ConfigError, match="no meta-val classes"):
        NWayKShot("digits", 2, 1, 1, split="val")
    with pytest.raises(ConfigError, match="disjoint"):
        NWayKShot("digits", 2, 1, 1, classes={"train": [0, 1, 2], "test": [2, 3]})


def test_sinusoid_tasks_follow_finn_et_al():
    tasks = Sinusoid(shots=10, query=5).sample(200, torch.Generator().manual_seed(0))
    assert tasks.support_x.shape == (200, 10, 1) and tasks.query_y.shape == (200, 5, 1)
    x = torch.cat([tasks.support_x, tasks.query_x], 1)
    y = torch.cat([tasks.support_y, tasks.query_y], 1)
    assert x.min() >= -5 and x.max() <= 5
    assert y.abs().max() <= 5
    # every task is one sinusoid A sin(x - phase): recover A and phase from two points and check the rest
    for i in range(5):
        a_sin, a_cos = torch.linalg.lstsq(torch.cat([torch.sin(x[i]), -torch.cos(x[i])], 1), y[i]).solution.flatten()
        amplitude, phase = math.hypot(a_sin, a_cos), math.atan2(a_cos, a_sin)
        assert 0.1 <= amplitude <= 5 and -1e-4 <= phase <= math.pi + 1e-4
        torch.testing.assert_close(amplitude * torch.sin(x[i] - phase), y[i], rtol=0, atol=1e-4)


def test_task_sampler_dispatch():
    assert isinstance(task_sampler("sinusoid", shots=5, query=3), Sinusoid)
    assert isinstance(task_sampler("digits", ways=3, shots=1, query=1), NWayKShot)
