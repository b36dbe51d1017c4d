"""archlab's `gpt` beside nanoGPT at nanoGPT's baby-GPT recipe on Tiny Shakespeare, both scored by archlab.

The recipe (nanoGPT's ``config/train_shakespeare_char.py`` with its README's CPU overrides): 4 layers x
4 heads x 128, context 64, no dropout, no biases, batch 12, AdamW lr 1e-3 with betas (0.9, 0.99) and weight
decay 0.1 on matrices only, 100 warm-up steps then cosine decay to lr / 10, gradient clipping at 1.0.
archlab runs it as ``archlab train gpt --data tinyshakespeare --data-set context_length=64 --steps N
--batch-size 12 --lr 1e-3 --set num_layers=4 --set num_heads=4 --set embed_dim=128 --set activation=gelu``
(the rest are gpt's defaults); nanoGPT runs its own ``train.py`` on the same token ids (archlab's 90/10
split, written as nanoGPT's ``train.bin``/``val.bin``/``meta.pkl`` in a temporary folder; nothing is
written into the checkout). nanoGPT saves its checkpoint at iteration N, after N updates, the same
updates at the same learning rates as archlab's N steps (its loop then makes one more update, unsaved).

Before training, archlab's initial weights are copied into nanoGPT's model and the two must give the
same logits (float64): the architectures are the same function. Both trained models are then scored
by archlab's language-modelling evaluation: every validation token once, non-overlapping 64-token windows.
The random draws differ (nanoGPT seeds 1337 in its train.py; archlab uses --seed), so the two agree
within seed noise, not bit for bit.

    python scripts/repro/gpt_nanogpt.py --nanogpt path/to/nanoGPT --data-dir ../shared/data --steps 2000

Measured on 2 shared, heavily loaded CPU cores (one thread each): val loss archlab 1.9078 against nanoGPT
1.9006 after 2000 steps (about 19 minutes each, side by side); 2.4545 against 2.4634 after 200 steps.
Other archlab seeds at 2000 steps: 1.8987 (seed 1), 1.9112 (seed 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import archlab
from archlab.data import load_dataset
from archlab.data.tokenizer import TOKENIZER_FILE
from archlab.models.language_modeling import LanguageModelingTask

LAYERS, HEADS, WIDTH, CONTEXT, BATCH = 4, 4, 128, 64, 12
MODEL = {"num_layers": LAYERS, "num_heads": HEADS, "embed_dim": WIDTH, "context_length": CONTEXT, "dropout": 0.0,
         "bias": False, "activation": "gelu"}  # nanoGPT's MLP uses the exact GELU
# gpt's training defaults, spelled out (lr and steps come from the command line)
TRAIN = {"batch_size": BATCH, "weight_decay": 0.1, "schedule": "cosine", "warmup_steps": 100, "min_lr_ratio": 0.1,
         "grad_clip": 1.0}
# archlab parameter name -> nanoGPT's (lm_head.weight is tied to wte.weight in both)
RENAMES = (("embedding.", "transformer.wte."), ("positional.embedding.", "transformer.wpe."),
           ("blocks.", "transformer.h."), (".norm1.", ".ln_1."), (".norm2.", ".ln_2."),
           (".attention.in_proj.", ".attn.c_attn."), (".attention.out_proj.", ".attn.c_proj."),
           (".mlp.0.", ".mlp.c_fc."), (".mlp.2.", ".mlp.c_proj."))


def nanogpt_name(name: str) -> str:
    if name.startswith("norm."):
        return "transformer.ln_f." + name[len("norm."):]
    for ours, theirs in RENAMES:
        if name.startswith(ours) or (ours.startswith(".") and ours in name):
            name = name.replace(ours, theirs, 1)
    return name


def import_nanogpt(folder: Path):
    spec = importlib.util.spec_from_file_location("nanogpt_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.dont_write_bytecode = True  # leave the checkout as it is
    spec.loader.exec_module(module)
    return module


def same_function(nanogpt, ours: nn.Module, vocab_size: int) -> float:
    """Largest logit difference (float64) when `ours`'s weights are copied into nanoGPT's model."""
    config = nanogpt.GPTConfig(block_size=CONTEXT, vocab_size=vocab_size, n_layer=LAYERS, n_head=HEADS,
                               n_embd=WIDTH, dropout=0.0, bias=False)
    theirs = nanogpt.GPT(config).double().eval()
    ours = ours.double().eval()
    source = {nanogpt_name(k): v for k, v in ours.state_dict().items()}
    target = theirs.state_dict()
    if set(source) | {"lm_head.weight"} != set(target) | {"lm_head.weight"}:
        raise SystemExit(f"parameter names differ: {sorted(set(source) ^ set(target))}")
    with torch.no_grad():
        for name, tensor in target.items():
            value = source.get(name, source["transformer.wte.weight"])  # lm_head is tied to wte
            if value.shape != tensor.shape:
                raise SystemExit(f"{name}: archlab {tuple(value.shape)}, nanoGPT {tuple(tensor.shape)}")
            tensor.copy_(value)
    x = torch.randint(0, vocab_size, (4, CONTEXT), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (ours(x) - theirs(x, torch.zeros_like(x))[0]).abs().max().item()
    ours.float()
    return diff


class NanoGPTLogits(nn.Module):
    """A nanoGPT model as archlab's evaluation calls a language model: logits at every position."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.context_length = model.config.block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, torch.zeros_like(x))[0]  # given targets, nanoGPT returns every position's logits


def write_nanogpt_data(data, folder: Path) -> None:
    """archlab's token ids and vocabulary as nanoGPT's shakespeare_char files."""
    folder.mkdir(parents=True)
    for split in ("train", "val"):
        data[split].tokens.numpy().astype(np.uint16).tofile(folder / f"{split}.bin")
    chars = json.loads(data.files[TOKENIZER_FILE])["chars"]
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                     "stoi": {c: i for i, c in enumerate(chars)}}, f)


def start_nanogpt(folder: Path, data: Path, out: Path, steps: int, lr: float, threads: int, log: Path):
    command = [sys.executable, "-B", "train.py", "config/train_shakespeare_char.py", "--device=cpu",
               "--compile=False", "--dtype=float32", f"--dataset={data}", f"--out_dir={out}",
               f"--block_size={CONTEXT}", f"--batch_size={BATCH}", f"--n_layer={LAYERS}", f"--n_head={HEADS}",
               f"--n_embd={WIDTH}", "--dropout=0.0", f"--max_iters={steps}", f"--lr_decay_iters={steps}",
               f"--learning_rate={lr}", f"--min_lr={lr * TRAIN['min_lr_ratio']}", f"--eval_interval={steps}",
               "--eval_iters=1", "--always_save_checkpoint=True", f"--log_interval={max(1, steps // 10)}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen(command, cwd=folder, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nanogpt", required=True, type=Path, help="a checkout of github.com/karpathy/nanoGPT")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0, help="archlab's seed (nanoGPT's train.py seeds 1337)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run (they run side by side)")
    args = parser.parse_args()
    for name in ("model.py", "train.py", "configurator.py", "config/train_shakespeare_char.py"):
        if not (args.nanogpt / name).is_file():
            raise SystemExit(f"--nanogpt {args.nanogpt}: no {name}; expected a checkout of karpathy/nanoGPT.")
    torch.set_num_threads(args.threads)
    data = load_dataset("tinyshakespeare", args.data_dir, context_length=CONTEXT)
    vocab_size = data.spec.preprocess["vocab_size"]
    nanogpt = import_nanogpt(args.nanogpt.resolve())
    torch.manual_seed(args.seed)
    diff = same_function(nanogpt, archlab.create_model("gpt", vocab_size=vocab_size, **MODEL), vocab_size)
    print(f"same architecture: archlab's weights in nanoGPT's model give logits within {diff:.1e} (float64)")
    task = LanguageModelingTask()
    with tempfile.TemporaryDirectory(prefix="gpt-nanogpt-") as tmp:
        tmp = Path(tmp)
        write_nanogpt_data(data, tmp / "shakespeare_char")
        started = time.perf_counter()
        run = start_nanogpt(args.nanogpt.resolve(), tmp / "shakespeare_char", tmp / "nanogpt", args.steps, args.lr,
                            args.threads, tmp / "nanogpt.log")
        result = archlab.train("gpt", data, model_kwargs=MODEL, steps=args.steps, lr=args.lr, seed=args.seed,
                           eval_every=args.steps, quiet=True, out=tmp / "archlab", **TRAIN)
        archlab_seconds = time.perf_counter() - started
        if run.wait() != 0:
            raise SystemExit(f"nanoGPT's train.py failed:\n{(tmp / 'nanogpt.log').read_text()[-3000:]}")
        nanogpt_seconds = time.perf_counter() - started
        saved = torch.load(tmp / "nanogpt" / "ckpt.pt", map_location="cpu", weights_only=True)
        if saved["iter_num"] != args.steps:
            raise SystemExit(f"nanoGPT's checkpoint is from iteration {saved['iter_num']}, not {args.steps}.")
        theirs = nanogpt.GPT(nanogpt.GPTConfig(**saved["model_args"]))
        theirs.load_state_dict(saved["model"])
        scores = {"archlab gpt": task.evaluate(result.model.cpu(), data["val"], 256),
                  "nanoGPT": task.evaluate(NanoGPTLogits(theirs), data["val"], 256)}
    print(f"recipe: {LAYERS} layers x {HEADS} heads x {WIDTH}, context {CONTEXT}, batch {BATCH}, {args.steps} steps, "
          f"lr {args.lr:g} (100 warm-up steps, cosine to {args.lr * TRAIN['min_lr_ratio']:g}), weight decay 0.1, "
          f"betas (0.9, 0.99), clip 1.0; archlab seed {args.seed}, nanoGPT seed 1337")
    scored = (len(data["val"].tokens) - 1) // CONTEXT * CONTEXT
    print(f"scored by archlab: {scored:,} validation targets, each once, in non-overlapping windows of {CONTEXT}")
    print(f"{'':14s}{'val loss':>10s}{'val acc':>10s}")
    for name, score in scores.items():
        print(f"{name:14s}{score['loss']:10.4f}{score['accuracy']:10.4f}")
    gap = scores["archlab gpt"]["loss"] - scores["nanoGPT"]["loss"]
    print(f"{'difference':14s}{gap:+10.4f}   (training: archlab {archlab_seconds:.0f} s, nanoGPT "
          f"{nanogpt_seconds:.0f} s, side by side)")


if __name__ == "__main__":
    main()
