"""archlab's streamed image folder against a hand-written DataLoader, side by side in one process.

A folder of PNGs (MNIST digits from the shared data when found, else scikit-learn's digits
enlarged to 28x28) is read with `memory_budget` below its decoded size, so archlab decodes it
batch by batch (`ImageFileSplit`). The reference is the usual hand-written pipeline: a map-style
dataset that opens each file with Pillow and returns a normalized float tensor, under a
`DataLoader` with the same batch size, shuffling and number of workers. Each side feeds one
epoch per round (optionally into a LeNet-5 training step), the order alternating between
rounds; the medians are compared. Resident memory is sampled throughout as the proportional set
size (PSS: shared pages split between the processes) of this process and its workers.

Target (issue 15): images/second >= 1.0x the hand-written loader's, with resident memory under
the budget plus 300 MB. Run on request only, on an otherwise idle machine:

    python benchmarks/image_folder.py [--images 20000] [--workers 2] [--rounds 3] [--train]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from PIL import Image

import archlab
from archlab.data import from_image_folder, resolve_data_dir
from archlab.data.image_folder import ImageFileSplit, image_files


def source_images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 28x28 images and labels: MNIST's training images when found, else digits."""
    root = Path(os.environ.get("ARCHLAB_SHARED_DATA", "/work/shared/data"))
    for candidate in (root, resolve_data_dir()):
        if (candidate / "mnist").is_dir():
            from archlab.data.mnist import read_mnist

            raw = read_mnist(candidate / "mnist")
            return raw["train_images"][:count], raw["train_labels"][:count]
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.stack([np.asarray(Image.fromarray((d * 255 / 16).astype(np.uint8)).resize((28, 28)))
                       for d in digits.images])
    index = np.arange(count) % len(images)
    return images[index], digits.target[index]


def write_folder(root: Path, count: int) -> None:
    images, labels = source_images(count)
    for c in np.unique(labels):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(root / str(label) / f"{i:06d}.png")


class PillowFiles(torch.utils.data.Dataset):
    """The hand-written reference: one file a sample, decoded and normalized in the worker."""

    def __init__(self, files: list[str], labels: torch.Tensor, mean: float, std: float):
        self.files, self.labels, self.mean, self.std = files, labels, mean, std

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with Image.open(self.files[i]) as img:
            x = torch.from_numpy(np.asarray(img.convert("L"), np.float32) / 255.0)[None]
        return (x - self.mean) / self.std, self.labels[i]


class PeakMemory:
    """The largest total PSS of this process and its children, sampled every 50 ms."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def total() -> int:
        me = psutil.Process()
        total = 0
        for process in (me, *me.children(recursive=True)):
            try:
                total += process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.total())
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="feed a LeNet-5 training step, not just the batches")
    parser.add_argument("--folder", type=Path, help="an existing class-folder layout to read instead")
    args = parser.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "images"
        if args.folder is None:
            write_folder(folder, args.images)
        count = len(image_files(folder))
        decoded = count * 28 * 28 * 4
        budget = decoded // 2  # below the folder's decoded size: streamed
        baseline = PeakMemory().total()  # torch and archlab imported, nothing read yet
        started = time.perf_counter()
        with PeakMemory() as load_memory:
            data = from_image_folder(folder, memory_budget=budget, num_workers=args.workers)
        load_seconds = time.perf_counter() - started
        train = data.train
        assert isinstance(train, ImageFileSplit)
        mean, std = data.spec.preprocess["mean"][0][0][0], data.spec.preprocess["std"][0][0][0]
        reference = PillowFiles(train.paths, train["y"], mean, std)
        print(f"{count} PNGs ({decoded / 1e6:.1f} MB decoded), memory_budget {budget / 1e6:.1f} MB, "
              f"{args.workers} workers, batch {args.batch_size}; read and checked in {load_seconds:.1f} s "
              f"(peak {load_memory.peak / 1e6:.0f} MB); {baseline / 1e6:.0f} MB before reading (torch imported)")

        def consume(x: torch.Tensor, y: torch.Tensor, step) -> None:
            if step is None:
                x.sum()
            else:
                step(x, y)

        def make_step():
            if not args.train:
                return None
            model = archlab.create_model("lenet5")
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

            def step(x, y):
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            return step

        def archlab_epoch(seed: int) -> float:
            step = make_step()
            t = time.perf_counter()
            for batch in train.batches(args.batch_size, shuffle=True, seed=seed):
                consume(batch["x"], batch["y"], step)
            return len(train) / (time.perf_counter() - t)

        def torch_epoch(seed: int) -> float:
            step = make_step()
            loader = torch.utils.data.DataLoader(reference, batch_size=args.batch_size, shuffle=True,
                                                 num_workers=args.workers,
                                                 generator=torch.Generator().manual_seed(seed))
            t = time.perf_counter()
            for x, y in loader:
                consume(x, y, step)
            return len(train) / (time.perf_counter() - t)

        rates: dict[str, list[float]] = {"archlab ImageFileSplit": [], "hand-written DataLoader": []}
        peaks: dict[str, int] = {name: 0 for name in rates}
        runs = {"archlab ImageFileSplit": archlab_epoch, "hand-written DataLoader": torch_epoch}
        for r in range(args.rounds):
            names = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for name in names:
                with PeakMemory() as memory:
                    rates[name].append(runs[name](r))
                peaks[name] = max(peaks[name], memory.peak)
        median = {name: statistics.median(v) for name, v in rates.items()}
        for name in runs:
            print(f"{name:26s} {median[name]:9.0f} images/s  (min {min(rates[name]):.0f}, "
                  f"max {max(rates[name]):.0f})  peak PSS {peaks[name] / 1e6:6.0f} MB")
        ours, theirs = median["archlab ImageFileSplit"], median["hand-written DataLoader"]
        limit, peak = budget + 300e6, max(peaks["archlab ImageFileSplit"], load_memory.peak)
        print(f"ratio archlab / hand-written: {ours / theirs:.2f}x (target >= 1.0x); archlab's peak "
              f"{peak / 1e6:.0f} MB ({(peak - baseline) / 1e6:+.0f} MB over the process before reading) vs "
              f"budget + 300 MB = {limit / 1e6:.0f} MB: {'under' if peak <= limit else 'OVER'}")


if __name__ == "__main__":
    main()
