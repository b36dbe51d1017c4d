"""The per-dataset defaults of meta-training: the papers' recipes, under the user's settings."""

from __future__ import annotations

import pytest

from archlab.errors import ConfigError
from archlab.jobs import MetaConfig


def test_maml_on_sinusoids_defaults_to_finns_code_with_a_shorter_cosine_decayed_outer_lr():
    c = MetaConfig(algorithm="maml", data="sinusoid").resolved()
    assert (c.shots, c.query, c.meta_batch, c.inner_steps, c.inner_lr) == (10, 10, 25, 1, 0.001)
    assert (c.iterations, c.meta_lr, c.schedule) == (30000, 2e-3, "cosine")


def test_maml_on_omniglot_defaults_to_the_papers_recipe():
    c = MetaConfig(algorithm="maml", data="omniglot").resolved()
    assert (c.shots, c.query, c.meta_batch, c.inner_steps, c.inner_lr, c.iterations) == (1, 1, 32, 1, 0.4, 60000)


def test_maml_on_digits_takes_its_own_recipe_and_anil_the_general_one():
    c = MetaConfig(algorithm="maml", data="digits", ways=3).resolved()
    assert (c.shots, c.query, c.meta_batch, c.inner_steps, c.inner_lr, c.iterations) == (1, 1, 8, 10, 0.1, 60)
    a = MetaConfig(algorithm="anil", data="digits", ways=3).resolved()
    assert (a.meta_batch, a.inner_steps, a.inner_lr, a.iterations) == (32, 1, 0.4, 1000)
    assert MetaConfig(algorithm="anil", data="omniglot").resolved().iterations == 60000


def test_other_data_and_reptile_take_the_general_defaults():
    c = MetaConfig(algorithm="maml", data="mnist", ways=3).resolved()
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


def test_the_outer_learning_rate_and_its_schedule_default_to_constant_1e3():
    c = MetaConfig(algorithm="maml", data="digits", ways=3).resolved()
    assert (c.meta_lr, c.schedule) == (1e-3, "constant")
    given = MetaConfig(algorithm="maml", data="sinusoid", meta_lr=5e-4, schedule="linear").resolved()
    assert (given.meta_lr, given.schedule) == (5e-4, "linear")


def test_a_bad_schedule_and_a_schedule_for_reptile_are_refused():
    with pytest.raises(ConfigError, match="'schedule' parameter of MetaConfig must be one of"):
        MetaConfig(algorithm="maml", data="sinusoid", schedule="step").resolved()
    with pytest.raises(ConfigError, match="Reptile moves the weights itself"):
        MetaConfig(algorithm="reptile", data="sinusoid", schedule="cosine").resolved()


def test_a_tiny_vmapped_model_trains_on_one_thread_and_a_larger_one_on_torchs_setting():
    from archlab.data import Sinusoid
    from archlab.jobs.meta import build_learner, training_threads
    from archlab.models.registry import create_model

    config = MetaConfig(algorithm="maml", data="sinusoid").resolved()
    sampler = Sinusoid(10, 10)
    tiny = build_learner(create_model("mlp", in_features=1, num_classes=1, hidden_dims=[40, 40]), config,
                         "regression")
    wide = build_learner(create_model("mlp", in_features=1, num_classes=1, hidden_dims=[400, 400]), config,
                         "regression")
    assert training_threads(tiny, sampler, 25, 2) == 1
    assert training_threads(wide, sampler, 25, 2) == 2
    tiny.strategy = "loop"
    assert training_threads(tiny, sampler, 25, 2) == 2


def test_the_sinusoid_mlp_meta_trains_on_one_thread_and_torchs_setting_is_restored(tmp_path):
    import torch

    from archlab.engine import Callback
    from archlab.jobs import meta_train

    class Threads(Callback):
        seen: list[int] = []

        def on_step_end(self, state) -> None:
            self.seen.append(torch.get_num_threads())

    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        meta_train(MetaConfig(algorithm="maml", data="sinusoid", iterations=2, meta_batch=2), out=tmp_path / "run",
                   device="cpu", eval_tasks=0, quiet=True, callbacks=(Threads(),))
        assert Threads.seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_a_resumed_run_keeps_its_saved_settings_where_the_caller_leaves_them_unset(tmp_path):
    """A run saved before `schedule` existed, at an outer lr that is no longer the sinusoid default,
    resumes without flags: unset options take the saved values, not today's defaults."""
    import json

    from archlab.jobs import meta_train

    out = tmp_path / "run"
    meta_train(MetaConfig(algorithm="maml", data="sinusoid", iterations=2, meta_batch=2, meta_lr=1e-3,
                          schedule="constant"), out=out, quiet=True)
    config = json.loads((out / "config.json").read_text())
    del config["meta"]["schedule"]  # as a checkpoint of an older archlab has it
    (out / "config.json").write_text(json.dumps(config))
    result = meta_train(MetaConfig(algorithm="maml", data="sinusoid", iterations=3, meta_batch=2), out=out,
                        resume=True, quiet=True)
    assert result.metrics["iterations"] == 3
    with pytest.raises(ConfigError, match="these differ from the saved ones: meta_lr"):
        meta_train(MetaConfig(algorithm="maml", data="sinusoid", iterations=4, meta_batch=2, meta_lr=5e-4),
                   out=out, resume=True, quiet=True)
