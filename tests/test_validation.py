"""`archlab.validation`: one message style, and command-line text read against a parameter's type."""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence

import pytest

from archlab.errors import ConfigError
from archlab.validation import Text, check_choice, check_float, check_int, coerce


def test_messages_name_the_owner_the_parameter_the_rule_and_the_value():
    with pytest.raises(ConfigError, match=r"^The 'lr' parameter of TrainConfig must be a float > 0. Got -1 instead.$"):
        check_float("TrainConfig", "lr", -1, low=0, low_open=True)
    with pytest.raises(ConfigError, match=r"^The 'n_steps' parameter of IntegratedGradients must be an int >= 1. "
                                          r"Got 0 instead.$"):
        check_int("IntegratedGradients", "n_steps", 0, minimum=1)
    with pytest.raises(ConfigError, match=r"must be one of 'a', 'b'. Got 'c' instead."):
        check_choice("X", "mode", "c", ("a", "b"))
    with pytest.raises(ConfigError, match=r"must be an int >= 1 or None. Got True instead."):
        check_int("X", "patience", True, minimum=1, optional=True)
    check_int("X", "patience", None, minimum=1, optional=True)
    check_float("X", "rate", 0.5, low=0, high=1, low_open=True, high_open=True)


@pytest.mark.parametrize("text, annotation, expected", [
    ("False", bool, False), ("false", bool, False), ("true", bool, True), ("3", int, 3), ("3", float, 3.0),
    ("0.5", float, 0.5), ("gelu", str, "gelu"), ("[16, 32]", Sequence[int], [16, 32]), ("16,32", Sequence[int], [16, 32]),
    ("16", int | Sequence[int], 16), ("[28, 28]", int | Sequence[int], [28, 28]), ("null", str | None, None),
    ("none", int | None, None), ("mean", typing.Literal["last", "mean", "max"], "mean"),
    ("[0.5, 0.9]", tuple[float, float] | None, [0.5, 0.9]), ("1e-3", float, 1e-3),
])
def test_command_line_text_is_read_as_the_parameters_type(text, annotation, expected):
    value = coerce("model 'x'", "key", Text(text), annotation)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, annotation, expected", [
    ("yes", bool, "a bool (true or false)"), ("1.5", int, "an int"), ("[16,", Sequence[int], "a list of ints"),
    ("sum", typing.Literal["last", "mean"], "one of 'last', 'mean'"), ("[1, 2, 3]", tuple[float, float], "2 values"),
    ("abc", float, "a float"),
])
def test_text_that_fits_no_type_is_refused_by_name(text, annotation, expected):
    with pytest.raises(ConfigError, match=rf"^The 'key' parameter of model 'x' must be .*{re.escape(expected)}.*Got '"):
        coerce("model 'x'", "key", Text(text), annotation)


def test_values_from_python_are_left_to_the_constructors():
    assert coerce("model 'x'", "key", "0.01", float) == "0.01"
    assert coerce("model 'x'", "key", [1, 2], int) == [1, 2]


def _library_checks():
    """Parameter checks across the library that had their own wording before they used this module."""
    import torch

    from archlab.data.link_split import split_edges
    from archlab.meta import MAML
    from archlab.models.cnn import ResNet
    from archlab.models.gnn import GAT, GCN
    from archlab.models.gpt import GPT
    from archlab.models.transformer import TransformerClassifier
    from archlab.nn.attention import MultiHeadAttention
    from archlab.nn.gat import GATConv
    from archlab.nn.positional import RotaryEmbedding

    edges = torch.tensor([[0, 1], [1, 2]])
    return [
        (lambda: GCN(4, 2, num_layers=0), "The 'num_layers' parameter of GCN must be an int >= 1. Got 0 instead."),
        (lambda: GCN(4, 2, dropout=1), "The 'dropout' parameter of GCN must be a float in [0, 1). Got 1 instead."),
        (lambda: GAT(4, 2, dropout=-0.5), "The 'dropout' parameter of GAT must be a float in [0, 1). Got -0.5 instead."),
        (lambda: GATConv(4, 2, dropout=1.5),
         "The 'dropout' parameter of GATConv must be a float in [0, 1). Got 1.5 instead."),
        (lambda: MultiHeadAttention(8, 2, dropout=2),
         "The 'dropout' parameter of MultiHeadAttention must be a float in [0, 1). Got 2 instead."),
        (lambda: RotaryEmbedding(5, 8), "The 'head_dim' parameter of RotaryEmbedding must be an even int. Got 5 instead."),
        (lambda: GPT(positional="sinusoidal"),
         "The 'positional' parameter of GPT must be one of 'learned', 'rotary'. Got 'sinusoidal' instead."),
        (lambda: TransformerClassifier(positional="alibi"), "The 'positional' parameter of TransformerClassifier must be "
         "one of 'sinusoidal', 'learned', 'rotary'. Got 'alibi' instead."),
        (lambda: ResNet(channels=(4, 8), depths=(1,)),
         "The 'depths' parameter of ResNet must be a list of 2 ints, one per entry of channels. Got (1,) instead."),
        (lambda: split_edges(edges, 3, val_fraction=0.5, test_fraction=0.5),
         "The 'test_fraction' parameter of split_edges must be a float < 1 - val_fraction = 0.5. Got 0.5 instead."),
        (lambda: MAML(torch.nn.Linear(2, 2), kind="hinge"),
         "The 'kind' parameter of MAML must be one of 'classification', 'regression'. Got 'hinge' instead."),
    ]


@pytest.mark.parametrize("index", range(11))
def test_library_parameter_checks_speak_this_style(index):
    build, message = _library_checks()[index]
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        build()


def test_numpy_scalars_are_numbers():
    import numpy as np

    check_float("X", "rate", np.float32(0.5), low=0, high=1)
    check_int("X", "count", np.int64(3), minimum=1)
    with pytest.raises(ConfigError, match="Got 0 instead"):
        check_int("X", "count", np.int64(0), minimum=1)
