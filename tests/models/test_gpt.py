"""The GPT language model: cached generation, sampling, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from archlab import create_model, model_info
from archlab.data.text import text_spec
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


def test_a_compiled_model_refuses_out_of_range_ids_as_an_eager_one():
    # the range check reads the ids back, which dynamo cannot trace: it must run outside the graph, not be skipped
    model = small_gpt()
    model.compile(backend="eager")
    x = torch.tensor([[3, 4]])
    torch.testing.assert_close(model(x), model._call_impl(x))
    for bad in ([[3, 13]], [[-1, 2]]):
        with pytest.raises(DataError, match=r"token ids must be in \[0, 13\) \(vocab_size\); got values from"):
            model(torch.tensor(bad))


def test_torch_export_traces_the_model_without_the_range_check():
    model = small_gpt()
    x = torch.tensor([[3, 4, 5]])
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


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


CHARS = text_spec("chars", vocab_size=65, context_length=8, num_classes=65, target="next-token")
# nanoGPT's GPT (model.py) in archlab's parameter names: the residual projections it calls c_proj
NANOGPT_RESIDUAL = ("attention.out_proj.weight", "mlp.2.weight")
NANOGPT_MATRICES = ("embedding.weight", "positional.embedding.weight", "attention.in_proj.weight",
                    *NANOGPT_RESIDUAL, "mlp.0.weight")


@pytest.mark.parametrize("bias", [False, True])
def test_initialization_is_nanogpts(bias):
    torch.manual_seed(0)
    layers = 4
    model = create_model("gpt", vocab_size=65, num_layers=layers, num_heads=4, embed_dim=128, context_length=64,
                         bias=bias)
    for name, p in model.named_parameters():
        if name.endswith(NANOGPT_MATRICES):  # normal(0, 0.02); c_proj: 0.02 / sqrt(2 * n_layer)
            std = 0.02 / math.sqrt(2 * layers) if name.endswith(NANOGPT_RESIDUAL) else 0.02
            assert p.std().item() == pytest.approx(std, rel=0.04), name
            assert abs(p.mean().item()) < 4 * std / math.sqrt(p.numel()), name
        elif name.endswith("bias"):  # Linear biases zero; LayerNorm (weight 1, bias 0)
            assert torch.equal(p, torch.zeros_like(p)), name
        else:
            assert name.endswith(("norm1.weight", "norm2.weight", "norm.weight")), name
            assert torch.equal(p, torch.ones_like(p)), name


@pytest.mark.parametrize("bias", [False, True])
def test_weight_decay_and_betas_are_nanogpts(bias):
    from functools import partial

    from archlab.engine import build_optimizer

    model = create_model("gpt", vocab_size=65, num_layers=2, num_heads=2, embed_dim=16, context_length=8, bias=bias)
    (opt,) = model_info("gpt").task_factory(model, CHARS).configure_optimizers(
        model, partial(build_optimizer, name="adamw", lr=1e-3, weight_decay=0.1))
    names = {id(p): n for n, p in model.named_parameters()}  # the tied lm_head.weight is embedding.weight
    groups = [{names[id(p)] for p in g["params"]} for g in opt.param_groups]
    decayed = {n for n in names.values() if n.endswith(NANOGPT_MATRICES)}
    assert groups == [decayed, set(names.values()) - decayed]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all(g["betas"] == (0.9, 0.99) and g["eps"] == 1e-8 for g in opt.param_groups)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_training_defaults_give_nanogpts_schedule():
    from archlab.engine.optim import build_scheduler
    from archlab.jobs.train import train_config

    config = train_config("gpt", lr=1e-3)  # nanoGPT's shakespeare_char: lr 1e-3, min_lr 1e-4, warm-up 100
    assert (config.batch_size, config.weight_decay, config.grad_clip) == (12, 0.1, 1.0)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    sched = build_scheduler(opt, config.schedule, config.steps, config.warmup_steps, config.min_lr_ratio)
    for it in range(config.steps):
        if it < 100:
            expected = 1e-3 * (it + 1) / 101
        else:
            expected = 1e-4 + 0.5 * (1 + math.cos(math.pi * (it - 100) / (2000 - 100))) * (1e-3 - 1e-4)
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12), it
        opt.step()
        sched.step()


def test_activation_is_the_tanh_gelu_by_default_and_exact_on_request():
    from archlab.nn.gelu import TanhGELU

    assert isinstance(small_gpt().blocks[0].mlp[1], TanhGELU)
    exact = small_gpt(activation="gelu").blocks[0].mlp[1]
    assert isinstance(exact, torch.nn.GELU) and exact.approximate == "none"  # nanoGPT's nn.GELU()
    with pytest.raises(ConfigError, match=r"The 'activation' parameter of GPT must be one of"):
        small_gpt(activation="swish")
