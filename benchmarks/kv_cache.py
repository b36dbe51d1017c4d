"""Per-token generation time of `gpt` with the key/value cache against recomputing the full context.

A 4-layer, 128-dim GPT with a context of 256 continues a 16-token prompt up to the full
context (240 new tokens, greedy), once with `use_cache=True` and once with `use_cache=False`;
both must give the same tokens. Prints the per-token times and their ratio (target >= 3).

    flock /tmp/archlab-heavy.lock .venv/bin/python benchmarks/kv_cache.py
"""

from __future__ import annotations

import argparse
import time

import torch

from archlab import create_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = create_model("gpt", vocab_size=65, num_layers=4, num_heads=4, embed_dim=128,
                         context_length=args.context).eval()
    prompt = torch.randint(0, 65, (1, args.prompt))
    new = args.context - args.prompt
    best = {}
    outputs = {}
    for use_cache in (True, False):
        model.generate(prompt, 8, temperature=0, use_cache=use_cache)  # warm-up
        runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            outputs[use_cache] = model.generate(prompt, new, temperature=0, use_cache=use_cache)
            runs.append((time.perf_counter() - started) / new)
        best[use_cache] = min(runs)
    assert torch.equal(outputs[True], outputs[False]), "cached and recomputed generation differ"
    print(f"context {args.context}, {new} new tokens after a {args.prompt}-token prompt (same tokens both ways)")
    print(f"per token: KV cache {best[True] * 1e3:.2f} ms  full recompute {best[False] * 1e3:.2f} ms")
    print(f"speed-up = {best[False] / best[True]:.2f}x  (target >= 3)")


if __name__ == "__main__":
    main()
