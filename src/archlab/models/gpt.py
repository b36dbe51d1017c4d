"""A decoder-only transformer language model (GPT-2 layout, as nanoGPT) with cached generation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..nn import ACTIVATIONS, KVCache, LearnedPositionalEmbedding, RotaryEmbedding, TransformerBlock
from ..validation import check_choice, check_float, check_int
from .language_modeling import language_modeling_task
from .registry import register_model
from .text_inputs import check_token_ids


class GPT(nn.Module):
    r"""Token + position embeddings, pre-LN causal blocks, a final layer norm, and an LM head
    tied to the token embedding (``model.embedding``).

    .. math::
        p_\theta(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(\mathrm{LN}(h^{(L)}_t)\, W_E^\top)

    Weights are initialised as GPT-2 and nanoGPT: normal(0, 0.02), residual projections
    (attention ``out_proj``, the MLP's second layer) scaled by :math:`1/\sqrt{2L}`. The MLP's
    `activation` is GPT-2's tanh GELU by default; nanoGPT uses the exact one (``"gelu"``).

    Shapes:
        input ``(B, T)`` token ids, ``T <= context_length``; output logits ``(B, T, vocab_size)``.
    """

    def __init__(self, vocab_size: int = 65, num_layers: int = 4, num_heads: int = 4, embed_dim: int = 128,
                 context_length: int = 64, dropout: float = 0.0, bias: bool = False, mlp_dim: int | None = None,
                 positional: str = "learned", activation: str = "gelu_tanh"):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("num_layers", num_layers), ("num_heads", num_heads),
                            ("embed_dim", embed_dim), ("context_length", context_length)):
            check_int("GPT", name, value, minimum=1)
        check_choice("GPT", "positional", positional, ("learned", "rotary"))
        check_choice("GPT", "activation", activation, tuple(ACTIVATIONS))
        self.vocab_size = vocab_size
        self.context_length = context_length
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        rotary = RotaryEmbedding(embed_dim // num_heads, context_length) if positional == "rotary" else None
        self.positional = LearnedPositionalEmbedding(embed_dim, context_length) if rotary is None else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dim, num_heads, mlp_dim, dropout=dropout, attention_dropout=dropout,
                             activation=activation, norm_first=True, bias=bias, rotary=rotary)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim, bias=bias)
        self.lm_head = nn.Linear(embed_dim, vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight  # weight tying (Press & Wolf, 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("attention.out_proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * num_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self, batch_size: int, max_length: int | None = None) -> list[KVCache]:
        """Empty key/value caches, one per layer."""
        return [block.attention.new_cache(batch_size, max_length or self.context_length) for block in self.blocks]

    def forward(self, x: torch.Tensor, *, cache: list[KVCache] | None = None, return_attention: bool = False):
        """Logits ``(B, T, vocab_size)``; with `return_attention`, ``(logits, attentions)``.
        With `cache`, `x` continues the cached steps."""
        offset = cache[0].length if cache is not None else 0
        check_token_ids(x, self.vocab_size, self.context_length - offset, type(self).__name__)
        h = self.embedding(x)  # (B, T, E)
        if self.positional is not None:
            h = self.positional(h, offset)
        h = self.dropout(h)
        attentions = []
        for i, block in enumerate(self.blocks):
            h, weights = block(h, is_causal=True, need_weights=return_attention,
                               cache=cache[i] if cache is not None else None)
            attentions.append(weights)
        logits = self.lm_head(self.norm(h))
        return (logits, attentions) if return_attention else logits

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, *, generator: torch.Generator | None = None, use_cache: bool = True,
                 suppress_tokens: Sequence[int] = ()) -> torch.Tensor:
        """Continue `prompt` ``(T,)`` or ``(B, T)`` by `max_new_tokens` sampled tokens.

        `temperature` 0 is greedy decoding; `top_k` keeps the k likeliest tokens and
        `top_p` the smallest set whose probability reaches p (nucleus sampling). With
        `use_cache` each new token costs one step through the key/value caches; past the
        context the window slides and every step recomputes it (positions shift).
        Returns the prompt followed by the new tokens, in the prompt's shape."""
        squeeze = prompt.dim() == 1
        idx = prompt[None] if squeeze else prompt
        if idx.dim() != 2 or idx.shape[1] == 0:
            raise ValueError(f"prompt must be non-empty token ids of shape (steps,) or (batch, steps); "
                             f"got {tuple(prompt.shape)}.")
        _check_sampling(max_new_tokens, temperature, top_k, top_p)
        was_training = self.training
        self.eval()
        cache = None
        suppressed = torch.tensor(sorted({int(t) for t in suppress_tokens}), dtype=torch.long, device=idx.device)
        if len(suppressed) and (int(suppressed.min()) < 0 or int(suppressed.max()) >= self.vocab_size):
            raise ValueError(f"suppress_tokens must be token ids in [0, {self.vocab_size}); got "
                             f"{suppressed.tolist()}.")
        for _ in range(max_new_tokens):
            if not use_cache:
                logits = self(idx[:, -self.context_length:])
            elif cache is None or cache[0].length == self.context_length:
                cache = self.new_cache(idx.shape[0])  # a new window: (re)fill the cache
                logits = self(idx[:, -self.context_length:], cache=cache)
            else:
                logits = self(idx[:, -1:], cache=cache)
            last = logits[:, -1]
            if len(suppressed):
                last = last.index_fill(-1, suppressed, float("-inf"))
            idx = torch.cat([idx, sample_next(last, temperature, top_k, top_p, generator)], dim=1)
        self.train(was_training)
        return idx[0] if squeeze else idx


def _check_sampling(max_new_tokens, temperature, top_k, top_p) -> None:
    check_int("GPT.generate", "max_new_tokens", max_new_tokens, minimum=0)
    check_float("GPT.generate", "temperature", temperature, low=0)  # 0 is greedy
    check_int("GPT.generate", "top_k", top_k, minimum=1, optional=True)
    check_float("GPT.generate", "top_p", top_p, low=0, high=1, low_open=True, optional=True)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of `logits` ``(B, V)``: greedy at temperature 0, else sampled
    from the temperature-scaled softmax restricted by `top_k` and `top_p`. Returns ``(B, 1)``."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)


@register_model("gpt", family="transformer", data_kinds=("text",), task=language_modeling_task,
                generates="text",
                # nanoGPT's schedule: warm-up, cosine decay to lr / 10; its optimizer is the task's
                train_defaults={"steps": 2000, "batch_size": 12, "lr": 2e-3, "weight_decay": 0.1,
                                "schedule": "cosine", "warmup_steps": 100, "min_lr_ratio": 0.1, "grad_clip": 1.0,
                                "eval_every": 500, "eval_batch_size": 256})
def gpt(vocab_size: int = 65, num_layers: int = 4, num_heads: int = 4, embed_dim: int = 128, context_length: int = 64,
        dropout: float = 0.0, bias: bool = False, mlp_dim: int | None = None, positional: str = "learned",
        activation: str = "gelu_tanh") -> GPT:
    """GPT decoder-only language model (pre-LN, causal, tied embeddings, KV-cached generation)."""
    return GPT(vocab_size, num_layers, num_heads, embed_dim, context_length, dropout, bias, mlp_dim, positional,
               activation)
