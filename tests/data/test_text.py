"""Text data: tokenizers, token streams, padded sentences, and the text datasets."""

from __future__ import annotations

import pytest
import torch

from archlab.data import load_dataset
from archlab.data.text import TokenStream, pad_sentences
from archlab.data.tokenizer import CharTokenizer, SubwordTokenizer, tokenizer_from_json
from archlab.errors import ConfigError, DataError

from ..conftest import require_dataset


def test_char_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer.fit("hello world")
    assert tok.decode(tok.encode("low door")) == "low door"
    assert tokenizer_from_json(tok.to_json()).chars == tok.chars
    with pytest.raises(DataError, match=r"characters \['z'\] are not in the tokenizer's vocabulary"):
        tok.encode("zero")


def test_bpe_tokenizer_is_trained_locally_and_saved():
    texts = ["a good film", "a bad film", "good acting , bad plot"] * 20
    tok = SubwordTokenizer.train(texts, vocab_size=60)
    ids = tok.encode("a good plot")
    assert ids[0] == 2 and ids[-1] == 3 and tok.pad_id == 0  # [CLS] ... [SEP]
    again = tokenizer_from_json(tok.to_json())
    assert again.encode("a good plot") == ids
    assert SubwordTokenizer.train(texts, vocab_size=60).to_json() == tok.to_json()  # deterministic


def test_word_tokenizer_keeps_the_most_frequent_words_in_a_fixed_order():
    texts = ["A good film", "a bad film", "good acting , bad plot", "it 's fine"] * 3
    tok = SubwordTokenizer.train_words(texts, vocab_size=9)
    vocab = tok.tokenizer.get_vocab()
    # specials first, then by count (a, bad, film, good: 6 each) and ties alphabetically
    assert [w for w, _ in sorted(vocab.items(), key=lambda item: item[1])][5:] == ["a", "bad", "film", "good"]
    ids = tok.encode("a GOOD unseen film")
    assert ids == [2, vocab["a"], vocab["good"], 1, vocab["film"], 3]  # lowercased; unknown word is [UNK]
    assert tok.decode(ids) == "a good film"
    assert tokenizer_from_json(tok.to_json()).encode("a GOOD unseen film") == ids
    assert SubwordTokenizer.train_words(list(reversed(texts)), vocab_size=9).to_json() == tok.to_json()
    with pytest.raises(ValueError, match="vocab_size > 5"):
        SubwordTokenizer.train_words(texts, vocab_size=5)


def test_token_stream_batches_are_seeded_and_resumable():
    stream = TokenStream(torch.arange(100), context_length=8)
    first = list(stream.batches(4, shuffle=True, seed=5))
    again = list(stream.batches(4, shuffle=True, seed=5, start=2))
    assert len(first) == stream.num_batches(4) == 3  # 12 windows of 8 (+1 target) in 100 tokens
    torch.testing.assert_close(first[2]["x"], again[0]["x"])
    torch.testing.assert_close(first[0]["y"], first[0]["x"] + 1)  # y is the next token
    ordered = torch.cat([b["x"].reshape(-1) for b in stream.windows(8, 5)])
    torch.testing.assert_close(ordered, torch.arange(96))  # every window once, in order
    with pytest.raises(DataError, match="too short"):
        TokenStream(torch.arange(5), context_length=8)


def test_padded_sentences_are_trimmed_per_batch():
    split = pad_sentences([[2, 5, 3], [2, 3], [2, 7, 8, 9, 3]], [0, 1, 0], context_length=4)
    assert split["x"].shape == (3, 4) and split["lengths"].tolist() == [3, 2, 4]
    batch = next(split.batches(2))
    assert batch["x"].tolist() == [[2, 5, 3], [2, 3, 0]]


def test_arithmetic_needs_no_files():
    data = load_dataset("arithmetic", num_lines=500)
    assert data.spec.kind == "text" and data.spec.model_kwargs()["vocab_size"] == 13
    assert "tokenizer.json" in data.files
    text = tokenizer_from_json(data.files["tokenizer.json"]).decode(data["train"].tokens[:40].tolist())
    a, b = text.split("\n")[0].split("=")[0].split("+")
    assert text.split("\n")[0] == f"{a}+{b}={int(a) + int(b)}"


def test_tinyshakespeare_split_as_nanogpt():
    root = require_dataset("tinyshakespeare")
    data = load_dataset("tinyshakespeare", root.parent)
    assert data.spec.model_kwargs()["vocab_size"] == 65
    assert len(data["train"].tokens) == int(0.9 * 1115394)
    assert len(data["train"].tokens) + len(data["val"].tokens) == 1115394


def test_sst2_batches_fit_classification(tmp_path):
    root = tmp_path / "sst2"
    root.mkdir()
    rows = ["sentence\tlabel"] + [f"a {'good' if i % 2 else 'bad'} movie number {i} \t{i % 2}" for i in range(60)]
    (root / "train.tsv").write_text("\n".join(rows) + "\n")
    (root / "dev.tsv").write_text("\n".join(rows[:11]) + "\n")
    data = load_dataset("sst2", tmp_path, vocab_size=50, val_size=10)
    assert (len(data["train"]), len(data["val"]), len(data["test"])) == (50, 10, 10)
    batch = next(data["train"].batches(4))
    assert set(batch) == {"x", "lengths", "y"} and batch["x"].shape[1] == int(batch["lengths"].max())
    assert data.spec.options["tokenization"] == "word"  # the default
    assert 1 not in tokenizer_from_json(data.files["tokenizer.json"]).encode("a good movie")  # no [UNK]
    bpe = load_dataset("sst2", tmp_path, vocab_size=300, val_size=10, tokenization="bpe")
    assert bpe.spec.options["tokenization"] == "bpe"
    assert len(tokenizer_from_json(bpe.files["tokenizer.json"]).encode("number")) >= 1
    with pytest.raises(ConfigError, match=r"The 'tokenization' parameter of load_sst2 must be one of 'bpe', 'word'\. "
                                          r"Got 'chars' instead\."):
        load_dataset("sst2", tmp_path, tokenization="chars")
    (root / "dev.tsv").write_text("sentence\tlabel\nfine film\t2\n")
    with pytest.raises(DataError, match=r"dev.tsv:2: expected 'sentence<TAB>0\|1'"):
        load_dataset("sst2", tmp_path, vocab_size=50, val_size=10)
    with pytest.raises(FileNotFoundError, match="GLUE SST-2"):
        load_dataset("sst2", tmp_path / "missing")
