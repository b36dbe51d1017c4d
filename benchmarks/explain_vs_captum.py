"""Integrated Gradients on an MNIST CNN, batch 64, 50 Gauss-Legendre steps, then GradientShap, DeepLift,
KernelShap and Lime: archlab vs Captum.

Both sides explain the same 64 MNIST test images (random images when the data is absent)
with archlab's default `cnn` (2 conv blocks of 32 and 64 channels, a 128-unit head), in
one process, with their default calls: Captum's `IntegratedGradients(model).attribute(x,
target=y, n_steps=50)` evaluates all 3,200 scaled images in one pass; archlab picks its
internal batch itself. Captum with ``internal_batch_size=64`` is shown for reference.

    flock /tmp/archlab-heavy.lock python benchmarks/explain_vs_captum.py [--repeats 5]

Prints seconds per call (median and fastest of `repeats`, calls interleaved; on a shared
machine the fastest is the steadier of the two), the ratios archlab / Captum, and each call's
peak memory (the growth of the resident set, measured in a fresh
process per side so that the peaks do not mask each other).
Targets: ratio <= 0.5 against Captum's default call; peak memory no higher than Captum's.

The second table (``--only shap`` runs it alone) times, on the same model and images, each side's
default call: DeepLift on the 64 images (zero baseline); GradientShap on the 64 images against 10
reference images, stdevs 0.1, with n_samples 5 (Captum's default) and 50 (IG's 50 points); KernelShap
and Lime on 8 of the images with 49 features (4 x 4 patches) and 200 samples. Captum draws from the
global generators, archlab from its seeded one, so only DeepLift's values are compared (on this CNN a
ReLU feeds a max pool directly, where Captum's module hooks break DeepLift's completeness; the table
prints both completeness errors). Target: ratio <= 0.5 each.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import statistics
import time
import warnings
from pathlib import Path

import torch
from captum import attr as captum
from captum.attr import IntegratedGradients as CaptumIG

import archlab
from archlab.explain import DeepLift, GradientShap, IntegratedGradients, KernelShap, Lime

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def mnist_batch(data_dir: Path, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from archlab.data.mnist import read_mnist

        raw = read_mnist(data_dir / "mnist")
        x = torch.from_numpy(raw["test_images"][:batch]).float().div(255)[:, None]
        return x, torch.from_numpy(raw["test_labels"][:batch].astype("int64"))
    except FileNotFoundError:
        g = torch.Generator().manual_seed(0)
        return torch.rand(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)


def calls(model, x, y, steps):
    return {
        "archlab": lambda: IntegratedGradients(model).attribute(x, y, n_steps=steps),
        "captum": lambda: CaptumIG(model).attribute(x, target=y, n_steps=steps),
        "captum (internal_batch_size=64)": lambda: CaptumIG(model).attribute(x, target=y, n_steps=steps,
                                                                             internal_batch_size=64),
    }


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _peak_child(name, model_name, data_dir, batch, steps, queue) -> None:
    torch.manual_seed(0)
    model = archlab.create_model(model_name).eval()
    x, y = mnist_batch(data_dir, batch)
    call = calls(model, x, y, steps)[name]
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) left by loading the data
        f.write("5")
    before = _status_kib("VmRSS")
    call()
    queue.put((_status_kib("VmHWM") - before) / 1024)


def peak_mib(name, model_name, data_dir, batch, steps) -> float:
    """Growth of the peak resident set during one call, in a fresh (spawned) process (MiB)."""
    context = multiprocessing.get_context("spawn")  # not fork: a forked OpenMP pool can hang
    queue = context.Queue()
    child = context.Process(target=_peak_child, args=(name, model_name, data_dir, batch, steps, queue))
    child.start()
    value = queue.get()
    child.join()
    return value


def shap_calls(model, x, y) -> dict[str, tuple]:
    """method -> (archlab's call, Captum's call), each side's defaults where the settings leave them free."""
    g = torch.Generator().manual_seed(1)
    references = torch.rand(10, *x.shape[1:], generator=g)
    side = x.shape[-1]
    patches = (torch.arange(side)[:, None] // 4 * ((side + 3) // 4) + torch.arange(side)[None] // 4)[None, None]
    few, few_y = x[:8], y[:8]
    calls = {"DeepLift": (lambda: DeepLift(model).attribute(x, y),
                          lambda: captum.DeepLift(model).attribute(x, target=y))}
    for n in (5, 50):
        calls[f"GradientShap n_samples={n}"] = (
            lambda n=n: GradientShap(model).attribute(x, y, baselines=references, n_samples=n, stdevs=0.1),
            lambda n=n: captum.GradientShap(model).attribute(x, references, n_samples=n, stdevs=0.1, target=y))
    calls["KernelShap"] = (lambda: KernelShap(model).attribute(few, few_y, feature_mask=patches, n_samples=200),
                           lambda: captum.KernelShap(model).attribute(few, target=few_y, feature_mask=patches,
                                                                      n_samples=200))
    calls["Lime"] = (lambda: Lime(model).attribute(few, few_y, feature_mask=patches, n_samples=200),
                     lambda: captum.Lime(model).attribute(few, target=few_y, feature_mask=patches, n_samples=200))
    return calls


def shap_table(model, x, y, repeats: int) -> None:
    calls = shap_calls(model, x, y)
    with torch.no_grad():
        change = model(x).gather(1, y[:, None])[:, 0] - model(torch.zeros_like(x)).gather(1, y[:, None])[:, 0]
    ours, theirs = calls["DeepLift"][0](), calls["DeepLift"][1]()
    errors = [(a.flatten(1).sum(1) - change).abs().max().item() for a in (ours, theirs)]
    print(f"DeepLift completeness error (max over the batch): archlab {errors[0]:.1e}, Captum {errors[1]:.1e}")
    print(f"{'':28s} {'archlab s':>9s} {'captum s':>9s} {'ratio':>6s}  (fastest of {repeats}, calls interleaved)")
    for name, (archlab_call, captum_call) in calls.items():
        times: dict[str, list[float]] = {"archlab": [], "captum": []}
        for repeat in range(repeats):
            pair = [("archlab", archlab_call), ("captum", captum_call)]
            for side, call in pair[repeat % 2:] + pair[:repeat % 2]:
                started = time.perf_counter()
                call()
                times[side].append(time.perf_counter() - started)
        fast = {side: min(t) for side, t in times.items()}
        print(f"{name:28s} {fast['archlab']:9.3f} {fast['captum']:9.3f} {fast['archlab'] / fast['captum']:6.2f}"
              "  (target <= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="cnn", help="archlab image model (default: cnn)")
    parser.add_argument("--only", choices=("ig", "shap"), default=None, help="run one of the two tables")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    model = archlab.create_model(args.model).eval()
    x, y = mnist_batch(args.data_dir, args.batch)
    if args.only == "shap":
        shap_table(model, x, y, args.repeats)
        return
    runs = calls(model, x, y, args.steps)
    ours, theirs = runs["archlab"](), runs["captum"]()
    diff = (ours - theirs).abs().max().item() / theirs.abs().max().item()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for repeat in range(args.repeats):
        # the order rotates each round: the call that follows Captum's default call (about 1 GB) pays for
        # the freed memory's page faults, which would otherwise always fall on the same one
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            call = runs[name]
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(t) for name, t in times.items()}
    fastest = {name: min(t) for name, t in times.items()}
    peaks = {name: peak_mib(name, args.model, args.data_dir, args.batch, args.steps) for name in runs}
    print(f"IG, {args.model} on {args.batch} MNIST images, {args.steps} Gauss-Legendre steps, "
          f"{torch.get_num_threads()} threads; max relative difference archlab vs Captum {diff:.1e}")
    print(f"{'':34s} {'median s':>8s} {'fastest s':>9s} {'peak MiB':>9s}")
    for name in runs:
        print(f"{name:34s} {median[name]:8.3f} {fastest[name]:9.3f} {peaks[name]:9.1f}")
    for label, other in (("default call", "captum"), ("internal_batch_size=64", "captum (internal_batch_size=64)")):
        print(f"ratio archlab / captum ({label}): median {median['archlab'] / median[other]:.2f}, "
              f"fastest {fastest['archlab'] / fastest[other]:.2f}" + ("  (target <= 0.5)" if other == "captum" else ""))
    print(f"peak memory archlab / captum: {peaks['archlab'] / max(peaks['captum'], 1e-9):.2f}  (target <= 1)")
    if args.only is None:
        print()
        shap_table(model, x, y, args.repeats)


if __name__ == "__main__":
    main()
