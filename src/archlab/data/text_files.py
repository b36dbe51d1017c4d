"""Text from a user's files: a table of labelled texts for classification, plain text for
language modelling.

**text-table** (chosen with ``format="text-table"``: ``.csv`` and ``.tsv`` files are the tabular
format's): a CSV (TSV by its ``.tsv`` suffix) with a `text_column` and a `label_column` trains a
text classifier (rnn, lstm, gru, transformer). Its splits are a `split_column`'s ``train`` /
``val`` / ``test`` (an empty cell: the row is in no split), else a stratified 70/15/15 split
fixed by `seed`. The `tokenizer` is trained on the training texts: ``"word"`` (default: the
`vocab_size` most frequent lowercased words, 30,000 by default, the rest ``[UNK]``, as sst2's),
``"subword"`` (byte-level BPE, 8,000 by default) or ``"char"`` (one id per character; id 0 pads
and U+FFFD stands for every character the training texts lack); or it is the vocabulary of a
Hugging Face BERT folder given as the `tokenizer`. Texts are cut at `context_length` tokens.
New tables of the same column are read for `predict` by `text_table_inputs`, and new labeled ones for
`evaluate` by `text_table_split`; a new text for `evaluate` by `text_stream`.

**text** (``.txt``, or a folder of them) trains a language model (gpt) on one token stream. A
folder holding ``train.txt`` and ``val.txt`` (and ``test.txt``) gives those splits; otherwise
the files, in name order and joined by a newline, are cut into the first 80% of characters for
training, the next 10% for validation and the last 10% for test. The `tokenizer` is trained on
the training text: ``"char"`` (default, as nanoGPT's ``shakespeare_char``; U+FFFD stands for
characters the training text lacks) or ``"subword"`` (byte-level BPE as GPT-2's, case and
line breaks kept, 8,000 ids at most by default).

Both save the tokenizer as the dataset's ``tokenizer.json`` (beside a checkpoint, as the built-in
corpora do) and in ``spec.preprocess["tokenizer_json"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
from pathlib import Path
import numpy as np
import torch


if TYPE_CHECKING:  # pandas is imported when a table is read, not with the package
    import pandas as pd

from ..errors import ConfigError, DataError
from ..validation import check_int
from .base import Dataset, unknown_class
from .corpora import DEFAULT_CONTEXT_LENGTH
from .graph_files import class_order, read_table
from .sources import load_data, register_format
from .splits import stratified_split
from .text import TokenStream, pad_sentences, text_spec
from .tokenizer import TOKENIZER_FILE, CharTokenizer, SubwordTokenizer, tokenizer_from_json

TABLE_TOKENIZERS = ("word", "subword", "char")
STREAM_TOKENIZERS = ("char", "subword")
DEFAULT_VOCAB = {"word": 30000, "subword": 8000}
TABLE_CONTEXT_LENGTH = 128
SPLITS = ("train", "val", "test")
VAL_FRACTION = TEST_FRACTION = 0.15  # of a table's rows
STREAM_PARTS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}  # of a text's characters
PAD, UNKNOWN = "\x00", "\ufffd"  # the character tokenizer's padding and stand-in for unseen characters
TABLE_SUFFIXES = (".csv", ".tsv", ".tab")


# -- character tokens with an unknown -----------------------------------------------------------

def char_tokenizer(text: str, *, padding: bool) -> CharTokenizer:
    """The characters of `text` in sorted order, then U+FFFD for the unseen ones; with
    `padding`, NUL first as the padding id 0."""
    chars = sorted(set(text) - {PAD, UNKNOWN})
    return CharTokenizer(([PAD] if padding else []) + chars + [UNKNOWN])


def encode_chars(tokenizer: CharTokenizer, text: str) -> list[int]:
    """Ids of `text`, U+FFFD's for characters outside the vocabulary (and for NUL, the padding)."""
    unknown = tokenizer.index[UNKNOWN]
    index = {c: i for c, i in tokenizer.index.items() if c != PAD}
    return [index.get(c, unknown) for c in text]


def _encode(tokenizer: CharTokenizer | SubwordTokenizer, texts: list[str]) -> list[list[int]]:
    if isinstance(tokenizer, CharTokenizer):
        return [encode_chars(tokenizer, t) for t in texts]
    return tokenizer.encode_batch(texts)


def _check_options(owner: str, tokenizer: str, choices: tuple[str, ...], vocab_size: int | None,
                   context_length: int, *, folder_ok: bool) -> None:
    check_int(owner, "context_length", context_length, minimum=1)
    check_int(owner, "vocab_size", vocab_size, minimum=len(("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")) + 1,
              optional=True)
    if tokenizer not in choices and not (folder_ok and Path(tokenizer).is_dir()):
        folder = " or the folder of a Hugging Face BERT" if folder_ok else ""
        raise ConfigError(f"The 'tokenizer' parameter of {owner} must be one of {', '.join(map(repr, choices))}"
                          f"{folder}. Got {tokenizer!r} instead.")
    if tokenizer == "char" and vocab_size is not None:
        raise ConfigError(f"The 'vocab_size' parameter of {owner} does not apply to tokenizer='char' (its "
                          f"vocabulary is the training text's characters). Got {vocab_size} instead; leave it unset.")


# -- text tables: classification ----------------------------------------------------------------

def _table_column(frame: pd.DataFrame, column: str, what: str, path: Path, option: str) -> list[str]:
    if column not in frame.columns:
        raise DataError(f"{path} has no {what} column '{column}'; its columns are "
                        f"{', '.join(map(str, frame.columns))}. Name it with the '{option}' option.")
    values = frame[column].astype(object).where(frame[column].notna(), None).tolist()
    return [None if v is None else str(v) for v in values]


def _read_texts(path: Path, text_column: str, columns: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    frame = read_table(path, columns)
    if len(frame) == 0:
        raise DataError(f"{path} has no rows: expected a header and one text a row.")
    texts = _table_column(frame, text_column, "text", path, "text_column")
    for i, t in enumerate(texts):
        if t is None or not t.strip():
            raise DataError(f"{path}, line {i + 2}: the text ('{text_column}') is empty.")
    return frame, texts


def _table_tokenizer(tokenizer: str, texts: list[str], vocab_size: int | None) -> CharTokenizer | SubwordTokenizer:
    if tokenizer == "char":
        return char_tokenizer("".join(texts), padding=True)
    if tokenizer == "word":
        return SubwordTokenizer.train_words(texts, vocab_size=vocab_size or DEFAULT_VOCAB["word"])
    if tokenizer == "subword":
        return SubwordTokenizer.train(texts, vocab_size=vocab_size or DEFAULT_VOCAB["subword"])
    return SubwordTokenizer.from_pretrained_folder(tokenizer)


def text_table_inputs(path: Path, spec) -> np.ndarray:
    """The texts of a new table (its `text_column`; other columns are ignored) as token ids
    ``(N, T)``, cut at the context length and padded with the padding id as in training; the
    tokens of row ``i`` are the ids up to its first padding id."""
    path = Path(path)
    preprocess = spec.preprocess
    _, texts = _read_texts(path, preprocess["text_column"], (preprocess["text_column"],))
    tok = tokenizer_from_json(preprocess["tokenizer_json"])
    split = pad_sentences(_encode(tok, texts), [0] * len(texts), int(spec.input_shape[0]), preprocess["pad_id"])
    return split["x"].numpy()


def text_table_split(path: Path, spec):
    """A new labeled table of texts (its `text_column` and `label_column`) as one split, every row of
    it, tokenized as `text_table_inputs` does and labeled with the training classes (for evaluate)."""
    path = Path(path)
    preprocess, label_column = spec.preprocess, spec.options["label_column"]
    frame, texts = _read_texts(path, preprocess["text_column"], (preprocess["text_column"], label_column))
    number = {c: k for k, c in enumerate(spec.class_names)}
    labels = []
    for i, value in enumerate(_table_column(frame, label_column, "label", path, "label_column")):
        value = value.strip() if value is not None else ""
        if value not in number:
            raise unknown_class(f"{path}, line {i + 2}", value, label_column, spec.class_names)
        labels.append(number[value])
    tok = tokenizer_from_json(preprocess["tokenizer_json"])
    return pad_sentences(_encode(tok, texts), labels, int(spec.input_shape[0]), preprocess["pad_id"])


@register_format("text-table", description="a table of texts and their labels, for text classification",
                 inputs=text_table_inputs, labeled=text_table_split)
def read_text_table(path: Path, *, seed: int = 0, text_column: str = "text", label_column: str = "label",
                    tokenizer: str = "word", vocab_size: int | None = None,
                    context_length: int = TABLE_CONTEXT_LENGTH, split_column: str | None = None) -> Dataset:
    """A CSV (or ``.tsv``) of texts and labels for text classification (see the module docstring)."""
    path = Path(path)
    _check_options("data format 'text-table'", tokenizer, TABLE_TOKENIZERS, vocab_size, context_length,
                   folder_ok=True)
    if path.is_dir():
        raise DataError(f"{path} is a folder; the text-table format reads one CSV or TSV file.")
    columns = (text_column, label_column) + ((split_column,) if split_column else ())
    frame, texts = _read_texts(path, text_column, columns)
    labels = _table_column(frame, label_column, "label", path, "label_column")
    for i, v in enumerate(labels):
        if v is None or not v.strip():
            raise DataError(f"{path}, line {i + 2}: the label ('{label_column}') is empty.")
    labels = [v.strip() for v in labels]
    class_names = class_order(set(labels))
    if len(class_names) < 2:
        raise DataError(f"{path}: the label column '{label_column}' has only the class {class_names[0]!r}; "
                        "classification needs at least two classes.")
    number = {c: k for k, c in enumerate(class_names)}
    y = np.array([number[v] for v in labels])
    if split_column is not None:
        split = _table_column(frame, split_column, "split", path, "split_column")
        parts = {name: [] for name in SPLITS}
        for i, value in enumerate(split):
            value = value.strip() if value is not None else ""
            if value and value not in parts:
                raise DataError(f"{path}, line {i + 2}: the split column '{split_column}' must be train, val, test "
                                f"or empty; got {value!r}.")
            if value:
                parts[value].append(i)
        if not parts["train"]:
            raise DataError(f"{path}: no row is in the train split of column '{split_column}'.")
        index = {name: np.array(rows, dtype=np.int64) for name, rows in parts.items()}
    else:
        try:
            index = dict(zip(SPLITS, stratified_split(y, VAL_FRACTION, TEST_FRACTION, seed)))
        except ValueError as err:
            raise DataError(f"{path}: the {len(y)} rows cannot be split 70/15/15 stratified by class ({err}); give "
                            "more rows of each class or a split column.") from None
    tok = _table_tokenizer(tokenizer, [texts[i] for i in index["train"]], vocab_size)
    pad_id = tok.pad_id if isinstance(tok, SubwordTokenizer) else 0
    ids = _encode(tok, texts)
    splits = {name: pad_sentences([ids[i] for i in rows], y[rows].tolist(), context_length, pad_id)
              for name, rows in index.items() if len(rows)}
    options = {"source": str(path.resolve()), "format": "text-table", "seed": seed, "text_column": text_column,
               "label_column": label_column, "tokenizer": tokenizer if tokenizer in TABLE_TOKENIZERS
               else str(Path(tokenizer).resolve()), "vocab_size": vocab_size,
               "context_length": context_length, "split_column": split_column}
    spec = text_spec(path.stem, vocab_size=tok.vocab_size, context_length=context_length,
                     num_classes=len(class_names), target="class", class_names=class_names, options=options,
                     pad_id=pad_id)
    spec.preprocess.update({"tokenizer_json": tok.to_json(), "text_column": text_column})
    return Dataset(spec, splits, files={TOKENIZER_FILE: tok.to_json()})


# -- plain text: language modelling -------------------------------------------------------------

def read_utf8(path: Path) -> str:
    """A text file's content; non-UTF-8 bytes are refused with their line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte {err.start}: {data[err.start:err.start + 4]!r}); "
                        "save it as UTF-8.") from None


def _text_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def _detect_text_folder(path: Path) -> bool:
    files = _text_files(path)
    return bool(files) and all(p.suffix.lower() == ".txt" for p in files)


def _txt_files(path: Path) -> list[Path]:
    """The file `path`, or the ``.txt`` files of the folder `path` in name order."""
    if path.is_dir():
        files = [p for p in _text_files(path) if p.suffix.lower() == ".txt"]
        if not files:
            raise DataError(f"{path} holds no .txt file.")
        return files
    if path.is_file():
        return [path]
    raise DataError(f"text file or folder not found: {path}.")


def _joined(files: list[Path], purpose: str) -> str:
    """The texts of `files` joined by a newline; an empty one is refused (there is no text to `purpose`)."""
    texts = [read_utf8(p) for p in files]
    for p, t in zip(files, texts):
        if not t.strip():
            raise DataError(f"{p} is empty: expected text to {purpose}.")
    return "\n".join(texts)


def _token_ids(tok: CharTokenizer | SubwordTokenizer, text: str) -> list[int]:
    return encode_chars(tok, text) if isinstance(tok, CharTokenizer) else tok.encode(text)


def _split_texts(path: Path) -> dict[str, tuple[str, str]]:
    """Each split's text and where it comes from."""
    files = _txt_files(path)
    if path.is_dir() and (path / "train.txt").is_file():
        if not (path / "val.txt").is_file():
            raise DataError(f"{path} holds train.txt but no val.txt: a folder of splits holds train.txt and "
                            "val.txt (and test.txt); other files are ignored then.")
        return {name: (read_utf8(path / f"{name}.txt"), str(path / f"{name}.txt")) for name in SPLITS
                if (path / f"{name}.txt").is_file()}
    text = _joined(files, "model")
    n = len(text)
    return {name: (text[int(a * n):int(b * n)], f"the {name} part ({int(a * 100)}-{int(b * 100)}%) of {path}")
            for name, (a, b) in STREAM_PARTS.items()}


def _stream_tokenizer(tokenizer: str, text: str, vocab_size: int | None) -> CharTokenizer | SubwordTokenizer:
    if tokenizer == "char":
        return char_tokenizer(text, padding=False)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    # GPT-2's byte-level BPE without normalization: case, spaces and line breaks survive a round trip
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size or DEFAULT_VOCAB["subword"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text.splitlines(keepends=True), trainer)
    return SubwordTokenizer(tok)


def text_stream(path: Path, spec) -> TokenStream:
    """A new ``.txt`` file, or a folder of them joined by a newline (its ``test.txt`` alone when it holds
    ``train.txt``), as one token stream, every window of it, in the training tokenizer's ids (for evaluate)."""
    path = Path(path)
    if path.is_dir() and (path / "train.txt").is_file():
        if not (path / "test.txt").is_file():
            raise DataError(f"{path} holds train.txt but no test.txt to score; give test.txt or another file.")
        files = [path / "test.txt"]
    else:
        files = _txt_files(path)
    tok = tokenizer_from_json(spec.preprocess["tokenizer_json"])
    ids = _token_ids(tok, _joined(files, "score"))
    context_length = int(spec.options["context_length"])
    if len(ids) < context_length + 1:
        raise DataError(f"{path} has {len(ids)} tokens, too few for one window of context_length={context_length} "
                        "(+1 target), the windows the training text was read in.")
    return TokenStream(torch.tensor(ids, dtype=torch.long), context_length)


@register_format("text", suffixes=(".txt",), detect=_detect_text_folder, labeled=text_stream,
                 description="plain text (.txt files) for language modelling")
def read_text(path: Path, *, seed: int = 0, tokenizer: str = "char", vocab_size: int | None = None,
              context_length: int = DEFAULT_CONTEXT_LENGTH) -> Dataset:
    """One or more plain ``.txt`` files as a token stream for language modelling (see the module docstring)."""
    path = Path(path)
    _check_options("data format 'text'", tokenizer, STREAM_TOKENIZERS, vocab_size, context_length, folder_ok=False)
    parts = _split_texts(path)
    tok = _stream_tokenizer(tokenizer, parts["train"][0], vocab_size)
    splits = {}
    for name, (text, where) in parts.items():
        ids = _token_ids(tok, text)
        if len(ids) < context_length + 1:
            raise DataError(f"{where} has {len(ids)} tokens, too few for one window of context_length="
                            f"{context_length} (+1 target); give more text or a smaller context_length.")
        splits[name] = TokenStream(torch.tensor(ids, dtype=torch.long), context_length)
    options = {"source": str(path.resolve()), "format": "text", "seed": seed, "tokenizer": tokenizer,
               "vocab_size": vocab_size, "context_length": context_length}
    spec = text_spec(path.stem if path.is_file() else path.name, vocab_size=tok.vocab_size,
                     context_length=context_length, num_classes=tok.vocab_size, target="next-token", options=options)
    spec.preprocess["tokenizer_json"] = tok.to_json()
    return Dataset(spec, splits, files={TOKENIZER_FILE: tok.to_json()})


def from_text(path: str | os.PathLike, *, text_column: str = "text", label_column: str = "label",
              tokenizer: str | None = None, vocab_size: int | None = None, context_length: int | None = None,
              split_column: str | None = None, seed: int = 0) -> Dataset:
    """Text classification from a table (``.csv``/``.tsv``: `text_column`, `label_column`), or a
    language-modelling stream from ``.txt`` files or a folder of them (see the module docstring).
    `tokenizer` and `context_length` default to the format's (word and 128 for a table, char and
    256 for plain text)."""
    path = Path(path)
    options = {k: v for k, v in {"tokenizer": tokenizer, "vocab_size": vocab_size,
                                 "context_length": context_length}.items() if v is not None}
    if path.suffix.lower() in TABLE_SUFFIXES:
        return load_data(path, format="text-table", seed=seed, text_column=text_column, label_column=label_column,
                         split_column=split_column, **options)
    if (text_column, label_column, split_column) != ("text", "label", None):
        raise ConfigError(f"{path} is plain text for language modelling; text_column, label_column and split_column "
                          "apply to tables (.csv, .tsv) only.")
    return load_data(path, format="text", seed=seed, **options)
