"""The Task contract: a task defines a loss (`training_step`) or an update of its own."""

from __future__ import annotations

import pytest

from archlab.engine.tasks import Task


def test_a_task_with_neither_a_loss_nor_an_update_is_refused_when_made():
    class Scoring(Task):
        def evaluate(self, model, split, batch_size):
            return {}

    with pytest.raises(TypeError, match="Scoring must define training_step, or override optimization_step"):
        Scoring()

    class Updating(Scoring):
        def optimization_step(self, model, batch, optimizers, grad_clip):
            return {"loss": 0.0}

    Updating()
