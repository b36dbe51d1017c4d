"""How long `--report` takes once a run is trained, and how large the page is, for each family.

Each family trains a small run in this process with ``report=True`` (``train ... --report``),
which writes the page at the end with the trained data passed along; the report's own time
is the job's ``details["report_seconds"]``, wall clock, and ``report_cpu_seconds``, processor
time, which a busy machine inflates less (meta-training: `write_report` after the run, as
``meta-train --report`` does). Targets: under 10 s and
under 5 MB a family. Figures depend on the machine's load; run it on an idle one.

    python benchmarks/report.py [--data-dir ../shared/data] [--only cnn,gcn-cora]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import torch

from archlab.jobs import MetaConfig, meta_train, train, train_one_class, train_seeds, write_report

WORDS = ["the", "film", "was", "plot", "actors", "very", "and", "a", "story", "it"]


def texts(path: Path, rows: int = 600) -> Path:
    rng = random.Random(0)
    lines = ["text,label"]
    for i in range(rows):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
        words.insert(rng.randint(0, len(words)), "good" if i % 2 else "bad")
        lines.append(f"{' '.join(words)},{'positive' if i % 2 else 'negative'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def families(root: Path, data_dir: str):
    """family -> how to train its run into a folder (and write its report)."""
    return {
        "cnn": lambda out: train("cnn", "digits", epochs=3, out=out, quiet=True, report=True),
        "lenet5": lambda out: train("lenet5", "mnist", steps=100, out=out, quiet=True, report=True,
                                    data_dir=data_dir),
        "lstm-sst2": lambda out: train("lstm", "sst2", steps=100, out=out, quiet=True, report=True,
                                       data_dir=data_dir),
        "transformer-text": lambda out: train("transformer", texts(root / "texts.csv"), data_format="text-table",
                                              epochs=2, out=out, quiet=True, report=True),
        "gpt": lambda out: train("gpt", "arithmetic", steps=100, eval_every=50, out=out, quiet=True, report=True,
                                 model_kwargs={"embed_dim": 64, "num_heads": 4, "num_layers": 2}),
        "vae": lambda out: train("vae", "mnist", steps=100, out=out, quiet=True, report=True, data_dir=data_dir),
        "anomaly": lambda out: train_one_class("ae", "digits", 0, epochs=3, out=out, quiet=True, report=True),
        "gcn-cora": lambda out: train("gcn", "cora", epochs=50, out=out, quiet=True, report=True,
                                      data_dir=data_dir),
        "gat-cora": lambda out: train("gat", "cora", epochs=20, out=out, quiet=True, report=True,
                                      data_dir=data_dir),
        "gae-cora": lambda out: train("gae", "cora", epochs=50, out=out, quiet=True, report=True,
                                      data_dir=data_dir),
        "mlp-seeds": lambda out: train_seeds("mlp", "wine", [0, 1, 2], epochs=20, out=out, quiet=True,
                                             report=True),
        "maml-sinusoid": lambda out: meta_train(MetaConfig(algorithm="maml", data="sinusoid", iterations=50),
                                                out=out, eval_tasks=20, quiet=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHLAB_DATA", "../shared/data"))
    parser.add_argument("--only", default=None, help="comma-separated families")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chosen = families(root, args.data_dir)
        names = args.only.split(",") if args.only else list(chosen)
        unknown = [n for n in names if n not in chosen]
        if unknown:
            parser.error(f"unknown families {unknown}; choose from {', '.join(chosen)}")
        print(f"{'family':<18} {'train s':>8} {'report s':>9} {'cpu s':>8} {'MB':>6} {'figures':>7}   "
              f"(torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f})")
        for name in names:
            out = root / name
            started = time.perf_counter()
            job = chosen[name](out)
            if "report_seconds" not in job.details:  # meta-training: the CLI writes its report after
                written = write_report([out], out / "report.html", data_dir=args.data_dir)
                job.details.update(report_seconds=written.seconds, report_cpu_seconds=written.details["cpu_seconds"])
            seconds, cpu = job.details["report_seconds"], job.details["report_cpu_seconds"]
            trained = time.perf_counter() - started - seconds
            page = out / "report.html"
            figures = page.read_text().count('<img class="figure"')
            print(f"{name:<18} {trained:8.1f} {seconds:9.2f} {cpu:8.2f} {page.stat().st_size / 1e6:6.2f} "
                  f"{figures:7d}", flush=True)


if __name__ == "__main__":
    main()
