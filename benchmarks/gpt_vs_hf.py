"""Training-step time of archlab's `gpt` against transformers' `GPT2LMHeadModel`, identical configuration.

Both models: the nanoGPT "baby GPT" (4 layers, 4 heads, 128-dim, context 64, vocabulary 65,
biases on as in GPT-2, no dropout), batch 12, AdamW, the same next-token cross-entropy on
the same random batches, fused AdamW for both. Rounds alternate between the two so load on
the machine hits both alike; the median and the best round of each are reported, with the
ratio archlab / HF (target <= 0.8).

Modes (``--modes``): ``eager``; ``compiled``, both models compiled in place
(``nn.Module.compile``, what ``archlab train --compile`` does; target <= 0.85); ``bf16``, both
eager with the forward under ``torch.autocast(bfloat16)`` (``--precision bf16``; no target).

    flock /tmp/archlab-heavy.lock .venv/bin/python benchmarks/gpt_vs_hf.py [--modes eager,compiled,bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from archlab import create_model

VOCAB, LAYERS, HEADS, EMBED, CONTEXT, BATCH = 65, 4, 4, 128, 64, 12


def build():
    torch.manual_seed(0)
    ours = create_model("gpt", vocab_size=VOCAB, num_layers=LAYERS, num_heads=HEADS, embed_dim=EMBED,
                        context_length=CONTEXT, dropout=0.0, bias=True)
    config = GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=EMBED, n_layer=LAYERS, n_head=HEADS,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True)
    theirs = GPT2LMHeadModel(config)
    theirs.config.use_cache = False
    return ours.train(), theirs.train()


TARGETS = {"eager": 0.8, "compiled": 0.85, "bf16": None}


def step_fn(model, forward, autocast=None):
    # fused AdamW: transformers' Trainer default ("adamw_torch_fused") with torch >= 2.8
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)

    def step(x, y):
        with autocast() if autocast is not None else contextlib.nullcontext():
            logits = forward(model, x)
            loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def run_mode(mode: str, args) -> dict[str, list[float]]:
    """Seconds a step of each model, per round, in `mode`."""
    ours, theirs = build()
    if mode == "compiled":
        ours.compile()
        theirs.compile()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if mode == "bf16" else None
    steps = {"archlab": step_fn(ours, lambda m, x: m(x), autocast),
             "hf": step_fn(theirs, lambda m, x: m(input_ids=x).logits, autocast)}
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, VOCAB, (args.steps, BATCH, CONTEXT + 1), generator=g)
    times = {name: [] for name in steps}
    for name, step in steps.items():  # warm-up (and, compiled, the compilation)
        for i in range(5):
            step(data[i % args.steps, :, :-1], data[i % args.steps, :, 1:])
    for _ in range(args.rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            for i in range(args.steps):
                step(data[i, :, :-1], data[i, :, 1:])
            times[name].append((time.perf_counter() - started) / args.steps)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=30, help="steps per round and model")
    parser.add_argument("--modes", default="eager,compiled,bf16", help="comma-separated: eager, compiled, bf16")
    args = parser.parse_args()
    ours, theirs = build()
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    print(f"parameters: archlab {n_ours:,}  hf {n_theirs:,}  threads {torch.get_num_threads()}")
    for mode in args.modes.split(","):
        times = run_mode(mode, args)
        target = TARGETS[mode]
        for label, reduce in (("median", statistics.median), ("best", min)):
            ours_ms, hf_ms = reduce(times["archlab"]) * 1e3, reduce(times["hf"]) * 1e3
            print(f"{mode:8s} train step (batch {BATCH}x{CONTEXT}), {label} of {args.rounds} rounds: archlab "
                  f"{ours_ms:.2f} ms  hf GPT2LMHeadModel {hf_ms:.2f} ms  ratio archlab/hf = {ours_ms / hf_ms:.3f}"
                  f"  ({f'target <= {target}' if target else 'no target'})")


if __name__ == "__main__":
    main()
