"""`archlab generate CKPT`: sample from a trained generative model.

What is generated depends on the checkpoint's task (``config.json`` "task"): each task
that can generate has a handler in `HANDLERS`, ``handler(args, checkpoint, config) -> payload``,
the payload being the JSON result (it prints its own human-readable output).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..data.tokenizer import load_tokenizer
from ..engine.checkpoint import load_model, read_config
from ..errors import ConfigError
from ..registry import model_info
from ..utils import resolve_device
from .common import add_common, emit_json, non_negative_float, positive_float, positive_int


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate from a checkpoint (text from a language model)")
    p.add_argument("checkpoint")
    p.add_argument("--prompt", default=None, help="text to continue (language models; default: a newline)")
    p.add_argument("--max-new-tokens", type=_non_negative_int, default=200)
    p.add_argument("--temperature", type=non_negative_float, default=1.0, help="0 is greedy decoding")
    p.add_argument("--top-k", type=positive_int, default=None)
    p.add_argument("--top-p", type=positive_float, default=None, help="nucleus sampling, in (0, 1]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=positive_int, default=64, help="VAE/AAE: number of images to sample")
    p.add_argument("--out", default="samples.png", help="VAE/AAE: PNG grid, or .npy for the raw array")
    add_common(p, data_dir=False)
    p.set_defaults(run=run_generate)


def generate_text(args, checkpoint: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Continue a prompt with a language model and its saved tokenizer."""
    if args.top_p is not None and args.top_p > 1:
        raise ConfigError(f"--top-p must be in (0, 1]; got {args.top_p}.")
    tokenizer = load_tokenizer(checkpoint)
    device = resolve_device(args.device)
    model = load_model(checkpoint, device)
    prompt = "\n" if args.prompt is None else args.prompt
    if not prompt:
        raise ConfigError("--prompt must not be empty.")
    ids = torch.tensor(tokenizer.encode(prompt), dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    started = time.perf_counter()
    out = model.generate(ids, args.max_new_tokens, args.temperature, args.top_k, args.top_p, generator=generator)
    seconds = time.perf_counter() - started
    text = tokenizer.decode(out.tolist())
    if not args.json:
        print(text)
    return {"text": text, "prompt": prompt,
            "metrics": {"new_tokens": args.max_new_tokens,
                        "tokens_per_second": args.max_new_tokens / seconds if seconds > 0 else 0.0}}


def generate_images(args, checkpoint: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Decode `--n` codes drawn from a VAE's or AAE's prior; write a PNG grid (or a .npy array)."""
    from ..report.autoencoder import save_samples

    device = resolve_device(args.device)
    model = load_model(checkpoint, device)
    path = save_samples(model, args.n, args.out, torch.Generator(device=device).manual_seed(args.seed))
    if not args.json:
        print(f"{args.n} samples written to {path}")
    return {"samples": str(path), "metrics": {"n": args.n}}


# checkpoint task -> handler
HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {"language-modeling": generate_text, "vae": generate_images,
                                                      "aae": generate_images}


def run_generate(args) -> int:
    started = time.perf_counter()
    checkpoint = Path(args.checkpoint)
    config = read_config(checkpoint)
    task = config.get("task") or model_info(config["model"]["name"]).task
    if task not in HANDLERS:
        raise ConfigError(f"checkpoint {checkpoint} holds a {config['model']['name']} ({task} task), which cannot "
                          f"generate; generate works for the tasks {', '.join(sorted(HANDLERS))}.")
    payload = HANDLERS[task](args, checkpoint, config)
    if args.json:
        emit_json({**payload, "checkpoint": str(checkpoint), "seconds": round(time.perf_counter() - started, 3)})
    return 0


COMMANDS = (add_generate,)
