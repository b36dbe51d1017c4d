"""`archlab train bert --from-hf DIR`: start from a Hugging Face BERT folder."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..data import Dataset, dataset_info, load_dataset
from ..errors import ConfigError
from ..models.bert import hf_config_kwargs


def from_hf_setup(model: str, data: str, folder: str, options: dict[str, Any]) -> Dataset:
    """Load `data` tokenized with the folder's vocabulary, and put the folder's architecture
    (and ``pretrained=folder``) into ``options["model_kwargs"]``; the user's ``--set`` wins."""
    if model != "bert":
        raise ConfigError(f"--from-hf loads a Hugging Face BERT folder into the 'bert' model; got '{model}'.")
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"--from-hf must be a folder written by transformers' save_pretrained; {path} is not one.")
    info = dataset_info(data)
    if "tokenizer" not in inspect.signature(info.loader).parameters:
        raise ConfigError(f"--from-hf needs text data that can be tokenized with the model's vocabulary "
                          f"(sst2); '{data}' cannot.")
    kwargs = hf_config_kwargs(path)
    kwargs.pop("vocab_size")  # comes from the data, tokenized with the folder's own vocabulary
    options["model_kwargs"] = {**kwargs, "pretrained": str(path.resolve()), **options.get("model_kwargs", {})}
    return load_dataset(data, options.get("data_dir"), tokenizer=str(path.resolve()))
