"""Text from files: a table of labelled texts for classification (text-table), plain .txt
files for language modelling (text); their tokenizers, the inputs for predict, every bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import archlab
from archlab.data import from_text, load_data
from archlab.data.sources import format_info, source_options
from archlab.data.tokenizer import TOKENIZER_FILE, tokenizer_from_json
from archlab.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
GOOD, BAD = ["great", "lovely", "superb", "fine"], ["awful", "dull", "poor", "bad"]
TINY_GPT = {"context_length": 16, "num_layers": 1, "embed_dim": 32, "num_heads": 2}


def reviews(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = rng.choice(GOOD if i % 2 else BAD, 2).tolist() + rng.choice(["the", "film", "was", "plot"], 3).tolist()
        rows.append({"text": " ".join(rng.permutation(words)), "label": "pos" if i % 2 else "neg"})
    return pd.DataFrame(rows)


def write_reviews(tmp_path, name: str = "reviews.csv", **kwargs) -> str:
    path = tmp_path / name
    reviews(**kwargs).to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
    return str(path)


@pytest.mark.parametrize("tokenizer", ["word", "subword", "char"])
def test_a_text_table_trains_a_classifier(tmp_path, tokenizer):
    data = load_data(write_reviews(tmp_path), format="text-table", tokenizer=tokenizer)
    assert data.spec.kind == "text" and data.spec.preprocess["target"] == "class"
    assert data.spec.class_names == ["neg", "pos"] and [len(data[s]) for s in SPLITS] == [42, 9, 9]
    assert data.files[TOKENIZER_FILE] == data.spec.preprocess["tokenizer_json"]
    batch = next(data.train.batches(8))
    assert batch["x"].dtype == torch.long and batch["lengths"].max() == batch["x"].shape[1]
    model = "transformer" if tokenizer == "word" else "lstm"
    kwargs = {"embed_dim": 16, "num_heads": 2, "num_layers": 1} if model == "transformer" else {"hidden_dim": 16}
    result = archlab.train(model, data, epochs=1, quiet=True, model_kwargs=kwargs)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0


def test_the_tokenizer_is_trained_on_the_training_split_only(tmp_path):
    frame = reviews()
    frame["split"] = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    frame.loc[55, "text"] = "zyzzyva"  # a word only the test split has
    frame.to_csv(tmp_path / "r.csv", index=False)
    data = load_data(tmp_path / "r.csv", format="text-table", split_column="split")
    assert [len(data[s]) for s in SPLITS] == [40, 10, 10]
    vocabulary = tokenizer_from_json(data.files[TOKENIZER_FILE]).tokenizer.get_vocab()
    assert "zyzzyva" not in vocabulary and "superb" in vocabulary
    unk = vocabulary["[UNK]"]
    assert unk in data.test["x"][5].tolist()


def test_characters_unseen_in_training_become_the_unknown_character(tmp_path):
    frame = reviews()
    frame["split"] = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    frame.loc[45, "text"] = "Ωmega"
    frame.to_csv(tmp_path / "r.csv", index=False)
    data = load_data(tmp_path / "r.csv", format="text-table", split_column="split", tokenizer="char")
    tok = tokenizer_from_json(data.files[TOKENIZER_FILE])
    assert tok.chars[0] == "\x00" and tok.chars[-1] == "\ufffd" and "Ω" not in tok.chars
    row = data.val["x"][5, :data.val["lengths"][5]].tolist()
    assert tok.decode(row) == "\ufffdmega" and data.spec.preprocess["pad_id"] == 0
    for split in SPLITS:  # the padding id never stands inside a sentence
        x, lengths = data[split]["x"], data[split]["lengths"]
        assert all((x[i, :lengths[i]] != 0).all() for i in range(len(x)))


def test_a_text_table_rebuilds_from_its_spec_and_reads_new_tables_for_predict(tmp_path):
    path = write_reviews(tmp_path, "reviews.tsv")  # tab-separated by its suffix
    data = from_text(path, context_length=4)
    assert data.spec.options["format"] == "text-table" and data.spec.options["tokenizer"] == "word"
    again = source_options(data)
    rebuilt = load_data(again["source"], format=again["format"], seed=again["seed"], **again["options"])
    assert rebuilt.files == data.files and torch.equal(rebuilt.test["x"], data.test["x"])
    json.dumps(data.spec.to_dict())  # the spec is saved in the checkpoint's config
    new = tmp_path / "new.tsv"
    pd.DataFrame({"text": ["the film was great", "dull"], "id": [1, 2]}).to_csv(new, sep="\t", index=False)
    x = format_info("text-table").inputs(new, data.spec)
    tok = tokenizer_from_json(data.spec.preprocess["tokenizer_json"])
    first = tok.encode("the film was great")
    assert x.dtype == np.int64 and x.shape == (2, 4)  # cut at the context length, padded to the longest
    assert x[0].tolist() == first[:4] and x[1].tolist() == tok.encode("dull") + [0]


def test_a_bert_folder_gives_its_vocabulary(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "plot", *GOOD, *BAD]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    data = load_data(write_reviews(tmp_path), format="text-table", tokenizer=str(folder))
    assert data.spec.preprocess["vocab_size"] == len(words)
    assert data.spec.options["tokenizer"] == str(folder.resolve())
    assert int(data.train["x"].max()) < len(words)


def test_a_text_file_is_a_token_stream_for_gpt(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 30 + "Zz")  # Z only in the test part
    data = load_data(path, context_length=16)
    assert data.spec.options["format"] == "text" and data.spec.preprocess["target"] == "next-token"
    n = len(path.read_text())
    assert [len(data[s].tokens) for s in SPLITS] == [int(0.8 * n), int(0.9 * n) - int(0.8 * n), n - int(0.9 * n)]
    tok = tokenizer_from_json(data.files[TOKENIZER_FILE])
    assert "Z" not in tok.chars and tok.decode(data.test.tokens[-2:].tolist()) == "\ufffdz"
    assert data.spec.model_kwargs()["vocab_size"] == tok.vocab_size == len(set("the quick brown fox jumps over the "
                                                                               "lazy dog.\n")) + 1
    batch = next(data.train.batches(4, shuffle=True))
    assert torch.equal(batch["x"][:, 1:], batch["y"][:, :-1])
    result = archlab.train("gpt", data, steps=2, quiet=True, model_kwargs=TINY_GPT)
    assert result.metrics["test_perplexity"] > 1.0


def test_subword_tokens_keep_case_and_line_breaks(tmp_path):
    text = "The Cat sat.\nThe cat SAT!\n" * 40
    (tmp_path / "cats.txt").write_text(text)
    data = from_text(tmp_path / "cats.txt", tokenizer="subword", vocab_size=300, context_length=8)
    tok = tokenizer_from_json(data.files[TOKENIZER_FILE])
    assert tok.vocab_size <= 300 and tok.decode(tok.encode(text)) == text
    ids = torch.cat([data[s].tokens for s in SPLITS])
    assert tok.decode(ids.tolist()) == text


def test_a_folder_of_text_files_is_joined_in_name_order_or_gives_its_splits(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "b.txt").write_text("second book " * 20)
    (books / "a.txt").write_text("first book " * 20)
    data = load_data(books, context_length=8)  # a folder of .txt files is detected as text
    tok = tokenizer_from_json(data.files[TOKENIZER_FILE])
    assert tok.decode(data.train.tokens[:11].tolist()) == "first book "
    assert data.spec.name == "books"
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, words in (("train", "abc "), ("val", "cab "), ("test", "bca ")):
        (splits / f"{name}.txt").write_text(words * 10)
    data = load_data(splits, context_length=8)
    assert [len(data[s].tokens) for s in SPLITS] == [40, 40, 40]


def test_from_text_refuses_table_options_for_plain_text(tmp_path):
    (tmp_path / "a.txt").write_text("abc " * 100)
    with pytest.raises(ConfigError, match="text_column, label_column and split_column apply to tables"):
        from_text(tmp_path / "a.txt", text_column="body")


@pytest.mark.parametrize("content, options, message", [
    ("body,label\nhi,a\nho,b\n", {}, r"has no text column 'text'; its columns are body, label\. Name it with the "
                                     r"'text_column' option"),
    ("text,class\nhi,a\nho,b\n", {}, r"has no label column 'label'; its columns are text, class"),
    ("text,label\nhi,a\n,b\n", {}, r"t.csv, line 3: the text \('text'\) is empty"),
    ("text,label\nhi,a\nho,\n", {}, r"t.csv, line 3: the label \('label'\) is empty"),
    ("text,label\nhi,a\nho,a\n", {}, r"the label column 'label' has only the class 'a'"),
    ("text,label\n", {}, r"t.csv has no rows"),
    ("", {}, r"t.csv is empty"),
    ("text,label\nhi,a\nho,b,extra\n", {}, r"t.csv: .*Expected 2 fields in line 3, saw 3"),
    ("text,label\nhi,a\nho,b\nhu,a\n", {}, r"the 3 rows cannot be split 70/15/15 stratified by class"),
    ("text,label,s\nhi,a,train\nho,b,dev\n", {"split_column": "s"},
     r"t.csv, line 3: the split column 's' must be train, val, test or empty; got 'dev'"),
])
def test_bad_text_tables_are_refused_with_the_file_and_row(tmp_path, content, options, message):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        load_data(tmp_path / "t.csv", format="text-table", **options)


def test_bad_text_files_are_refused(tmp_path):
    (tmp_path / "t.csv").write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"t.csv is not UTF-8 text"):
        load_data(tmp_path / "t.csv", format="text-table")
    (tmp_path / "a.txt").write_bytes(b"line one\nline two \xff\n")
    with pytest.raises(DataError, match=r"a.txt, line 2: not UTF-8 text \(byte 18"):
        load_data(tmp_path / "a.txt")
    (tmp_path / "a.txt").write_text("  \n")
    with pytest.raises(DataError, match=r"a.txt is empty"):
        load_data(tmp_path / "a.txt")
    (tmp_path / "a.txt").write_text("abcdefghij" * 5)
    with pytest.raises(DataError, match=r"the val part \(80-90%\) of .*a.txt has 5 tokens, too few for one window of "
                                        r"context_length=16"):
        load_data(tmp_path / "a.txt", context_length=16)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("hi")
    with pytest.raises(DataError, match=r"empty holds no .txt file"):
        load_data(empty, format="text")
    (empty / "train.txt").write_text("abc" * 50)
    with pytest.raises(DataError, match=r"holds train.txt but no val.txt"):
        load_data(empty, format="text")
    with pytest.raises(DataError, match=r"is a folder; the text-table format reads one CSV or TSV file"):
        load_data(empty, format="text-table")


def test_bad_text_options_are_refused(tmp_path):
    path = write_reviews(tmp_path)
    with pytest.raises(ConfigError, match=r"'tokenizer' parameter of data format 'text-table' must be one of 'word', "
                                          r"'subword', 'char' or the folder of a Hugging Face BERT\. Got 'bpe'"):
        load_data(path, format="text-table", tokenizer="bpe")
    with pytest.raises(ConfigError, match=r"'vocab_size' parameter .* does not apply to tokenizer='char'"):
        load_data(path, format="text-table", tokenizer="char", vocab_size=100)
    (tmp_path / "x.txt").write_text("abc" * 20)
    with pytest.raises(ConfigError, match=r"'context_length' parameter of data format 'text' must be an int >= 1"):
        load_data(tmp_path / "x.txt", context_length=0)
    with pytest.raises(ConfigError, match=r"data format 'text-table' has no option 'target_column'"):
        load_data(path, format="text-table", target_column="y")


def test_a_new_text_is_scored_in_the_training_ids_and_a_split_folder_by_its_test_file(tmp_path):
    from archlab.data.text_files import text_stream

    (tmp_path / "train.txt").write_text("abcabc " * 20)
    spec = load_data(tmp_path / "train.txt", context_length=8).spec
    (tmp_path / "new.txt").write_text("cab " * 5 + "z")
    stream = text_stream(tmp_path / "new.txt", spec)
    tok = tokenizer_from_json(spec.preprocess["tokenizer_json"])
    assert tok.decode(stream.tokens.tolist()) == "cab " * 5 + "\ufffd"  # z: never seen in training
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, words in (("train", "abc "), ("val", "cab "), ("test", "bca ")):
        (splits / f"{name}.txt").write_text(words * 10)
    assert tok.decode(text_stream(splits, spec).tokens.tolist()) == "bca " * 10
    (splits / "test.txt").unlink()
    with pytest.raises(DataError, match="no test.txt to score"):
        text_stream(splits, spec)


def test_a_new_labeled_text_table_is_tokenized_and_labeled_as_in_training(tmp_path):
    from archlab.data.text_files import text_table_split

    pd.DataFrame({"text": ["good film", "bad film"] * 10, "label": ["pos", "neg"] * 10}).to_csv(
        tmp_path / "t.csv", index=False)
    data = load_data(tmp_path / "t.csv", format="text-table", seed=0)
    pd.DataFrame({"text": ["bad film", "good good"], "label": [" neg", "pos"]}).to_csv(tmp_path / "n.csv", index=False)
    split = text_table_split(tmp_path / "n.csv", data.spec)
    assert split["y"].tolist() == [0, 1]  # labels stripped, as in training
    assert torch.equal(split["x"][0, :2], data.train["x"][data.train["y"] == 0][0, :2])
