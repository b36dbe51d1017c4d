"""Permutation feature importance for tabular models (Breiman, 2001), drawn exactly as
scikit-learn's `sklearn.inspection.permutation_importance` draws it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from ..validation import check_int, fail

SCORINGS = ("accuracy", "neg_log_loss", "neg_mean_squared_error", "r2")


@dataclass
class PermutationImportance:
    """The drop of the score when a feature's column is shuffled, for each feature and repeat."""

    importances_mean: np.ndarray  # (n_features,)
    importances_std: np.ndarray  # (n_features,)
    importances: np.ndarray  # (n_features, n_repeats)
    baseline_score: float

    def ranking(self) -> np.ndarray:
        """Feature indices from the most to the least important."""
        return np.argsort(-self.importances_mean, kind="stable")


def _score(outputs: torch.Tensor, y: torch.Tensor, scoring: str | Callable) -> float:
    if callable(scoring):
        return float(scoring(outputs, y))
    if scoring == "accuracy":
        return float((outputs.argmax(-1) == y).double().mean())
    if scoring == "neg_log_loss":
        return -float(F.cross_entropy(outputs.double(), y))
    pred = outputs.reshape(y.shape).double()
    mse = float(((pred - y.double()) ** 2).mean())
    if scoring == "neg_mean_squared_error":
        return -mse
    return 1.0 - mse / float(y.double().var(unbiased=False))


def permutation_importance(model: Callable[[torch.Tensor], torch.Tensor], X, y, *, scoring: str | Callable = "accuracy",
                           n_repeats: int = 5, random_state: int | np.random.RandomState | None = None,
                           batch_size: int | None = None) -> PermutationImportance:
    r"""Permutation importance of each column of `X` for `model`.

    .. math:: I_{j,r} = s(f, X, y) - s(f, X^{(j, r)}, y)

    where :math:`X^{(j, r)}` has column ``j`` shuffled (repeat ``r``) and ``s`` is the
    score: ``accuracy`` (argmax of the outputs), ``neg_log_loss`` (of the softmax),
    ``neg_mean_squared_error`` or ``r2`` (regression outputs ``(N,)``), or a callable
    ``score(outputs, y) -> float`` where higher is better. The shuffles are scikit-learn's:
    one seed drawn from `random_state`, then the same cumulative shuffles of a
    ``RandomState(seed)`` for every column, so results equal scikit-learn's on the same
    model, data and `random_state`.

    Shapes:
        X ``(N, n_features)``, y ``(N,)``; importances ``(n_features, n_repeats)``.
    """
    name = "permutation_importance"
    check_int(name, "n_repeats", n_repeats, minimum=1)
    if not callable(scoring) and scoring not in SCORINGS:
        raise fail(name, "scoring", f"one of {', '.join(map(repr, SCORINGS))} or a callable", scoring)
    if not callable(model):
        raise ValueError(f"{name} needs a torch.nn.Module or a forward function; got {type(model).__name__}.")
    x = torch.as_tensor(X)
    if x.dim() != 2:
        raise ValueError(f"{name}: X must be a table (n_samples, n_features); got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        x = x.float()
    target = torch.as_tensor(y).to(x.device)
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: y has {target.shape[0]} rows but X has {x.shape[0]}.")
    n, features = x.shape
    rows = batch_size or max(n, 2**16 // max(features, 1))

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([model(inputs[i:i + rows]) for i in range(0, len(inputs), rows)])

    rng = random_state if isinstance(random_state, np.random.RandomState) else (
        np.random.mtrand._rand if random_state is None else np.random.RandomState(random_state))
    seed = rng.randint(np.iinfo(np.int32).max + 1)
    with torch.no_grad():
        baseline = _score(forward(x), target, scoring)
        scores = np.empty((features, n_repeats))
        for j in range(features):
            shuffler = np.random.RandomState(seed)
            order = np.arange(n)
            column = x[:, j].cpu().numpy().copy()
            permuted = x.repeat(n_repeats, 1)  # (n_repeats * N, F): every repeat in one pass
            for r in range(n_repeats):
                shuffler.shuffle(order)
                column = column[order]  # cumulative, as scikit-learn shuffles its working copy
                permuted[r * n:(r + 1) * n, j] = torch.from_numpy(column).to(x.device)
            outputs = forward(permuted)
            scores[j] = [_score(outputs[r * n:(r + 1) * n], target, scoring) for r in range(n_repeats)]
    importances = baseline - scores
    return PermutationImportance(importances.mean(1), importances.std(1), importances, baseline)
