"""Tokenizers saved beside a checkpoint as ``tokenizer.json``: a character tokenizer, and
`tokenizers`-library tokenizers (BPE or a word vocabulary trained locally, or the word pieces
of a BERT folder's ``vocab.txt``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import DataError

TOKENIZER_FILE = "tokenizer.json"
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4 of a trained vocabulary


class CharTokenizer:
    """One id per character, in sorted order (as nanoGPT's ``shakespeare_char``)."""

    kind = "archlab-char"

    def __init__(self, chars: Sequence[str]):
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}
        if len(self.index) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("a character vocabulary must list distinct single characters.")

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise DataError(f"characters {unknown!r} are not in the tokenizer's vocabulary of {self.vocab_size} "
                            "characters (the ones of the training text).")
        return [self.index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"type": self.kind, "chars": self.chars})


class SubwordTokenizer:
    """A `tokenizers.Tokenizer` adding ``[CLS] ... [SEP]``: byte-level BPE trained locally
    (`train`, as GPT-2's), or the word pieces of a BERT folder (`from_pretrained_folder`)."""

    kind = "tokenizers"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = True) -> SubwordTokenizer:
        """Learn a BPE vocabulary from `texts`; ``[PAD]`` is id 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3.

        Byte-level BPE rather than word-piece: with its fixed byte alphabet the `tokenizers`
        trainer gives the same vocabulary and ids in every process (its word-piece trainer
        orders them by hash), so a dataset reloaded to evaluate a checkpoint gets the same ids."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)  # GPT-2's byte alphabet: no unknowns
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer)
        tok.decoder = decoders.ByteLevel()
        _add_cls_sep(tok)
        return cls(tok)

    @classmethod
    def train_words(cls, texts: Iterable[str], vocab_size: int = 20000, min_count: int = 1,
                    lowercase: bool = True) -> SubwordTokenizer:
        """A word vocabulary of `texts` (split at whitespace): the `vocab_size` most frequent words
        seen at least `min_count` times, after ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0..4); other
        words map to ``[UNK]``.

        Words are counted here and ordered by (-count, word) rather than by the `tokenizers`
        word-level trainer, so equal counts cannot be ordered differently in another process."""
        from collections import Counter

        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

        if vocab_size < len(SPECIALS) + 1 or min_count < 1:
            raise ValueError(f"train_words needs vocab_size > {len(SPECIALS)} and min_count >= 1; "
                             f"got vocab_size={vocab_size}, min_count={min_count}.")
        normalizer = normalizers.BertNormalizer(lowercase=lowercase)
        pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        counts = Counter(word for text in texts
                         for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
        ranked = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                        key=lambda w: (-counts[w], w))
        words = list(SPECIALS) + ranked[:vocab_size - len(SPECIALS)]
        tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
        tok.normalizer = normalizer
        tok.pre_tokenizer = pre_tokenizer
        tok.add_special_tokens(list(SPECIALS))  # already ids 0..4; marks them to be skipped by decode
        tok.decoder = decoders.WordPiece()  # joins the words with spaces
        _add_cls_sep(tok)
        return cls(tok)

    @classmethod
    def from_pretrained_folder(cls, folder: str | os.PathLike) -> SubwordTokenizer:
        """The tokenizer of a Hugging Face BERT folder: its ``tokenizer.json``, else its ``vocab.txt``."""
        from tokenizers import Tokenizer, decoders, models

        folder = Path(folder)
        if (folder / "tokenizer.json").is_file():
            return cls(Tokenizer.from_file(str(folder / "tokenizer.json")))
        vocab = folder / "vocab.txt"
        if not vocab.is_file():
            raise FileNotFoundError(f"{folder} has neither tokenizer.json nor vocab.txt; the text must be tokenized "
                                    "with the pretrained model's own vocabulary.")
        lowercase = True
        config = folder / "tokenizer_config.json"
        if config.is_file():
            lowercase = bool(json.loads(config.read_text()).get("do_lower_case", True))
        tok = Tokenizer(models.WordPiece.from_file(str(vocab), unk_token="[UNK]"))
        _bert_pipeline(tok, lowercase)
        tok.decoder = decoders.WordPiece()
        _add_cls_sep(tok)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.token_to_id("[PAD]")
        return 0 if pad is None else pad

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def to_json(self) -> str:
        return self.tokenizer.to_str()


def _bert_pipeline(tok, lowercase: bool) -> None:
    from tokenizers import normalizers, pre_tokenizers

    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()


def _add_cls_sep(tok) -> None:
    from tokenizers import processors

    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise DataError("a subword vocabulary needs the [CLS] and [SEP] tokens.")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])


def tokenizer_from_json(text: str) -> CharTokenizer | SubwordTokenizer:
    """Rebuild a tokenizer from the ``tokenizer.json`` saved beside a checkpoint."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise DataError(f"{TOKENIZER_FILE} is not valid JSON ({err}).") from err
    if isinstance(data, dict) and data.get("type") == CharTokenizer.kind:
        return CharTokenizer(data["chars"])
    if isinstance(data, dict) and "model" in data:
        from tokenizers import Tokenizer

        return SubwordTokenizer(Tokenizer.from_str(text))
    raise DataError(f"{TOKENIZER_FILE} is neither archlab's character tokenizer nor a `tokenizers` tokenizer.")


def load_tokenizer(checkpoint: str | os.PathLike) -> CharTokenizer | SubwordTokenizer:
    """The tokenizer saved in a checkpoint folder."""
    path = Path(checkpoint) / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the checkpoint was not trained on text data with a tokenizer.")
    return tokenizer_from_json(path.read_text())
