"""Text datasets: Tiny Shakespeare (character LM), a generated arithmetic corpus (character
LM, needs no files), and GLUE SST-2 (sentence sentiment, BPE or word tokens)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset
from .registry import register_dataset
from .splits import stratified_holdout
from .text import TokenStream, pad_sentences, text_spec
from .tokenizer import TOKENIZER_FILE, CharTokenizer, SubwordTokenizer
from ..validation import check_choice, check_int

DEFAULT_CONTEXT_LENGTH = 256  # longest window of an LM batch; the LM task trims it to the model's context
TOKENIZATIONS = ("bpe", "word")  # how load_sst2 trains its vocabulary


def _char_lm(name: str, text: str, parts: dict[str, tuple[float, float]], seed: int, context_length: int,
             options: dict) -> Dataset:
    tokenizer = CharTokenizer.fit(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    n = len(ids)
    splits = {split: TokenStream(ids[int(a * n):int(b * n)], context_length) for split, (a, b) in parts.items()}
    spec = text_spec(name, vocab_size=tokenizer.vocab_size, context_length=context_length,
                     num_classes=tokenizer.vocab_size, target="next-token", options={"seed": seed, "context_length": context_length, **options})
    return Dataset(spec, splits, files={TOKENIZER_FILE: tokenizer.to_json()})


@register_dataset("tinyshakespeare", kind="text", folder="tinyshakespeare",
                  description="Tiny Shakespeare (char-rnn input.txt), character LM, first 90% train / last 10% val")
def load_tinyshakespeare(root: Path, seed: int = 0, context_length: int = DEFAULT_CONTEXT_LENGTH) -> Dataset:
    path = root / "input.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected char-rnn's Tiny Shakespeare input.txt (1,115,394 "
                                "characters) from github.com/karpathy/char-rnn, data/tinyshakespeare/input.txt.")
    text = path.read_text(encoding="utf-8")
    return _char_lm("tinyshakespeare", text, {"train": (0.0, 0.9), "val": (0.9, 1.0)}, seed, context_length, {})


def arithmetic_text(num_lines: int, seed: int, max_value: int = 999) -> str:
    """Lines ``a+b=c`` with random operands in ``[0, max_value]``, one per line."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, max_value + 1, size=(2, num_lines))
    return "".join(f"{x}+{y}={x + y}\n" for x, y in zip(a.tolist(), b.tolist()))


@register_dataset("arithmetic", kind="text",
                  description="generated additions 'a+b=c' (operands 0-999), character LM, 80/10/10 split")
def load_arithmetic(root, seed: int = 0, num_lines: int = 20000, context_length: int = 64) -> Dataset:
    check_int("load_arithmetic", "num_lines", num_lines, minimum=100)
    text = arithmetic_text(num_lines, seed)
    # every digit, '+', '=' and newline appear in any corpus of this size, so the vocabulary is fixed
    parts = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
    return _char_lm("arithmetic", text, parts, seed, context_length, {"num_lines": num_lines})


def read_glue_tsv(path: Path) -> tuple[list[str], list[int]]:
    """Sentences and labels of a GLUE SST-2 ``train.tsv``/``dev.tsv`` (header ``sentence<TAB>label``)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected the GLUE SST-2 {path.name} (columns sentence, label), "
                                "from the GLUE benchmark (gluebenchmark.com, SST-2.zip).")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0][:2] != ["sentence", "label"]:
        raise DataError(f"{path}: expected the header 'sentence<TAB>label'; got {rows[0] if rows else 'nothing'}.")
    sentences, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or row[1] not in ("0", "1"):
            raise DataError(f"{path}:{line}: expected 'sentence<TAB>0|1'; got {row!r}.")
        sentences.append(row[0].strip())
        labels.append(int(row[1]))
    return sentences, labels


@register_dataset("sst2", kind="text", folder="sst2",
                  description="GLUE SST-2 sentiment (train.tsv/dev.tsv): BPE or word tokens, dev as test, seeded val")
def load_sst2(root: Path, seed: int = 0, vocab_size: int | None = None, context_length: int = 128, val_size: int = 2000,
              tokenizer: str | None = None, tokenization: str = "word") -> Dataset:
    """`tokenizer` is a BERT folder whose vocabulary to use (``train bert --pretrained DIR``); otherwise a
    vocabulary of `vocab_size` is trained on the training sentences: whole lowercased words
    (``tokenization="word"``, the default: the most frequent 30,000, which is all of SST-2's)
    or byte-level BPE (``"bpe"``, 8,000 by default). From-scratch models do better on words
    (scripts/repro/sst2_from_scratch.py). Validation holds out
    `val_size` training sentences (stratified, by `seed`), or a tenth of a file with fewer
    than ``2 * val_size``."""
    check_choice("load_sst2", "tokenization", tokenization, TOKENIZATIONS)
    if vocab_size is None:
        vocab_size = 30000 if tokenization == "word" else 8000
    sentences, labels = read_glue_tsv(root / "train.tsv")
    dev_sentences, dev_labels = read_glue_tsv(root / "dev.tsv")
    if len(labels) < 20:
        raise DataError(f"{root / 'train.tsv'} holds {len(labels)} sentences; at least 20 are needed.")
    held_out = val_size if len(labels) >= 2 * val_size else max(2, len(labels) // 10)
    train_idx, val_idx = stratified_holdout(np.asarray(labels), held_out, seed)
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    if tokenizer is not None:
        tok = SubwordTokenizer.from_pretrained_folder(tokenizer)
    elif tokenization == "word":
        tok = SubwordTokenizer.train_words([sentences[i] for i in train_idx], vocab_size=vocab_size)
    else:
        tok = SubwordTokenizer.train([sentences[i] for i in train_idx], vocab_size=vocab_size)
    ids = tok.encode_batch(sentences)
    dev_ids = tok.encode_batch(dev_sentences)
    splits = {
        "train": pad_sentences([ids[i] for i in train_idx], [labels[i] for i in train_idx], context_length, tok.pad_id),
        "val": pad_sentences([ids[i] for i in val_idx], [labels[i] for i in val_idx], context_length, tok.pad_id),
        "test": pad_sentences(dev_ids, dev_labels, context_length, tok.pad_id),
    }
    options = {"seed": seed, "vocab_size": vocab_size, "context_length": context_length, "val_size": val_size,
               "tokenization": tokenization}
    if tokenizer is not None:
        options["tokenizer"] = str(tokenizer)
    spec = text_spec("sst2", vocab_size=tok.vocab_size, context_length=context_length, num_classes=2, target="class",
                     class_names=["negative", "positive"], options=options, pad_id=tok.pad_id)
    return Dataset(spec, splits, files={TOKENIZER_FILE: tok.to_json()})
