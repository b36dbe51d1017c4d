"""The generate job: text from a language model, images from a generative autoencoder's prior.
What a model generates is declared in its registration (``generates``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from ..data.text_files import PAD, UNKNOWN
from ..data.tokenizer import load_tokenizer
from ..engine.checkpoint import read_config
from ..errors import ConfigError
from ..models.registry import list_models, load_model, model_info
from ..utils import resolve_device
from .result import JobResult
from .runs import single_run


# Below this many parameters a decoded token is a few matrix-vector products (batch 1, one position
# against the key/value cache): 2 * 2**24 FLOPs, about a millisecond on one core. Split over an
# intra-op thread pool, each op costs more in waking and joining the threads than it saves, and on a
# busy machine one descheduled worker stalls every op, so decoding runs tens of times slower
# (benchmarks/NOTES.md). Larger models have enough work per op for torch's thread count to pay.
SINGLE_THREAD_PARAMETERS = 2**24


def decoding_threads(model: torch.nn.Module, device: torch.device, threads: int) -> int:
    """Intra-op threads for decoding `model` token by token on `device`: 1 for a small model on the
    CPU, else `threads` (torch's current setting)."""
    if device.type != "cpu" or sum(p.numel() for p in model.parameters()) > SINGLE_THREAD_PARAMETERS:
        return threads
    return 1


def stand_in_tokens(tokenizer) -> list[int]:
    """The ids of a character vocabulary's padding and unseen-character stand-in (a text file's
    tokenizer has them): no text holds them, so generation never samples them."""
    index = getattr(tokenizer, "index", {})
    return [index[c] for c in (PAD, UNKNOWN) if c in index]


def _text(checkpoint: Path, device: torch.device, *, prompt: str | None, max_new_tokens: int, temperature: float,
          top_k: int | None, top_p: float | None, seed: int, verify: bool = True, **_) -> JobResult:
    """Continue a prompt with a language model and its saved tokenizer."""
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"The 'top_p' parameter of generate must be a float in (0, 1]. Got {top_p} instead.")
    prompt = "\n" if prompt is None else prompt
    if not prompt:
        raise ConfigError("The 'prompt' parameter of generate must be a non-empty string. Got '' instead.")
    tokenizer = load_tokenizer(checkpoint)
    model = load_model(checkpoint, device, verify=verify)
    ids = torch.tensor(tokenizer.encode(prompt), dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    try:
        torch.set_num_threads(decoding_threads(model, device, threads))
        out = model.generate(ids, max_new_tokens, temperature, top_k, top_p, generator=generator,
                             suppress_tokens=stand_in_tokens(tokenizer))
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    return JobResult({"new_tokens": max_new_tokens,
                      "tokens_per_second": max_new_tokens / seconds if seconds > 0 else 0.0},
                     details={"text": tokenizer.decode(out.tolist()), "prompt": prompt})


def _images(checkpoint: Path, device: torch.device, *, n: int, out: str | os.PathLike, seed: int,
            verify: bool = True, **_) -> JobResult:
    """Decode `n` codes drawn from the prior; write a PNG grid (or a .npy array)."""
    from ..report.autoencoder import save_samples

    model = load_model(checkpoint, device, verify=verify)
    path = save_samples(model, n, out, torch.Generator(device=device).manual_seed(seed))
    return JobResult({"n": n}, figures=[str(path)], details={"samples": str(path)})


GENERATORS = {"text": _text, "images": _images}


def generate(checkpoint: str | os.PathLike, *, prompt: str | None = None, max_new_tokens: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, n: int = 64,
             out: str | os.PathLike = "samples.png", seed: int = 0, device: str = "auto",
             verify: bool = True) -> JobResult:
    """Generate from a checkpoint: a language model continues `prompt` (``details["text"]``); a VAE
    or AAE decodes `n` samples of its prior into `out` (a PNG grid, or ``.npy``). Given the folder of a
    ``train --seeds`` run, the lowest seed's run generates (a `RunNote` says so)."""
    started = time.perf_counter()
    checkpoint = single_run(checkpoint, "generate")
    name = read_config(checkpoint)["model"]["name"]
    kind = model_info(name).generates
    if kind is None:
        able = [m for m in list_models() if model_info(m).generates is not None]
        raise ConfigError(f"checkpoint {checkpoint} holds a {name}, which cannot generate; models that can: "
                          f"{', '.join(able)}.")
    result = GENERATORS[kind](checkpoint, resolve_device(device), prompt=prompt, max_new_tokens=max_new_tokens,
                              temperature=temperature, top_k=top_k, top_p=top_p, n=n, out=out, seed=seed,
                              verify=verify)
    result.checkpoint = str(checkpoint)
    result.seconds = time.perf_counter() - started
    return result
