"""BERT (Devlin et al., 2019) with Hugging Face's `BertModel` architecture, and `from_hf`
to load a `transformers` BERT checkpoint folder without `transformers`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..engine.checkpoint import load_tensor_file
from ..errors import CheckpointError, DataError
from ..nn import TransformerBlock
from ..validation import check_int
from .registry import register_model
from .text_inputs import check_token_ids, mask_from_attention_mask, padding_mask

HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, vocab_size: int, embed_dim: int, context_length: int, type_vocab_size: int,
                 layer_norm_eps: float, dropout: float, padding_idx: int = 0):
        super().__init__()
        self.word = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.position = nn.Embedding(context_length, embed_dim)
        self.token_type = nn.Embedding(type_vocab_size, embed_dim)
        self.norm = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        return self.dropout(self.norm(h))


class BertModel(nn.Module):
    r"""The BERT encoder: embeddings, post-LN blocks with exact GELU, and the pooler
    :math:`\tanh(W h_{[CLS]} + b)`.

    ``forward`` returns ``(last_hidden_state, pooler_output)``, plus the attention maps
    (a list of ``(B, num_heads, T, T)``) with `return_attention`.

    Shapes:
        input_ids, attention_mask (1 keep, 0 padding), token_type_ids ``(B, T)``;
        last_hidden_state ``(B, T, embed_dim)``; pooler_output ``(B, embed_dim)``.
    """

    def __init__(self, vocab_size: int = 30522, embed_dim: int = 256, num_layers: int = 4, num_heads: int = 4,
                 mlp_dim: int = 1024, context_length: int = 512, type_vocab_size: int = 2, dropout: float = 0.1,
                 attention_dropout: float = 0.1, layer_norm_eps: float = 1e-12, activation: str = "gelu",
                 padding_idx: int = 0):
        super().__init__()
        check_int("BertModel", "num_layers", num_layers, minimum=1)
        self.vocab_size = vocab_size
        self.context_length = context_length
        self.type_vocab_size = type_vocab_size
        self.embeddings = BertEmbeddings(vocab_size, embed_dim, context_length, type_vocab_size, layer_norm_eps,
                                         dropout, padding_idx)
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dim, num_heads, mlp_dim, dropout=dropout, attention_dropout=attention_dropout,
                             activation=activation, norm_first=False, layer_norm_eps=layer_norm_eps)
            for _ in range(num_layers))
        self.pooler = nn.Linear(embed_dim, embed_dim)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:  # as BertPreTrainedModel
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, key_padding_mask: torch.Tensor | None = None,
                return_attention: bool = False):
        check_token_ids(input_ids, self.vocab_size, self.context_length, type(self).__name__)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        elif tuple(token_type_ids.shape) != tuple(input_ids.shape):
            raise DataError(f"token_type_ids must have the shape of the token ids {tuple(input_ids.shape)}; "
                            f"got {tuple(token_type_ids.shape)}.")
        elif token_type_ids.numel() and (int(token_type_ids.min()) < 0
                                         or int(token_type_ids.max()) >= self.type_vocab_size):
            raise DataError(f"token_type_ids must be in [0, {self.type_vocab_size}) (type_vocab_size).")
        pad = mask_from_attention_mask(attention_mask, input_ids)
        if key_padding_mask is not None:
            pad = key_padding_mask if pad is None else pad | key_padding_mask
        h = self.embeddings(input_ids, token_type_ids)
        attentions = []
        for block in self.blocks:
            h, weights = block(h, key_padding_mask=pad, need_weights=return_attention)
            attentions.append(weights)
        pooled = torch.tanh(self.pooler(h[:, 0]))
        return (h, pooled, attentions) if return_attention else (h, pooled)


class BertClassifier(nn.Module):
    """`BertModel`, dropout, and a linear head on the pooler output (as
    ``BertForSequenceClassification``). ``model.embedding`` is the word embedding.

    Shapes:
        input ``(B, T)`` token ids (the [CLS] token first); output ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int = 2, dropout: float = 0.1, **bert_kwargs):
        super().__init__()
        self.bert = BertModel(dropout=dropout, **bert_kwargs)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.bert.pooler.out_features, num_classes)
        self.context_length = self.bert.context_length

    @property
    def embedding(self) -> nn.Embedding:
        return self.bert.embeddings.word

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, *, attention_mask=None,
                token_type_ids=None, return_attention: bool = False):
        pad = padding_mask(lengths, x.shape[0], x.shape[1], x.device) if lengths is not None else None
        out = self.bert(x, attention_mask, token_type_ids, key_padding_mask=pad, return_attention=return_attention)
        logits = self.head(self.dropout(out[1]))
        return (logits, out[2]) if return_attention else logits


# ---- Hugging Face checkpoints -------------------------------------------------------------


def hf_config_kwargs(path: str | os.PathLike) -> dict:
    """`BertModel` keyword arguments from a Hugging Face ``config.json``."""
    file = Path(path) / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: from_hf expects a folder written by "
                                "transformers' save_pretrained (config.json + model.safetensors).")
    config = json.loads(file.read_text())
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"{file}: only absolute position embeddings are supported; "
                              f"got {config['position_embedding_type']!r}.")
    if config.get("hidden_act", "gelu") not in HF_ACTIVATIONS:
        raise CheckpointError(f"{file}: hidden_act must be one of {sorted(HF_ACTIVATIONS)}; "
                              f"got {config['hidden_act']!r}.")
    return {
        "vocab_size": config["vocab_size"], "embed_dim": config["hidden_size"],
        "num_layers": config["num_hidden_layers"], "num_heads": config["num_attention_heads"],
        "mlp_dim": config["intermediate_size"], "context_length": config["max_position_embeddings"],
        "type_vocab_size": config.get("type_vocab_size", 2),
        "dropout": config.get("hidden_dropout_prob", 0.1),
        "attention_dropout": config.get("attention_probs_dropout_prob", 0.1),
        "layer_norm_eps": config.get("layer_norm_eps", 1e-12),
        "activation": HF_ACTIVATIONS[config.get("hidden_act", "gelu")],
        "padding_idx": config.get("pad_token_id", 0) or 0,
    }


def read_hf_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` (else ``pytorch_model.bin``, tensors only: a pickle holding
    anything else is refused, never run), with a ``bert.`` prefix removed and legacy LayerNorm
    ``gamma``/``beta`` renamed."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(path / "model.safetensors")
    elif (path / "pytorch_model.bin").is_file():
        state = load_tensor_file(path / "pytorch_model.bin")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path / 'pytorch_model.bin'} holds a {type(state).__name__}, not a state dict "
                                  "of named tensors.")
    else:
        raise FileNotFoundError(f"{path} has neither model.safetensors nor pytorch_model.bin.")
    out = {}
    for key, value in state.items():
        key = key.removeprefix("bert.")
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out[key] = value
    return out


def _hf_names(num_layers: int) -> dict[str, str | tuple[str, ...]]:
    """archlab parameter -> Hugging Face tensor(s); a tuple is concatenated (query, key, value)."""
    names: dict[str, str | tuple[str, ...]] = {
        "embeddings.word.weight": "embeddings.word_embeddings.weight",
        "embeddings.position.weight": "embeddings.position_embeddings.weight",
        "embeddings.token_type.weight": "embeddings.token_type_embeddings.weight",
        "embeddings.norm.weight": "embeddings.LayerNorm.weight",
        "embeddings.norm.bias": "embeddings.LayerNorm.bias",
        "pooler.weight": "pooler.dense.weight",
        "pooler.bias": "pooler.dense.bias",
    }
    for i in range(num_layers):
        ours, hf = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            names[f"{ours}attention.in_proj.{kind}"] = tuple(f"{hf}attention.self.{p}.{kind}"
                                                             for p in ("query", "key", "value"))
            names[f"{ours}attention.out_proj.{kind}"] = f"{hf}attention.output.dense.{kind}"
            names[f"{ours}norm1.{kind}"] = f"{hf}attention.output.LayerNorm.{kind}"
            names[f"{ours}mlp.0.{kind}"] = f"{hf}intermediate.dense.{kind}"
            names[f"{ours}mlp.2.{kind}"] = f"{hf}output.dense.{kind}"
            names[f"{ours}norm2.{kind}"] = f"{hf}output.LayerNorm.{kind}"
    return names


def load_hf_weights(model: BertModel, path: str | os.PathLike) -> BertModel:
    """Copy a Hugging Face BERT checkpoint's tensors into `model`; a missing tensor or a shape
    mismatch raises `CheckpointError` naming the tensor (and both shapes)."""
    hf = read_hf_state(path)
    own = model.state_dict()
    new = {}
    for name, source in _hf_names(len(model.blocks)).items():
        parts = source if isinstance(source, tuple) else (source,)
        missing = [p for p in parts if p not in hf]
        if missing:
            raise CheckpointError(f"{path}: tensor '{missing[0]}' (for {name}) is missing from the checkpoint.")
        tensor = torch.cat([hf[p] for p in parts]) if len(parts) > 1 else hf[parts[0]]
        if tuple(tensor.shape) != tuple(own[name].shape):
            shapes = " + ".join(f"{p} {tuple(hf[p].shape)}" for p in parts)
            raise CheckpointError(f"{path}: tensor '{parts[0]}' has shape {shapes}, but the model expects "
                                  f"{tuple(own[name].shape)} for {name} (check config.json against the weights).")
        new[name] = tensor.to(own[name].dtype)
    model.load_state_dict(new)
    return model


def from_hf(path: str | os.PathLike) -> BertModel:
    """A `BertModel` with the architecture of ``path/config.json`` and the weights of a
    `transformers` checkpoint folder, in eval mode."""
    return load_hf_weights(BertModel(**hf_config_kwargs(path)), path).eval()


def hf_pretrained(path: Path) -> tuple[dict, str]:
    """The `bert` hyperparameters of a Hugging Face BERT folder and the folder of its vocabulary.
    The vocabulary size comes from the data, tokenized with the folder's own vocabulary."""
    kwargs = hf_config_kwargs(path)
    kwargs.pop("vocab_size")
    folder = str(Path(path).resolve())
    return {**kwargs, "pretrained": folder}, folder


@register_model("bert", family="transformer", data_kinds=("text",), pretrained=hf_pretrained,
                train_defaults={"epochs": 3, "batch_size": 32, "lr": 5e-5, "weight_decay": 0.01,
                                "schedule": "linear", "warmup_steps": 100, "grad_clip": 1.0})
def bert(vocab_size: int = 30522, num_classes: int = 2, embed_dim: int = 256, num_layers: int = 4, num_heads: int = 4,
         mlp_dim: int = 1024, context_length: int = 512, type_vocab_size: int = 2, dropout: float = 0.1,
         attention_dropout: float = 0.1, layer_norm_eps: float = 1e-12, activation: str = "gelu",
         padding_idx: int = 0, pretrained: str | None = None) -> BertClassifier:
    """BERT sequence classifier (Hugging Face BertModel architecture; `pretrained` loads a transformers folder)."""
    model = BertClassifier(num_classes, dropout, vocab_size=vocab_size, embed_dim=embed_dim, num_layers=num_layers,
                           num_heads=num_heads, mlp_dim=mlp_dim, context_length=context_length,
                           type_vocab_size=type_vocab_size, attention_dropout=attention_dropout,
                           layer_norm_eps=layer_norm_eps, activation=activation, padding_idx=padding_idx)
    if pretrained is not None:
        load_hf_weights(model.bert, pretrained)
    return model
