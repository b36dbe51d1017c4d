"""Start-up time of the command line beside the torch import it cannot avoid.

Targets (issue 14): ``archlab --help`` <= 0.5 s, and ``archlab list`` <= 1.2x ``python -c "import torch"``,
medians of 5 fresh processes on an idle machine. archlab's modules are byte-compiled first, as
``pip install`` does (torch's already are): with ``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__``,
every run would compile archlab's sources again, about 0.6 s here. Run with nothing else busy:

    python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import time
from pathlib import Path

import archlab

COMMANDS = {
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "archlab --help": [sys.executable, "-m", "archlab", "--help"],
    "archlab list": [sys.executable, "-m", "archlab", "list"],
}


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    compileall.compile_dir(str(Path(archlab.__file__).parent), quiet=1)
    for command in COMMANDS.values():  # warm the file cache once
        wall_time(command)
    median = {}
    for name, command in COMMANDS.items():
        times = [wall_time(command) for _ in range(args.repeats)]
        median[name] = statistics.median(times)
        print(f"{name:28s} median {median[name]:.3f} s  (min {min(times):.3f}, max {max(times):.3f})")
    torch_time = median["python -c 'import torch'"]
    print(f"archlab --help: {median['archlab --help']:.3f} s (target <= 0.5 s)")
    print(f"ratio archlab list / import torch: {median['archlab list'] / torch_time:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
