"""`archlab generate CKPT`: sample from a trained generative model (what it generates is declared
in its registration)."""

from __future__ import annotations

from .common import add_common, add_verify, emit_json, non_negative_float, positive_float, positive_int


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
    p.add_argument("--n", type=positive_int, default=64, help="image generators (vae, aae): number of images to sample")
    p.add_argument("--out", default="samples.png", help="image generators: PNG grid, or .npy for the raw array")
    add_common(p, data_dir=False)
    add_verify(p)
    p.set_defaults(run=run_generate)


def run_generate(args) -> int:
    from .. import jobs

    result = jobs.generate(args.checkpoint, prompt=args.prompt, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, n=args.n, out=args.out,
                           seed=args.seed, device=args.device, verify=args.verify)
    if args.json:
        emit_json({**result.summary(), **{k: v for k, v in result.details.items()}})
    elif "text" in result.details:
        print(result.details["text"])
    else:
        print(f"{result.metrics['n']} samples written to {result.details['samples']}")
    return 0


COMMANDS = (add_generate,)
