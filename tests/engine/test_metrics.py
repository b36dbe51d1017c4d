"""Metrics agree with scikit-learn."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion

from archlab.engine.metrics import accuracy, confusion_matrix, macro_f1


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_confusion_accuracy_and_macro_f1_match_sklearn(pairs):
    y, p = (np.array(v) for v in zip(*pairs))
    c = confusion_matrix(torch.tensor(p), torch.tensor(y), 5)
    np.testing.assert_array_equal(c.numpy(), sk_confusion(y, p, labels=range(5)))
    assert abs(accuracy(c) - accuracy_score(y, p)) < 1e-12
    labels = sorted(set(y) | set(p))
    assert abs(macro_f1(c) - f1_score(y, p, labels=labels, average="macro", zero_division=0)) < 1e-12
