"""GradCAM on layers whose value is a tuple, on layer inputs and with several inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import archlab
from archlab.explain import GradCAM

EXACT = {"atol": 1e-10, "rtol": 0.0}


def gradcam_formula(activations: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_k \bar g_k A_k` for batch-first ``(B, C, *S)``, the gradient averaged over positions."""
    weights = grad.mean(dim=tuple(range(2, grad.dim())), keepdim=True) if grad.dim() > 2 else grad
    return (weights * activations).sum(1, keepdim=True)


class ConvNet(nn.Module):
    def __init__(self, inplace: bool):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.relu = nn.ReLU(inplace=inplace)
        self.head = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).flatten(1))


def test_an_in_place_op_after_the_layer_does_not_change_its_activations():
    """The map is of the convolution's own output, not of the ReLU that overwrites it in place."""
    torch.manual_seed(0)
    plain = ConvNet(inplace=False).double()
    inplace = ConvNet(inplace=True).double()
    inplace.load_state_dict(plain.state_dict())
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    expected = GradCAM(plain, plain.conv).attribute(x, 1, relu_attributions=False, upsample=False)
    assert (expected < 0).any()  # negative activations, which an in-place ReLU would clear
    assert_close(GradCAM(inplace, inplace.conv).attribute(x, 1, relu_attributions=False, upsample=False), expected,
                 **EXACT)


class GRUModel(nn.Module):
    """A time-major GRU: its sequence ``(T, B, H)`` and its states ``(layers, B, H)`` are batch-second."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, num_layers=2)
        self.head = nn.Linear(4, 2)

    def forward(self, x):  # x (B, T, 3)
        out, h = self.gru(x.transpose(0, 1))
        return self.head(out[-1] * h[0] + out.mean(0))


def test_recurrent_layers_are_read_batch_second():
    torch.manual_seed(0)
    model = GRUModel().double()
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    cam_out, cam_h = GradCAM(model, model.gru).attribute(x, 1, relu_attributions=False, upsample=False)
    (out, h), (grad_out, grad_h) = GradCAM(model, model.gru).layer_activations(x, 1)
    assert out.shape == (5, 3, 4) and h.shape == (2, 3, 4)  # the layer's own layout
    assert cam_out.shape == (3, 1, 4) and cam_h.shape == (3, 1, 4)  # maps are batch-first
    assert_close(cam_out, gradcam_formula(out.transpose(0, 1), grad_out.transpose(0, 1)), **EXACT)
    assert_close(cam_h, gradcam_formula(h.transpose(0, 1), grad_h.transpose(0, 1)), **EXACT)
    # each example's map depends on that example alone
    alone = GradCAM(model, model.gru).attribute(x[1:2], 1, relu_attributions=False, upsample=False)
    assert_close(alone[1], cam_h[1:2], **EXACT)


class BranchModel(nn.Module):
    """A layer returning ``(used, unused, None)``: only the first tensor reaches the output."""

    class Branches(nn.Module):
        def forward(self, x):
            return x * 2.0, x - 1.0, None

    def __init__(self):
        super().__init__()
        self.branches = self.Branches()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        used, _, _ = self.branches(x)
        return self.head(used)


def test_tuple_values_keep_their_shape_with_zero_maps_for_unused_tensors():
    torch.manual_seed(0)
    model = BranchModel().double()
    x = torch.randn(2, 4, dtype=torch.float64)
    used, unused, absent = GradCAM(model, model.branches).attribute(x, 0, relu_attributions=False, upsample=False)
    assert absent is None
    assert_close(unused, torch.zeros(2, 1, dtype=torch.float64))
    expected = (2 * x * model.head.weight[0]).sum(1, keepdim=True)  # activation 2x, gradient w
    assert_close(used, expected, **EXACT)


def test_upsampling_needs_one_spatial_map():
    torch.manual_seed(0)
    model = BranchModel().double()
    x = torch.randn(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"a tuple of 3 values; upsampling .* pass upsample=False"):
        GradCAM(model, model.branches).attribute(x, 0)
    with pytest.raises(ValueError, match=r"cannot upsample a map of shape \(2, 1\)"):
        GradCAM(model, model.head).attribute(x, 0, attribute_to_layer_input=True)


def test_the_layer_input_of_a_convolution_is_its_image():
    torch.manual_seed(0)
    model = ConvNet(inplace=False).double()
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    x_grad = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x_grad)[:, 0].sum(), x_grad)
    ours = GradCAM(model, model.conv).attribute(x, 0, attribute_to_layer_input=True, relu_attributions=False)
    assert_close(ours, gradcam_formula(x, grad), **EXACT)  # upsampling a map of the image's size keeps it


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.head = nn.Linear(2 * 5 * 5 + 3, 2)

    def forward(self, image, features):
        return self.head(torch.cat([self.conv(image).flatten(1), features], dim=1))


def test_a_tuple_of_inputs_is_forwarded_as_separate_arguments():
    torch.manual_seed(0)
    model = TwoInputs().double()
    image, features = torch.randn(2, 1, 5, 5, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    cam = GradCAM(model, model.conv).attribute((image, features), 1)
    assert cam.shape == (2, 1, 5, 5)  # upsampled to the first input's size
    single = GradCAM(lambda x: model(x, features), model.conv).attribute(image, 1)
    assert_close(cam, single, **EXACT)
    with pytest.raises(ValueError, match="every input must have the same batch size first"):
        GradCAM(model, model.conv).attribute((image, features[:1]), 1)


def test_packed_sequences_are_refused():
    torch.manual_seed(0)
    model = archlab.create_model("lstm", vocab_size=20, embed_dim=4, hidden_dim=5, num_classes=2)
    x = torch.randint(1, 20, (2, 6))
    with pytest.raises(ValueError, match="the layer's output is a PackedSequence"):
        GradCAM(model, model.rnn).attribute(x, 0, additional_forward_args=(torch.tensor([6, 4]),), upsample=False)
    out, (h, c) = GradCAM(model, model.rnn).attribute(x, 0, upsample=False)
    assert out.shape == (2, 1, 5) and h.shape == c.shape == (2, 1, 5)


def test_a_value_with_no_floating_point_tensor():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(ValueError, match=r"the layer's input holds no floating-point tensor \(torch.int64\)"):
        GradCAM(model, model[0]).attribute(torch.randint(0, 10, (2, 3)), 0, attribute_to_layer_input=True)


def test_a_layer_called_with_keyword_arguments_only():
    class Scale(nn.Module):
        def forward(self, *, x):
            return 2.0 * x

    scale = Scale()
    head = nn.Linear(3, 2).double()
    with pytest.raises(ValueError, match="holds no floating-point tensor \\(nothing: keyword arguments are not seen"):
        GradCAM(lambda x: head(scale(x=x)), scale).attribute(torch.ones(2, 3, dtype=torch.float64), 0,
                                                            attribute_to_layer_input=True, upsample=False)


def test_a_vision_transformer_is_mapped_over_its_patch_grid():
    """``reshape_transform`` lays the tokens out as (B, E, rows, columns) before the map is made:
    the weights are the gradient averaged over the patches, the [CLS] token left out."""
    torch.manual_seed(0)
    model = archlab.create_model("vit", in_channels=1, num_classes=3, input_size=12, patch_size=4, embed_dim=16,
                                 num_layers=2, num_heads=2).double().eval()
    x = torch.randn(3, 1, 12, 12, dtype=torch.float64)
    kept = {}
    handle = model.blocks[1].norm1.register_forward_hook(lambda m, i, out: kept.update(tokens=out))
    out = model(x)
    tokens = kept["tokens"]
    handle.remove()
    (grad,) = torch.autograd.grad(out[:, 2].sum(), tokens)
    expected = gradcam_formula(model.tokens_to_grid(tokens.detach()), model.tokens_to_grid(grad))
    explainer = GradCAM(model, model.gradcam_layer, reshape_transform=model.tokens_to_grid)
    cam = explainer.attribute(x, 2, relu_attributions=False, upsample=False)
    assert cam.shape == (3, 1, 3, 3)
    assert_close(cam, expected, **EXACT)
    image = explainer.attribute(x, 2)
    assert image.shape == (3, 1, 12, 12) and (image >= 0).all()
