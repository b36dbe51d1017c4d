"""The GPT language model: cached generation, sampling, bad input."""

from __future__ import annotations

import pytest
import torch

from archlab import create_model
from archlab.errors import ConfigError, DataError
from archlab.models.gpt import GPT, sample_next


def small_gpt(**kwargs):
    torch.manual_seed(0)
    return create_model("gpt", **{"vocab_size": 13, "num_layers": 2, "num_heads": 2, "embed_dim": 16,
                                  "context_length": 12, **kwargs}).eval()


@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_cached_generation_equals_full_recompute(positional):
    model = small_gpt(positional=positional)
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    # 20 new tokens run past the context of 12, where the window slides
    cached = model.generate(prompt, 20, temperature=0)
    full = model.generate(prompt, 20, temperature=0, use_cache=False)
    assert cached.shape == (2, 23)
    torch.testing.assert_close(cached, full, rtol=0, atol=0)
    a = model.generate(prompt[0], 8, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt[0], 8, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(3),
                       use_cache=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_weights_are_tied_and_causal():
    model = small_gpt()
    assert model.lm_head.weight is model.embedding.weight
    x = torch.randint(0, 13, (1, 10))
    y = x.clone()
    y[0, 6:] = (y[0, 6:] + 1) % 13
    torch.testing.assert_close(model(x)[:, :6], model(y)[:, :6])


def test_attention_maps_are_returned_per_layer():
    model = small_gpt()
    logits, attentions = model(torch.randint(0, 13, (3, 7)), return_attention=True)
    assert logits.shape == (3, 7, 13)
    assert len(attentions) == 2 and all(a.shape == (3, 2, 7, 7) for a in attentions)
    assert torch.all(attentions[0].triu(1) == 0)  # no weight on the future


def test_sampling_filters():
    logits = torch.tensor([[0.0, 1.0, 3.0, 2.0]])
    g = torch.Generator().manual_seed(0)
    assert sample_next(logits, 0).item() == 2
    assert {sample_next(logits, 1.0, top_k=1, generator=g).item() for _ in range(20)} == {2}
    # softmax([0,1,3,2]) = [.03,.09,.64,.24]: top_p=0.8 keeps tokens 2 and 3 only
    assert {sample_next(logits, 1.0, top_p=0.8, generator=g).item() for _ in range(200)} == {2, 3}


def test_bad_input_is_refused():
    model = small_gpt()
    with pytest.raises(DataError, match="longer than the context of 12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(DataError, match=r"token ids must be in \[0, 13\)"):
        model(torch.tensor([[3, 13]]))
    with pytest.raises(DataError, match="integer dtype"):
        model(torch.zeros(1, 3))
    with pytest.raises(ConfigError, match=r"The 'top_p' parameter of GPT\.generate must be a float in \(0, 1\] or None\. "
                                          r"Got 1\.5 instead\."):
        model.generate(torch.tensor([1]), 3, top_p=1.5)
    with pytest.raises(ValueError, match="prompt must be non-empty"):
        model.generate(torch.zeros(0, dtype=torch.long), 3)


def test_generate_never_samples_suppressed_tokens():
    torch.manual_seed(0)
    model = GPT(vocab_size=5, num_layers=1, num_heads=1, embed_dim=8, context_length=8)
    prompt = torch.tensor([0, 1])
    out = model.generate(prompt, 20, generator=torch.Generator().manual_seed(0), suppress_tokens=[0, 1, 2, 3])
    assert (out[2:] == 4).all()  # the only token left, sampled and past the context
    free = model.generate(prompt, 20, generator=torch.Generator().manual_seed(0))
    assert (free[2:] != 4).any()
    greedy = model.generate(prompt, 5, temperature=0.0)
    banned = int(greedy[2])
    assert banned not in model.generate(prompt, 5, temperature=0.0, suppress_tokens=[banned])[2:].tolist()
    with pytest.raises(ValueError, match="suppress_tokens"):
        model.generate(prompt, 1, suppress_tokens=[5])
