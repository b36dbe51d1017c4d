"""The RNN classifier against raw torch.nn RNNs with copied weights, and its pooling maths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archlab
from archlab.errors import ConfigError, DataError


def make(cell="lstm", **kwargs):
    torch.manual_seed(0)
    return archlab.create_model(cell, input_dim=3, num_classes=4, hidden_dim=5, **kwargs).double().eval()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_pooling_matches_raw_rnn_with_copied_weights(cell, bidirectional):
    model = make(cell, num_layers=2, bidirectional=bidirectional)
    raw = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](
        3, 5, num_layers=2, batch_first=True, bidirectional=bidirectional).double()
    raw.load_state_dict(model.rnn.state_dict())
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    out, h = raw(x)
    h = h[0] if isinstance(h, tuple) else h
    features = torch.cat([h[-2], h[-1]], -1) if bidirectional else h[-1]
    if bidirectional:  # the backward direction's final state is its output at step 0
        torch.testing.assert_close(features[:, 5:], out[:, 0, 5:], rtol=0, atol=1e-12)
    torch.testing.assert_close(model(x), model.head(features), rtol=0, atol=1e-12)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_batch_equals_each_sequence_alone(pooling, bidirectional):
    model = make("lstm", pooling=pooling, bidirectional=bidirectional, num_layers=2)
    lengths = torch.tensor([7, 2, 5, 1])
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    x_padded = x.clone()
    for i, n in enumerate(lengths):
        x_padded[i, n:] = 1e3  # padding must never reach the output
    batched = model(x_padded, lengths=lengths)
    for i, n in enumerate(lengths):
        alone = model(x[i:i + 1, :n])
        torch.testing.assert_close(batched[i:i + 1], alone, rtol=0, atol=1e-12)


def test_mean_and_max_pool_over_outputs():
    model = make("gru", pooling="mean")
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    out, _ = model.rnn(x)
    torch.testing.assert_close(model.forward_features(x), out.mean(1))
    model.pooling = "max"
    torch.testing.assert_close(model.forward_features(x), out.amax(1))


def test_token_input_uses_embedding():
    torch.manual_seed(0)
    model = archlab.create_model("lstm", vocab_size=11, embed_dim=4, num_classes=2).eval()
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    out = model(ids, lengths=torch.tensor([3, 2]))
    assert out.shape == (2, 2)
    torch.testing.assert_close(out[1:], model(ids[1:, :2]))


def test_embed_dropout_zeroes_inputs_in_training_only():
    torch.manual_seed(0)
    model = archlab.create_model("lstm", vocab_size=11, embed_dim=64, num_classes=2, embed_dropout=0.5)
    ids = torch.tensor([[1, 2, 3, 4]])
    dropped = model.embed_dropout(model.embedding(ids))
    kept = dropped != 0
    assert 0.2 < kept.float().mean() < 0.8  # about half the embedding entries are dropped
    torch.testing.assert_close(dropped[kept], 2 * model.embedding(ids)[kept])  # survivors scaled by 1 / (1 - p)
    model.eval()
    torch.testing.assert_close(model(ids), model(ids))
    torch.testing.assert_close(model.embed_dropout(model.embedding(ids)), model.embedding(ids))
    with pytest.raises(ConfigError, match=r"The 'embed_dropout' parameter of RNNClassifier must be a float in "
                                          r"\[0, 1\)\. Got 1\.0 instead\."):
        archlab.create_model("lstm", vocab_size=11, embed_dropout=1.0)


def test_wrong_shapes_are_refused():
    model = make("lstm")
    with pytest.raises(DataError, match=r"\(batch, time, 3\); got \(2, 5, 4\)"):
        model(torch.randn(2, 5, 4, dtype=torch.float64))
    with pytest.raises(DataError, match="lengths must have shape"):
        model(torch.randn(2, 5, 3, dtype=torch.float64), lengths=torch.tensor([5, 5, 5]))


def test_bad_cell_or_pooling_named():
    from archlab.models.rnn import RNNClassifier

    with pytest.raises(ConfigError, match=r"The 'pooling' parameter of RNNClassifier must be one of .*\. Got 'sum' instead\."):
        RNNClassifier(pooling="sum")
    with pytest.raises(ConfigError, match=r"The 'cell' parameter of RNNClassifier must be one of .*\. "
                                          r"Got 'transformer' instead\."):
        RNNClassifier(cell="transformer")
