"""Every embedded default beside the best simple classical baseline on the same split.

For each row, the archlab default (a registered model trained with its registration's defaults, or
the job's defaults) and scikit-learn (or a plain NumPy) baseline fitted on the same training split
and scored on the same test split, in one process:

- classifiers: `cnn` on digits, `lstm` on digits-seq, `mlp` on iris, wine, breast-cancer; against
  LogisticRegression, SVC and kNN (scikit-learn's defaults; the best of the three on test is shown);
- `gcn` on karate against label spreading over the graph's adjacency;
- `archlab anomaly` (`ae`, `vae`) on each digit against PCA(8) reconstruction error fitted on that digit;
- `archlab meta-train maml --data digits --ways 3` against the nearest class mean on raw pixels,
  on the same 600 test episodes (digits 6-9);
- `gpt` on arithmetic (test loss, nats a character, every test character once in non-overlapping
  windows of the model's context) against an interpolated character n-gram scored on the same windows,
  its order and smoothing chosen on the val split.

    OMP_NUM_THREADS=1 python benchmarks/baselines.py [--only classifiers,karate,anomaly,fewshot,gpt]
        [--seeds 3] [--anomaly-models ae,vae]

`--seeds N` repeats the classifier and karate rows on N splits (data seed = training seed = 0..N-1)
and prints means: the test sets are small (23 iris flowers), so one example is 1-4 points. It also
meta-trains the few-shot row with seeds 0..N-1 (each scored on its own 600 test episodes): on 6
meta-train classes the seed moves the score by a few points.
A row is `ok` where archlab is at least as good as the baseline.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

import numpy as np
import torch

import archlab
from archlab.data import load_dataset, task_sampler
from archlab.jobs import MetaConfig, meta_train, train_one_class

CLASSIFIERS = [("cnn", "digits"), ("lstm", "digits-seq"), ("mlp", "iris"), ("mlp", "wine"), ("mlp", "breast-cancer")]
ROWS: list[tuple[str, str, float, str, float, bool]] = []


def row(name: str, archlab_label: str, ours: float, baseline_label: str, theirs: float, higher: bool = True) -> None:
    ok = ours >= theirs if higher else ours <= theirs
    ROWS.append((name, archlab_label, ours, baseline_label, theirs, ok))
    print(f"{name:28s} {archlab_label:>22s} {ours:8.4f}   {baseline_label:>24s} {theirs:8.4f}   "
          f"{'ok' if ok else 'BELOW'}", flush=True)


def flat(split) -> tuple[np.ndarray, np.ndarray]:
    x = split["x"]
    return x.reshape(len(x), -1).numpy(), split["y"].numpy()


def classical_classifiers() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    return {"LogisticRegression": LogisticRegression(max_iter=5000), "SVC": SVC(), "kNN": KNeighborsClassifier()}


def classifiers(seeds: int) -> None:
    for model, name in CLASSIFIERS:
        ours, theirs = [], defaultdict(list)
        for seed in range(seeds):
            data = load_dataset(name, seed=seed)
            (x, y), (x_test, y_test) = flat(data["train"]), flat(data["test"])
            for label, baseline in classical_classifiers().items():
                theirs[label].append(baseline.fit(x, y).score(x_test, y_test))
            ours.append(archlab.train(model, data, seed=seed, quiet=True).metrics["test_accuracy"])
        best = max(theirs, key=lambda k: np.mean(theirs[k]))
        row(f"{name} accuracy", model, float(np.mean(ours)), best, float(np.mean(theirs[best])))


def label_spreading_accuracy(data) -> float:
    """scikit-learn's LabelSpreading with the graph's adjacency as its kernel (nodes as their indices)."""
    from sklearn.semi_supervised import LabelSpreading

    graph = data["train"].graph
    n = graph.num_nodes
    adjacency = np.zeros((n, n))
    adjacency[graph.edge_index[0].numpy(), graph.edge_index[1].numpy()] = 1.0
    labels = np.full(n, -1)
    train = data["train"].mask.numpy()
    labels[train] = graph.y.numpy()[train]
    nodes = np.arange(n, dtype=float)[:, None]
    spread = LabelSpreading(kernel=lambda a, b: adjacency[a[:, 0].astype(int)][:, b[:, 0].astype(int)],
                            alpha=0.2, max_iter=1000).fit(nodes, labels)
    test = data["test"].mask.numpy()
    return float((spread.transduction_[test] == graph.y.numpy()[test]).mean())


def karate(seeds: int) -> None:
    ours, theirs = [], []
    for seed in range(seeds):
        data = load_dataset("karate", seed=seed)
        theirs.append(label_spreading_accuracy(data))
        ours.append(archlab.train("gcn", data, seed=seed, quiet=True).metrics["test_accuracy"])
    row("karate accuracy", "gcn", float(np.mean(ours)), "label spreading", float(np.mean(theirs)))


def pca_auroc(data, normal_class: int, components: int = 8) -> float:
    from sklearn.decomposition import PCA
    from sklearn.metrics import roc_auc_score

    (x, y), (x_test, y_test) = flat(data["train"]), flat(data["test"])
    pca = PCA(components).fit(x[y == normal_class])
    scores = ((x_test - pca.inverse_transform(pca.transform(x_test))) ** 2).sum(1)
    return float(roc_auc_score(y_test != normal_class, scores))


def anomaly(models: list[str]) -> None:
    data = load_dataset("digits")
    for model in models:
        for digit in range(10):
            ours = train_one_class(model, data, digit, quiet=True).metrics["test_auroc"]
            row(f"digits anomaly {digit} AUROC", f"anomaly --model {model}", ours, "PCA(8) recon error",
                pca_auroc(data, digit))


def nearest_class_mean(sampler, n_tasks: int, seed: int, chunk: int = 32) -> float:
    """Accuracy of the nearest support-class mean (raw pixels, Euclidean) on the query examples of the
    tasks `MAML.evaluate` draws with the same seed (the same generator, drawn in the same chunks)."""
    generator = torch.Generator().manual_seed(seed)
    correct, total, done = 0, 0, 0
    while done < n_tasks:
        tasks = sampler.sample(min(chunk, n_tasks - done), generator)
        for i in range(len(tasks)):
            support, query = tasks.task(i)
            xs, xq = support["x"].flatten(1), query["x"].flatten(1)
            means = torch.stack([xs[support["y"] == c].mean(0) for c in range(sampler.output_dim)])
            correct += int((torch.cdist(xq, means).argmin(1) == query["y"]).sum())
            total += len(query["y"])
        done += len(tasks)
    return correct / total


def fewshot(seeds: int, tasks: int = 600) -> None:
    from archlab.jobs.meta import load_learner
    import tempfile

    ours, theirs = [], []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as folder:
            out = f"{folder}/maml-digits"
            config = MetaConfig(algorithm="maml", data="digits", ways=3, seed=seed)
            meta_train(config, out=out, eval_tasks=0, quiet=True, device="cpu")
            learner, config, _ = load_learner(out)
            test = task_sampler("digits", split="test", ways=3, shots=config.shots, query=15, seed=config.seed)
            steps = [config.inner_steps]
            ours.append(learner.evaluate(test, tasks, steps, seed=0)[f"accuracy_step{steps[0]}"])
        theirs.append(nearest_class_mean(test, tasks, seed=0))
    row("digits 3-way 1-shot accuracy", "meta-train maml", float(np.mean(ours)), "nearest class mean",
        float(np.mean(theirs)))


class CharNGram:
    """Interpolated character n-gram: p_n(c | h) = (count(h, c) + k p_{n-1}(c | h')) / (count(h) + k),
    down to a uniform distribution; h' is h without its first character."""

    def __init__(self, order: int, vocab_size: int):
        self.order, self.vocab_size = order, vocab_size
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]

    def fit(self, ids: list[int]) -> CharNGram:
        for t in range(len(ids)):
            for n in range(min(t, self.order - 1) + 1):  # contexts of n characters
                self.counts[n][tuple(ids[t - n:t])][ids[t]] += 1
        return self

    def log_prob(self, context: tuple, token: int, k: float) -> float:
        p = 1.0 / self.vocab_size
        for n in range(min(len(context), self.order - 1) + 1):
            seen = self.counts[n].get(context[len(context) - n:] if n else ())
            if seen:
                p = (seen[token] + k * p) / (sum(seen.values()) + k)
        return float(np.log(p))

    def loss(self, ids: list[int], window: int, k: float) -> float:
        """Mean negative log-likelihood of every token after the first, in non-overlapping windows of
        `window` inputs whose contexts stop at the window's start (as the LM task scores a model)."""
        total, count = 0.0, 0
        for start in range(0, len(ids) - 1 - (len(ids) - 1) % window, window):
            for t in range(window):
                total -= self.log_prob(tuple(ids[start:start + t + 1]), ids[start + t + 1], k)
                count += 1
        return total / count


def char_ngram_loss(data, window: int) -> tuple[float, str]:
    """Test loss of the n-gram whose order and smoothing do best on the val split."""
    ids = {split: data[split].tokens.tolist() for split in ("train", "val", "test")}
    models = {order: CharNGram(order, data.spec.num_classes).fit(ids["train"]) for order in (4, 6, 8, 10, 12)}
    order, k = min(((o, k) for o in models for k in (0.1, 0.5, 2.0)),
                   key=lambda ok: models[ok[0]].loss(ids["val"], window, ok[1]))
    return models[order].loss(ids["test"], window, k), f"char {order}-gram, k={k}"


def gpt_arithmetic() -> None:
    data = load_dataset("arithmetic")
    result = archlab.train("gpt", data, quiet=True)
    theirs, label = char_ngram_loss(data, result.model.context_length)
    row("arithmetic test loss", "gpt", result.metrics["test_loss"], label, theirs, higher=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="classifiers,karate,anomaly,fewshot,gpt")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--anomaly-models", default="ae,vae")
    args = parser.parse_args()
    torch.set_num_threads(1)
    parts = args.only.split(",")
    started = time.perf_counter()
    print(f"{'row':28s} {'archlab default':>22s} {'':8s}   {'best baseline':>24s}")
    if "classifiers" in parts:
        classifiers(args.seeds)
    if "karate" in parts:
        karate(args.seeds)
    if "anomaly" in parts:
        anomaly(args.anomaly_models.split(","))
    if "fewshot" in parts:
        fewshot(args.seeds)
    if "gpt" in parts:
        gpt_arithmetic()
    below = [r[0] for r in ROWS if not r[5]]
    print(f"\n{len(ROWS) - len(below)} of {len(ROWS)} rows at or above the baseline "
          f"({time.perf_counter() - started:.0f} s)" + (f"; below: {', '.join(below)}" if below else ""))


if __name__ == "__main__":
    main()
