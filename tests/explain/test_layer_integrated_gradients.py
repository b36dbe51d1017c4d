"""LayerIntegratedGradients on tuple values, layer inputs, lists of layers, several inputs and
broadcast baselines."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import archlab
from archlab.explain import LayerIntegratedGradients

EXACT = {"atol": 1e-10, "rtol": 0.0}


class GRUModel(nn.Module):
    """A time-major GRU: its sequence ``(T, B, H)`` and its states ``(layers, B, H)`` are batch-second."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, num_layers=2)
        self.head = nn.Linear(4, 2)

    def forward(self, x):  # x (B, T, 3)
        out, h = self.gru(x.transpose(0, 1))
        return self.head(torch.tanh(out[-1] * h[0]) + out.mean(0))


@pytest.fixture
def gru():
    torch.manual_seed(0)
    return GRUModel().double(), torch.randn(3, 5, 3, dtype=torch.float64)


def total(attributions, dims) -> torch.Tensor:
    """Per-example sum of attributions laid out with the batch along `dims`."""
    return sum(a.movedim(d, 0).flatten(1).sum(1) for a, d in zip(attributions, dims))


def test_completeness_on_a_batch_second_recurrent_layer(gru):
    """Sum of attributions = f(x) - f(x'), example by example, with the steps split over passes."""
    model, x = gru
    lig = LayerIntegratedGradients(model, model.gru)
    (out, h), delta = lig.attribute(x, 1, n_steps=64, return_convergence_delta=True, internal_batch_size=7)
    assert out.shape == (5, 3, 4) and h.shape == (2, 3, 4)
    gap = (model(x) - model(torch.zeros_like(x)))[:, 1].detach()
    assert_close(total((out, h), (1, 1)), gap, atol=1e-6, rtol=0.0)
    assert_close(delta, total((out, h), (1, 1)) - gap, **EXACT)
    (out_once, h_once) = lig.attribute(x, 1, n_steps=64, internal_batch_size=3 * 64)
    assert_close(out_once, out, **EXACT)
    assert_close(h_once, h, **EXACT)
    # each example's attributions depend on that example alone
    _, alone_h = lig.attribute(x[2:], 1, n_steps=64)
    assert_close(alone_h, h[:, 2:], **EXACT)


def test_lig_over_a_list_of_one_layer_returns_a_list(gru):
    model, x = gru
    (values,) = LayerIntegratedGradients(model, [model.gru]).attribute(x, 0, n_steps=8)
    assert isinstance(values, tuple)
    single = LayerIntegratedGradients(model, model.gru).attribute(x, 0, n_steps=8)
    for ours, reference in zip(values, single):
        assert_close(ours, reference, **EXACT)


class TextModel(nn.Module):
    """Word and segment embeddings of two id inputs, one value per example."""

    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(12, 5)
        self.segment = nn.Embedding(2, 5)
        self.head = nn.Linear(5, 1)

    def forward(self, ids, segments):
        return self.head(torch.tanh(self.word(ids) + self.segment(segments)).mean(1))


@pytest.fixture
def text():
    torch.manual_seed(0)
    ids = torch.tensor([[1, 4, 7, 2], [3, 3, 9, 11], [5, 8, 1, 0]])
    segments = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1]])
    return TextModel().double(), ids, segments


def test_one_baseline_row_serves_the_whole_batch(text):
    model, ids, segments = text
    lig = LayerIntegratedGradients(model, [model.word, model.segment])
    row = (torch.tensor([[1, 0, 0, 2]]), torch.zeros(1, 4, dtype=torch.long))
    full = tuple(b.expand(3, 4) for b in row)
    word, segment = lig.attribute((ids, segments), baselines=row, n_steps=16)
    expected = lig.attribute((ids, segments), baselines=full, n_steps=16)
    assert_close(word, expected[0], **EXACT)
    assert_close(segment, expected[1], **EXACT)
    by_number = lig.attribute((ids, segments), baselines=(0, 0), n_steps=16)
    zeros = lig.attribute((ids, segments), n_steps=16)
    assert_close(by_number[0], zeros[0], **EXACT)


def test_completeness_over_two_embeddings(text):
    model, ids, segments = text
    attributions, delta = LayerIntegratedGradients(model, [model.word, model.segment]).attribute(
        (ids, segments), n_steps=64, return_convergence_delta=True)
    gap = (model(ids, segments) - model(torch.zeros_like(ids), torch.zeros_like(segments))).squeeze(1).detach()
    assert_close(total(attributions, (0, 0)), gap, atol=1e-7, rtol=0.0)
    assert delta.abs().max() < 1e-7


def test_a_one_tuple_of_inputs_is_one_input():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(12, 5), nn.Flatten(), nn.Linear(15, 3)).double()
    ids = torch.randint(0, 12, (2, 3))
    lig = LayerIntegratedGradients(model, model[0])
    assert_close(lig.attribute((ids,), 2, baselines=(None,)), lig.attribute(ids, 2), **EXACT)


def test_baseline_errors(text):
    model, ids, segments = text
    lig = LayerIntegratedGradients(model, model.word)
    with pytest.raises(ValueError, match="with 2 inputs, baselines must be a tuple of 2 baselines"):
        lig.attribute((ids, segments), baselines=torch.zeros_like(ids))
    with pytest.raises(ValueError, match=r"baselines of shape \(2, 4\) do not broadcast to the inputs of shape"):
        lig.attribute((ids, segments), baselines=(torch.zeros(2, 4, dtype=torch.long), None))
    with pytest.raises(ValueError, match="a baseline must be None, a number or a tensor; got str"):
        lig.attribute((ids, segments), baselines=("pad", None))


def test_layer_errors(text):
    model, ids, segments = text
    with pytest.raises(ValueError, match=r"the layer's input holds no floating-point tensor \(torch.int64\)"):
        LayerIntegratedGradients(model, model.word).attribute((ids, segments), attribute_to_layer_input=True)
    with pytest.raises(ValueError, match="the list of layers is empty"):
        LayerIntegratedGradients(model, [])
    with pytest.raises(ValueError, match="layer 'words' is not in the model"):
        LayerIntegratedGradients(model, [model.word, "words"])


def test_a_value_shared_by_the_batch_is_refused():
    """archlab's BERT embeds the positions ``(T,)`` once for every example: not a per-example value."""
    torch.manual_seed(0)
    model = archlab.create_model("bert", vocab_size=30, embed_dim=8, num_heads=2, num_layers=1, mlp_dim=16,
                                 context_length=8, num_classes=2).double().eval()
    ids = torch.randint(1, 30, (3, 6))
    with pytest.raises(ValueError, match=r"has a tensor of shape \(6, 8\), not one row per example along dimension 0"):
        LayerIntegratedGradients(model, model.bert.embeddings.position).attribute(ids, 0)
    assert LayerIntegratedGradients(model, model.bert.embeddings.word).attribute(ids, 0).shape == (3, 6, 8)


def test_unused_and_absent_leaves():
    class Branches(nn.Module):
        def forward(self, x):
            return x * 2.0, x - 1.0, None

    branches = Branches()
    head = nn.Linear(4, 1).double()
    x = torch.randn(2, 4, dtype=torch.float64)

    def forward(inputs):
        used, _, _ = branches(inputs)
        return head(used)

    used, unused, absent = LayerIntegratedGradients(forward, branches).attribute(x, n_steps=4)
    assert absent is None
    assert_close(unused, torch.zeros_like(x))
    assert_close(used, 2 * x * head.weight[0], **EXACT)  # a linear model: IG is exact


def test_an_in_place_op_after_the_layer_does_not_change_its_value():
    """The path runs from the linear layer's own outputs, not from the ReLU that overwrites them."""
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).double()
    inplace = nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 2)).double()
    inplace.load_state_dict(plain.state_dict())
    x = torch.randn(3, 4, dtype=torch.float64)
    expected, expected_delta = LayerIntegratedGradients(plain, plain[0]).attribute(x, 1, n_steps=8,
                                                                                 return_convergence_delta=True)
    ours, delta = LayerIntegratedGradients(inplace, inplace[0]).attribute(x, 1, n_steps=8,
                                                                          return_convergence_delta=True)
    assert_close(ours, expected, **EXACT)
    assert_close(delta, expected_delta, **EXACT)
    assert_close(LayerIntegratedGradients(inplace, inplace[0]).layer_output(x), plain[0](x).detach(), **EXACT)


def test_a_layer_the_output_does_not_depend_on():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2)).double()
    unused = nn.Linear(4, 4).double()
    x = torch.randn(2, 4, dtype=torch.float64)

    def forward(inputs):
        unused(inputs)
        return model(inputs)

    with pytest.raises(ValueError, match="the model's output does not depend on the chosen layer's output"):
        LayerIntegratedGradients(forward, unused).attribute(x, 0)
