"""The per-dataset defaults of meta-training: the papers' recipes, under the user's settings."""

from __future__ import annotations

import pytest

from archlab.errors import ConfigError
from archlab.jobs import MetaConfig


def test_maml_on_sinusoids_defaults_to_finns_code():
    c = MetaConfig(algorithm="maml", data="sinusoid").resolved()
    assert (c.shots, c.query, c.meta_batch, c.inner_steps, c.inner_lr, c.iterations) == (10, 10, 25, 1, 0.001, 70000)


def test_maml_on_omniglot_defaults_to_the_papers_recipe():
    c = MetaConfig(algorithm="maml", data="omniglot").resolved()
    assert (c.shots, c.query, c.meta_batch, c.inner_steps, c.inner_lr, c.iterations) == (1, 1, 32, 1, 0.4, 60000)


def test_other_data_and_reptile_take_the_general_defaults():
    c = MetaConfig(algorithm="maml", data="digits", ways=3).resolved()
    assert (c.meta_batch, c.inner_lr, c.iterations) == (32, 0.4, 1000)
    r = MetaConfig(algorithm="reptile", data="omniglot").resolved()
    assert (r.meta_batch, r.inner_steps, r.inner_optimizer, r.inner_lr) == (5, 5, "adam", 1e-3)
    assert MetaConfig(algorithm="reptile", data="omniglot", inner_optimizer="sgd").resolved().inner_lr == 0.02
    s = MetaConfig(algorithm="reptile", data="sinusoid").resolved()
    assert (s.inner_steps, s.inner_optimizer, s.inner_lr, s.meta_batch) == (10, "sgd", 0.02, 25)


def test_given_settings_win_over_the_defaults():
    c = MetaConfig(algorithm="maml", data="sinusoid", inner_lr=0.01, iterations=5, shots=5).resolved()
    assert (c.inner_lr, c.iterations, c.shots, c.query) == (0.01, 5, 5, 10)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_bad_iteration_count_is_refused(bad):
    with pytest.raises(ConfigError, match="'iterations' parameter of MetaConfig must be an int >= 1"):
        MetaConfig(iterations=bad).resolved()
