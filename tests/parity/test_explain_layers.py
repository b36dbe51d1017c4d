"""Layer attributions (GradCAM, LayerIntegratedGradients) against Captum's `LayerGradCam` and
`LayerIntegratedGradients`, in float64: Captum's own test cases (its toy models, inputs and
expected numbers, re-expressed here), layers whose value is a tuple, layer inputs, lists of
layers, several inputs, and Hugging Face BERT's three embeddings.

archlab's GradCAM defaults to ``relu_attributions=True`` and ``upsample=True``; Captum's
`LayerGradCam` keeps the sign and never upsamples, so every comparison passes
``relu_attributions=False, upsample=False`` unless it tests those options.
"""

from __future__ import annotations

import pytest
import torch
from captum import attr as captum
from torch import nn
from torch.testing import assert_close

import archlab
import archlab.explain.layer_integrated_gradients as lig_module
from archlab.explain import GradCAM, LayerIntegratedGradients, TokenAttribution
from archlab.nn.transformer import TransformerBlock

from .test_explain_gradients import captum_quadrature

EXACT = {"atol": 1e-8, "rtol": 0.0}
CAPTUM_TOLERANCE = {"atol": 0.01, "rtol": 0.0}  # Captum's own tests compare to two decimals


def double(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def assert_all_close(ours, theirs, **tolerance):
    """Tensors, or tuples and lists of them (Captum returns tuples for tuple-valued layers)."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor)
        assert_close(ours, theirs.detach(), **tolerance)
        return
    assert type(ours) is type(theirs) and len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        assert_all_close(mine, reference, **tolerance)


# --- Captum's toy models (tests/helpers/basic_models.py), re-expressed ------------------------------

class TwoReLUs(nn.Module):
    """A layer of two arguments whose output is a tuple of two tensors."""

    def __init__(self):
        super().__init__()
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, first, second):
        return self.relu1(first), self.relu2(second)


def fixed_linear(in_features: int, out_features: int, weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


class MultiLayer(nn.Module):
    """Identity, then all-ones weights with biases (-10, 1, 1, 1), a ReLU and two outputs with
    biases (-1, 1). With `two_branches`, a second copy of the middle layer reads the input and a
    two-argument ReLU layer takes both; the plain ReLU still runs but feeds nothing."""

    def __init__(self, two_branches: bool = False):
        super().__init__()
        self.two_branches = two_branches
        self.linear0 = fixed_linear(3, 3, torch.eye(3), torch.zeros(3))
        self.linear1 = fixed_linear(3, 4, torch.ones(4, 3), torch.tensor([-10.0, 1.0, 1.0, 1.0]))
        self.linear1_alt = fixed_linear(3, 4, torch.ones(4, 3), torch.tensor([-10.0, 1.0, 1.0, 1.0]))
        self.multi_relu = TwoReLUs()
        self.relu = nn.ReLU()
        self.linear2 = fixed_linear(4, 2, torch.ones(2, 4), torch.tensor([-1.0, 1.0]))

    def forward(self, x, add_input=None):
        x = x if add_input is None else x + add_input
        hidden = self.linear1(self.linear0(x))
        if self.two_branches:
            first, second = self.multi_relu(hidden, self.linear1_alt(x))
            self.relu(hidden)
            return self.linear2(first + second)
        return self.linear2(self.relu(hidden))


class SummedInputs(nn.Module):
    """`MultiLayer` on ``scale * (x1 + x2 + x3)``: a layer of three tensor arguments."""

    def __init__(self):
        super().__init__()
        self.model = MultiLayer()

    def forward(self, x1, x2, x3, scale):
        return self.model(scale * (x1 + x2 + x3))


class TwoSubmodels(nn.Module):
    """``m1(x1) + m234(x2, x3, x4 or x1)``: two layers that read the model's inputs side by side."""

    def __init__(self):
        super().__init__()
        self.m1 = MultiLayer()
        self.m234 = SummedInputs()

    def forward(self, x1, x2, x3, x4=None):
        return self.m1(x1) + self.m234(x2, x3, x1 if x4 is None else x4, scale=1)


class OneConv(nn.Module):
    """A 3x3 all-ones convolution to two channels (biases -50, -75), a ReLU, and four outputs
    weighting the first five of the eight activations +1 and the last three -1."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.relu1 = nn.ReLU()
        self.fc1 = fixed_linear(8, 4, torch.cat([torch.ones(4, 5), -torch.ones(4, 3)], dim=1), torch.zeros(4))
        self.relu2 = nn.ReLU()
        with torch.no_grad():
            self.conv1.weight.fill_(1.0)
            self.conv1.bias.copy_(torch.tensor([-50.0, -75.0]))

    def forward(self, x, x2=None):
        x = x if x2 is None else x + x2
        return self.relu2(self.fc1(self.relu1(self.conv1(x)).view(-1, 8)))


class InnerEmbeddings(nn.Module):
    """A submodule holding two embeddings: ``inner(a) + inner2(b)`` (or ``inner(a)`` alone)."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.inner_embedding = nn.Embedding(num_embeddings, embedding_dim)
        self.inner_embedding2 = nn.Embedding(num_embeddings, embedding_dim)

    def forward(self, ids, other_ids=None):
        embedding = self.inner_embedding(ids)
        return embedding if other_ids is None else embedding + self.inner_embedding2(other_ids)


class EmbeddingModel(nn.Module):
    """Two embeddings (30 x 100, random), summed, through all-ones layers 100 -> 256 -> 1 with a
    ReLU, summed over the 4 tokens: one value per example."""

    def __init__(self):
        super().__init__()
        self.embedding1 = nn.Embedding(30, 100)
        self.embedding2 = InnerEmbeddings(30, 100)
        self.linear1 = nn.Linear(100, 256, bias=False)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(256, 1)
        with torch.no_grad():
            self.linear1.weight.fill_(1.0)
            self.linear2.weight.fill_(1.0)

    def head(self, embeddings):
        return self.linear2(self.relu(self.linear1(embeddings))).sum(1)

    def forward(self, input1, input2, input3=None):
        return self.head(self.embedding1(input1) + self.embedding2(input2, input3))


@pytest.fixture
def embedding_model() -> EmbeddingModel:
    torch.manual_seed(0)
    return EmbeddingModel().double()


# --- LayerGradCam: Captum's cases (tests/attr/layer/test_grad_cam.py) -------------------------------

def gradcam_pair(model, layer, inputs, *, relu: bool = False, **options):
    ours = GradCAM(model, layer).attribute(inputs, 0, relu_attributions=relu, upsample=False, **options)
    theirs = captum.LayerGradCam(model, layer).attribute(inputs, target=0, relu_attributions=relu, **options)
    assert_all_close(ours, theirs, **EXACT)
    return ours


def test_gradcam_on_a_linear_layer():
    """A ``(B, C)`` layer has no positions: the weights are the gradient itself."""
    model = MultiLayer().double()
    ours = gradcam_pair(model, model.linear0, double([[0.0, 100.0, 0.0]]))
    assert_close(ours, double([[400.0]]), **CAPTUM_TOLERANCE)


def test_gradcam_on_a_layer_returning_two_tensors():
    model = MultiLayer(two_branches=True).double()
    ours = gradcam_pair(model, model.multi_relu, double([[0.0, 6.0, 0.0]]))
    assert isinstance(ours, tuple)
    assert_all_close(ours, (double([[21.0]]), double([[21.0]])), **CAPTUM_TOLERANCE)


@pytest.mark.parametrize("frozen", [False, True])
def test_gradcam_on_a_convolution(frozen):
    model = OneConv().double()
    for parameter in model.parameters():
        parameter.requires_grad_(not frozen)  # some users freeze the model before explaining it
    x = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    ours = gradcam_pair(model, model.conv1, x)
    assert_close(ours, double([[[[11.25, 13.5], [20.25, 22.5]]]]), **CAPTUM_TOLERANCE)


def test_gradcam_on_a_relu_after_the_convolution():
    model = OneConv().double()
    ours = gradcam_pair(model, model.relu1, torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4))
    assert_close(ours, double([[[[0.0, 4.0], [28.0, 32.5]]]]), **CAPTUM_TOLERANCE)


@pytest.mark.parametrize("relu", [False, True])
def test_gradcam_on_the_input_of_a_convolution(relu):
    """The input of conv1 is the image itself; a negative pixel shows whether the ReLU is applied."""
    model = OneConv().double()
    x = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    x[0, 0, 1, 1] = -4.0
    expected = 0.5625 * x
    if relu:
        expected[0, 0, 1, 1] = 0.0
    ours = gradcam_pair(model, model.conv1, x, relu=relu, attribute_to_layer_input=True)
    assert_close(ours, expected, **CAPTUM_TOLERANCE)


def test_gradcam_with_two_inputs():
    model = OneConv().double()
    x = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    ours = gradcam_pair(model, model.conv1, (x, torch.ones(1, 1, 4, 4, dtype=torch.float64)))
    assert_close(ours, double([[[[14.5, 19.0], [32.5, 37.0]]]]), **CAPTUM_TOLERANCE)


def test_gradcam_upsampled_matches_layer_attribution_interpolate():
    model = OneConv().double()
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 10
    theirs = captum.LayerGradCam(model, model.conv1).attribute(x, target=1)
    for mode in ("nearest", "bilinear"):
        ours = GradCAM(model, model.conv1).attribute(x, 1, relu_attributions=False, interpolate_mode=mode)
        assert_close(ours, captum.LayerAttribution.interpolate(theirs, (4, 4), mode).detach(), **EXACT)


# --- LayerIntegratedGradients: Captum's cases (tests/attr/layer/test_layer_integrated_gradients.py) --

@pytest.fixture
def captum_nodes(monkeypatch):
    """Our quadrature replaced by Captum's float32-rounded one, so that results agree to 1e-8."""
    monkeypatch.setattr(lig_module, "quadrature", captum_quadrature)


def embedding_ig_reference(model, input1, baseline1, input2, input3, multiply_by_inputs=True):
    """Captum's plain IG on the first embedding's output, the rest of the model held fixed:
    what layer IG on that embedding must equal."""
    def from_embedding(e1, ids2, ids3):
        return model.head(e1 + model.embedding2(ids2, ids3))

    return captum.IntegratedGradients(from_embedding, multiply_by_inputs=multiply_by_inputs).attribute(
        model.embedding1(input1).detach(), baselines=model.embedding1(baseline1).detach(),
        additional_forward_args=(input2, input3), return_convergence_delta=True)


@pytest.mark.parametrize("multiply_by_inputs", [True, False])
@pytest.mark.parametrize("batch", [1, 2])
def test_lig_on_an_embedding_equals_ig_on_its_output(batch, multiply_by_inputs, embedding_model, captum_nodes):
    """One ``(1, 4)`` baseline row serves a batch of two."""
    model = embedding_model
    input1 = torch.tensor([[2, 5, 0, 1], [3, 1, 1, 0]])[:batch]
    input2 = torch.tensor([[0, 2, 4, 1], [2, 3, 5, 7]])[:batch]
    input3 = torch.tensor([[2, 3, 0, 1], [2, 3, 0, 1]])[:batch]
    baseline1 = torch.zeros(1, 4, dtype=torch.long)
    ours, delta = LayerIntegratedGradients(model, model.embedding1, multiply_by_inputs=multiply_by_inputs).attribute(
        input1, baselines=baseline1, additional_forward_args=(input2, input3), return_convergence_delta=True)
    theirs, their_delta = captum.LayerIntegratedGradients(model, model.embedding1,
                                                          multiply_by_inputs=multiply_by_inputs).attribute(
        input1, baselines=baseline1, additional_forward_args=(input2, input3), return_convergence_delta=True)
    reference, reference_delta = embedding_ig_reference(model, input1, baseline1.expand(batch, 4), input2, input3,
                                                        multiply_by_inputs)
    assert ours.shape == (batch, 4, 100)
    assert_close(ours, theirs.detach(), **EXACT)
    assert_close(ours, reference.detach(), atol=1e-6, rtol=0.0)
    if multiply_by_inputs:
        assert_close(delta, their_delta, **EXACT)
        assert_close(delta, reference_delta, atol=1e-6, rtol=0.0)


def test_lig_on_a_layer_returning_two_tensors():
    model = MultiLayer(two_branches=True).double()
    x = double([[0.0, 100.0, 0.0]])
    ours = LayerIntegratedGradients(model, model.multi_relu).attribute(x, 0)
    theirs = captum.LayerIntegratedGradients(model, model.multi_relu).attribute(x, target=0)
    assert_all_close(ours, theirs, atol=1e-6, rtol=0.0)
    expected = double([[90.0, 100.0, 100.0, 100.0]])
    assert_all_close(ours, (expected, expected), **CAPTUM_TOLERANCE)


def test_lig_without_multiplying_by_the_inputs_on_a_tuple_layer():
    """Without the factor (h - h') the attributions are the averaged gradients: times the
    layer's change from baseline to input they are the usual attributions."""
    model = MultiLayer(two_branches=True).double()
    x = double([[0.0, 100.0, 0.0]])
    layer = model.multi_relu
    plain = LayerIntegratedGradients(model, layer).attribute(x, 0)
    gradients = LayerIntegratedGradients(model, layer, multiply_by_inputs=False).attribute(x, 0)
    end = LayerIntegratedGradients(model, layer).layer_output(x)
    start = LayerIntegratedGradients(model, layer).layer_output(torch.zeros_like(x))
    assert isinstance(end, tuple) and len(end) == 2
    assert_all_close(tuple(g * (e - s) for g, e, s in zip(gradients, end, start)), plain, **EXACT)


@pytest.mark.parametrize("to_input", [False, True])
def test_lig_on_the_last_linear_layer(to_input, captum_nodes):
    model = MultiLayer().double()
    x = double([[50.0, 50.0, 50.0], [1.0, -2.0, 30.0]])
    layer = LayerIntegratedGradients(model, model.linear2)
    ours, delta = layer.attribute(x, 0, n_steps=200, return_convergence_delta=True, attribute_to_layer_input=to_input)
    theirs, their_delta = captum.LayerIntegratedGradients(model, model.linear2).attribute(
        x, target=0, n_steps=200, return_convergence_delta=True, attribute_to_layer_input=to_input)
    assert_close(ours, theirs, **EXACT)
    assert_close(delta, their_delta, **EXACT)


@pytest.mark.filterwarnings("ignore:Multiple layers provided")
def test_lig_over_two_embedding_layers_with_three_inputs(embedding_model, captum_nodes):
    model = embedding_model
    inputs = (torch.tensor([[2, 5, 0, 1], [3, 1, 1, 0]]), torch.tensor([[0, 2, 4, 1], [2, 3, 5, 7]]),
              torch.tensor([[3, 5, 6, 7], [2, 3, 0, 1]]))
    baselines = tuple(torch.zeros_like(x) for x in inputs)
    layers = [model.embedding1, model.embedding2]
    ours, delta = LayerIntegratedGradients(model, layers).attribute(inputs, baselines=baselines,
                                                                    return_convergence_delta=True)
    theirs, their_delta = captum.LayerIntegratedGradients(model, layers).attribute(
        inputs, baselines=baselines, return_convergence_delta=True)
    assert isinstance(ours, list) and len(ours) == 2
    assert_all_close(ours, theirs, **EXACT)
    assert_close(delta, their_delta, **EXACT)
    # the same as IG on both embeddings' outputs
    reference = captum.IntegratedGradients(lambda e1, e2: model.head(e1 + e2)).attribute(
        (model.embedding1(inputs[0]).detach(), model.embedding2(*inputs[1:]).detach()),
        baselines=(model.embedding1(baselines[0]).detach(), model.embedding2(*baselines[1:]).detach()))
    assert_all_close(tuple(ours), reference, atol=1e-6, rtol=0.0)


@pytest.mark.filterwarnings("ignore:Multiple layers provided")
@pytest.mark.parametrize("fourth_input", [False, True])
def test_lig_over_two_submodels_inputs_and_outputs(fourth_input, captum_nodes):
    """Layer inputs: together the two submodels' inputs are the model's inputs, so their
    attributions are IG's on the model (x1's twice over when m234 reads x1 too). Layer
    outputs: IG on the model ``a + b`` of the two outputs."""
    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(5, 3, dtype=torch.float64, generator=g) for _ in range(4 if fourth_input else 3))
    baselines = tuple(torch.zeros_like(x) for x in inputs)
    model = TwoSubmodels().double()
    layers = [model.m1, model.m234]
    lig = LayerIntegratedGradients(model, layers)

    to_inputs = lig.attribute(inputs, 0, baselines=baselines, attribute_to_layer_input=True)
    theirs = captum.LayerIntegratedGradients(model, layers).attribute(inputs, baselines, target=0,
                                                                      attribute_to_layer_input=True)
    assert isinstance(to_inputs, list) and isinstance(to_inputs[0], torch.Tensor)
    assert isinstance(to_inputs[1], tuple) and len(to_inputs[1]) == 3
    assert_all_close(to_inputs, theirs, **EXACT)
    ig = captum.IntegratedGradients(model).attribute(inputs, baselines, target=0)
    first, rest = to_inputs[0], to_inputs[1]
    combined = (first,) + rest if fourth_input else (first + rest[-1],) + rest[:-1]
    assert_all_close(combined, ig, atol=1e-7, rtol=0.0)

    to_outputs = lig.attribute(inputs, 0, baselines=baselines)
    theirs = captum.LayerIntegratedGradients(model, layers).attribute(inputs, baselines, target=0)
    assert_all_close(to_outputs, theirs, **EXACT)
    last = inputs[3] if fourth_input else inputs[0]
    last_base = baselines[3] if fourth_input else baselines[1]
    outputs_ig = captum.IntegratedGradients(lambda a, b: a + b).attribute(
        (model.m1(inputs[0]).detach(), model.m234(inputs[1], inputs[2], last, 1).detach()),
        (model.m1(baselines[0]).detach(), model.m234(baselines[1], baselines[2], last_base, 1).detach()), target=0)
    assert_all_close(tuple(to_outputs), outputs_ig, atol=1e-7, rtol=0.0)


# --- Layers whose value is a tuple: an LSTM, attention, archlab's transformer block ------------------

class BatchFirstStates(nn.Module):
    """An LSTM whose output is flat and batch-first, ``(out, h_n^T, c_n^T)``: the same tensors as
    the LSTM's ``(out, (h_n, c_n))``, in the one layout Captum can attribute."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return out, h.transpose(0, 1), c.transpose(0, 1)


class LSTMModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = BatchFirstStates(nn.LSTM(3, 4, num_layers=2, batch_first=True))
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        out, h, c = self.rnn(x)
        h, c = h.transpose(0, 1), c.transpose(0, 1)  # (num_layers, B, H)
        return self.head(out.mean(1) + torch.tanh(h[-1]) + h[0] * c[-1])


@pytest.fixture
def lstm_model():
    torch.manual_seed(0)
    model = LSTMModel().double()
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    return model, x


def test_gradcam_on_an_lstm(lstm_model):
    """Ours on the LSTM itself, nested ``(out, (h, c))`` with its states batch-second; Captum's on
    the flat batch-first wrapper (Captum cannot take a nested value)."""
    model, x = lstm_model
    y = torch.tensor([0, 2, 1])
    ours = GradCAM(model, model.rnn.lstm).attribute(x, y, relu_attributions=False, upsample=False)
    out, (h, c) = ours
    theirs = captum.LayerGradCam(model, model.rnn).attribute(x, target=y)
    assert out.shape == (3, 1, 4) and h.shape == (3, 1, 4)  # per-time maps weighted over hidden units; layers summed
    assert_all_close((out, h, c), theirs, **EXACT)
    per_channel = GradCAM(model, model.rnn.lstm).attribute(x, y, upsample=False, attr_dim_summation=False)
    theirs = captum.LayerGradCam(model, model.rnn).attribute(x, target=y, attr_dim_summation=False,
                                                             relu_attributions=True)
    assert_all_close((per_channel[0], *per_channel[1]), theirs, **EXACT)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_lig_on_an_lstm(method, lstm_model, captum_nodes):
    model, x = lstm_model
    ours, delta = LayerIntegratedGradients(model, model.rnn.lstm).attribute(
        x, 1, baselines=0.1, n_steps=12, method=method, internal_batch_size=9, return_convergence_delta=True)
    out, (h, c) = ours
    assert out.shape == x.shape[:2] + (4,) and h.shape == c.shape == (2, 3, 4)  # shaped like the LSTM's value
    theirs, their_delta = captum.LayerIntegratedGradients(model, model.rnn).attribute(
        x, baselines=0.1, target=1, n_steps=12, method=method, return_convergence_delta=True)
    assert_all_close((out, h.transpose(0, 1), c.transpose(0, 1)), theirs, **EXACT)
    assert_close(delta, their_delta, **EXACT)


def test_layer_methods_on_the_input_of_an_lstm(lstm_model, captum_nodes):
    model, x = lstm_model
    ours = GradCAM(model, model.rnn.lstm).attribute(x, 2, attribute_to_layer_input=True, relu_attributions=False,
                                                     upsample=False)
    theirs = captum.LayerGradCam(model, model.rnn.lstm).attribute(x, target=2, attribute_to_layer_input=True)
    assert_close(ours, theirs.detach(), **EXACT)
    ours = LayerIntegratedGradients(model, model.rnn.lstm).attribute(x, 2, attribute_to_layer_input=True, n_steps=8)
    theirs = captum.LayerIntegratedGradients(model, model.rnn.lstm).attribute(
        x, target=2, attribute_to_layer_input=True, n_steps=8)
    assert_close(ours, theirs, **EXACT)


class AttentionModel(nn.Module):
    """torch's attention, whose output ``(output, weights)`` feeds the prediction through both."""

    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(6, 2, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        output, weights = self.attention(x, x, x)  # weights (B, T, T), averaged over heads
        return self.head(output.mean(1)) + (weights * torch.arange(x.shape[1], dtype=x.dtype)).sum((1, 2))[:, None]


def test_layer_methods_on_attention_returning_output_and_weights(captum_nodes):
    torch.manual_seed(0)
    model = AttentionModel().double().eval()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    ours = GradCAM(model, model.attention).attribute(x, 1, relu_attributions=False, upsample=False)
    assert_all_close(ours, captum.LayerGradCam(model, model.attention).attribute(x, target=1), **EXACT)
    ours = LayerIntegratedGradients(model, model.attention).attribute(x, 1, n_steps=10)
    theirs = captum.LayerIntegratedGradients(model, model.attention).attribute(x, target=1, n_steps=10)
    assert_all_close(ours, theirs, **EXACT)


class BlockModel(nn.Module):
    """archlab's transformer block, whose value is ``(output, None)`` without attention weights;
    `tap` passes the block's output on unchanged, as a one-tensor layer Captum can attribute."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.block = TransformerBlock(8, 2)
        self.tap = nn.Identity()
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        h, _ = self.block(self.embedding(ids))
        return self.head(self.tap(h).mean(1))


def test_layer_methods_on_archlabs_transformer_block(captum_nodes):
    torch.manual_seed(0)
    model = BlockModel().double().eval()
    ids = torch.randint(1, 20, (3, 6))
    y = torch.tensor([2, 0, 1])
    cam, weights = GradCAM(model, model.block).attribute(ids, y, relu_attributions=False, upsample=False)
    assert weights is None
    assert_close(cam, captum.LayerGradCam(model, model.tap).attribute(ids, target=y).detach(), **EXACT)
    attributions, weights = LayerIntegratedGradients(model, model.block).attribute(ids, y, n_steps=10)
    assert weights is None
    theirs = captum.LayerIntegratedGradients(model, model.tap).attribute(ids, target=y, n_steps=10)
    assert_close(attributions, theirs, **EXACT)
    # the block's input is the embedding's output
    to_input = LayerIntegratedGradients(model, model.block).attribute(ids, y, n_steps=10,
                                                                      attribute_to_layer_input=True)
    theirs = captum.LayerIntegratedGradients(model, model.embedding).attribute(ids, target=y, n_steps=10)
    assert_close(to_input, theirs, **EXACT)


# --- BERT: Hugging Face's BertModel, layer IG over its three embeddings --------------------------------

@pytest.mark.filterwarnings("ignore:Multiple layers provided")
def test_lig_over_hugging_face_bert_embeddings(captum_nodes):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, type_vocab_size=2,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    bert = transformers.BertModel(config).double().eval()

    def forward(input_ids, token_type_ids, position_ids):
        return bert(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids).pooler_output

    ids = torch.tensor([[2, 7, 11, 5, 3, 9, 3], [2, 15, 8, 3, 21, 30, 3]])  # 2 = [CLS], 3 = [SEP]
    token_types = torch.tensor([[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]])
    positions = torch.arange(7).expand(2, 7)
    ref_ids = torch.tensor([[2, 0, 0, 0, 0, 0, 3]])  # [CLS] padding [SEP], one row for the batch
    ref_types = torch.zeros(1, 7, dtype=torch.long)
    ref_positions = torch.zeros(1, 7, dtype=torch.long)
    embeddings = bert.embeddings
    layers = [embeddings.word_embeddings, embeddings.token_type_embeddings, embeddings.position_embeddings]
    inputs, baselines = (ids, token_types, positions), (ref_ids, ref_types, ref_positions)
    ours, delta = LayerIntegratedGradients(forward, layers).attribute(
        inputs, 3, baselines=baselines, n_steps=20, return_convergence_delta=True)
    theirs, their_delta = captum.LayerIntegratedGradients(forward, layers).attribute(
        inputs, baselines=baselines, target=3, n_steps=20, return_convergence_delta=True)
    assert [a.shape for a in ours] == [(2, 7, 16)] * 3
    assert_all_close(ours, theirs, **EXACT)
    assert_close(delta, their_delta, **EXACT)
    # Captum's BERT recipe: one score per token, the embeddings' attributions summed
    tokens = sum(a.sum(-1) for a in ours)
    gap = forward(*inputs) - forward(ref_ids.expand(2, 7), ref_types, ref_positions)
    assert_close(tokens.sum(1) - delta, gap[:, 3].detach(), **EXACT)


# --- archlab's own text models (already covered before this issue) ----------------------------------

@pytest.mark.parametrize("name,extra,method", [
    ("lstm", {"hidden_dim": 12}, "gausslegendre"),
    ("lstm", {"hidden_dim": 12}, "riemann_trapezoid"),
    ("gru", {"hidden_dim": 12, "bidirectional": True, "pooling": "mean"}, "riemann_middle"),
    ("transformer", {"num_heads": 2, "context_length": 16}, "gausslegendre"),
    ("transformer", {"num_heads": 2, "context_length": 16, "pooling": "cls"}, "riemann_left"),
])
def test_layer_integrated_gradients_on_the_embedding_matches_captum(name, extra, method, monkeypatch):
    torch.manual_seed(0)
    model = archlab.create_model(name, vocab_size=30, embed_dim=8, num_classes=3, **extra).double().eval()
    x = torch.randint(1, 30, (4, 10))
    lengths = torch.tensor([10, 7, 5, 10])
    y = torch.tensor([0, 1, 2, 1])
    baselines = torch.zeros_like(x)
    theirs, their_delta = captum.LayerIntegratedGradients(model, model.embedding).attribute(
        x, target=y, baselines=baselines, additional_forward_args=(lengths,), n_steps=16, method=method,
        return_convergence_delta=True)
    monkeypatch.setattr(lig_module, "quadrature", captum_quadrature)
    ours, delta = LayerIntegratedGradients(model, model.embedding).attribute(
        x, y, baselines=baselines, additional_forward_args=(lengths,), n_steps=16, method=method,
        internal_batch_size=12, return_convergence_delta=True)
    assert_close(ours, theirs, atol=1e-8, rtol=0.0)
    assert_close(delta, their_delta, atol=1e-8, rtol=0.0)
    tokens = TokenAttribution(model).attribute(x, y, baselines=baselines, additional_forward_args=(lengths,),
                                               n_steps=16, method=method)
    assert_close(tokens, theirs.sum(-1), atol=1e-8, rtol=0.0)
