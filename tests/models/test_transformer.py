"""The transformer encoder classifier and the BERT classifier."""

from __future__ import annotations

import pytest
import torch

from archlab import create_model
from archlab.errors import DataError


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "rotary"])
def test_padding_does_not_change_the_output(pooling, positional):
    torch.manual_seed(0)
    model = create_model("transformer", vocab_size=20, num_classes=3, embed_dim=16, num_heads=2, pooling=pooling,
                         positional=positional).eval()
    x = torch.randint(1, 20, (1, 5))
    padded = torch.cat([x, torch.zeros(1, 4, dtype=torch.long)], 1)
    torch.testing.assert_close(model(x), model(padded, lengths=torch.tensor([5])), rtol=0, atol=1e-5)


def test_attention_maps_contract():
    torch.manual_seed(0)
    model = create_model("transformer", vocab_size=20, embed_dim=16, num_heads=2, num_layers=3).eval()
    logits, attentions = model(torch.randint(1, 20, (4, 6)), lengths=torch.tensor([6, 2, 3, 1]),
                               return_attention=True)
    assert logits.shape == (4, 2)
    assert len(attentions) == 3 and all(a.shape == (4, 2, 6, 6) for a in attentions)
    assert torch.all(attentions[0][1, :, :, 2:] == 0)  # the second sequence has 2 valid steps
    assert isinstance(model.embedding, torch.nn.Embedding)


def test_continuous_sequences():
    torch.manual_seed(0)
    model = create_model("transformer", input_dim=8, num_classes=10, embed_dim=16, num_heads=2, pooling="cls")
    assert model(torch.randn(3, 8, 8)).shape == (3, 10)
    with pytest.raises(DataError, match=r"shape \(batch, steps, 8\)"):
        model(torch.randn(3, 8, 7))


def test_bad_input_is_refused():
    model = create_model("transformer", vocab_size=20, embed_dim=16, num_heads=2, context_length=8)
    with pytest.raises(DataError, match="longer than the context of 8"):
        model(torch.ones(1, 9, dtype=torch.long))
    with pytest.raises(DataError, match=r"token ids must be in \[0, 20\)"):
        model(torch.tensor([[1, 25]]))
    with pytest.raises(DataError, match=r"lengths must have shape \(2,\)"):
        model(torch.ones(2, 4, dtype=torch.long), lengths=torch.tensor([4, 4, 4]))
    with pytest.raises(DataError, match=r"lengths must be in \[1, 4\]"):
        model(torch.ones(2, 4, dtype=torch.long), lengths=torch.tensor([4, 0]))


def test_bert_classifier_contract():
    torch.manual_seed(0)
    model = create_model("bert", vocab_size=30, embed_dim=16, num_layers=2, num_heads=2, mlp_dim=32).eval()
    x = torch.randint(5, 30, (2, 6))
    logits, attentions = model(x, lengths=torch.tensor([6, 3]), return_attention=True)
    assert logits.shape == (2, 2) and len(attentions) == 2 and attentions[0].shape == (2, 2, 6, 6)
    assert model.embedding is model.bert.embeddings.word
    with pytest.raises(DataError, match="attention_mask must have the shape of the token ids"):
        model(x, attention_mask=torch.ones(2, 5))
