"""Bad inputs and faults against the `archlab` command, each in its own subprocess: a table of what happened.

Run on request, not collected by pytest (it lives outside ``tests/``; each case is a fresh
interpreter, so the whole matrix takes a few minutes)::

    PYTHONPATH=src .venv/bin/python scripts/fault_matrix.py            # every case
    PYTHONPATH=src .venv/bin/python scripts/fault_matrix.py -k predict # the cases whose name holds 'predict'

Every case runs ``python -m archlab ...`` from this source tree in a temporary folder, on tiny data
(digits, wine, arithmetic; one epoch or a few steps), under a 3 GiB address-space limit and a time
limit so that a case that would exhaust memory fails here instead of on the machine. For each case
the table gives the exit code, the first line on stderr, whether a Python traceback reached the
user, whether work was lost (a checkpoint replaced or a run's result overwritten without a word),
and a verdict against what the case expects: ``refuse`` (a non-zero exit, one line, no traceback,
nothing lost or run) or ``succeed``. ``FAIL`` marks a case that does not do what it expects today,
with the reason; the table reports what happened, whichever it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
MEMORY_LIMIT = 3 * 2**30
TIMEOUT = 120


@dataclass
class Outcome:
    code: str  # the exit code, or several joined by "/" (concurrent) or "->" (sequential)
    stderr: str
    lost: bool = False
    silent: bool = False  # exit 0 on an input that should have been refused
    note: str = ""


@dataclass
class Run:
    code: int | str  # "timeout" when the time limit stopped it
    stdout: str
    stderr: str


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "archlab", *args]


def environment() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    env.pop("ARCHLAB_DATA", None)
    return env


def run(args: list[str], cwd: Path, timeout: float = TIMEOUT) -> Run:
    try:
        done = subprocess.run(command(*args), cwd=cwd, env=environment(), capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired as err:  # its captured output is bytes on POSIX, even with text=True
        stderr = err.stderr or ""
        return Run("timeout", "", stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr)
    return Run(done.returncode, done.stdout, done.stderr)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(command(*args), cwd=cwd, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_limit_memory)


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(file.name.encode())
        h.update(file.read_bytes())
    return h.hexdigest()


def outcome(done: Run, **extra) -> Outcome:
    return Outcome(str(done.code), done.stderr, **extra)


class Workspace:
    """A temporary folder with the base checkpoints the cases read, trained once, on first use."""

    def __init__(self, root: Path):
        self.root = root
        self._bases: dict[str, Path] = {}
        self._digests: dict[str, str] = {}

    def base(self, name: str) -> Path:
        if name not in self._bases:
            args = {"mlp-wine": ["train", "mlp", "--data", "wine", "--epochs", "1"],
                    "cnn-digits": ["train", "cnn", "--data", "digits", "--epochs", "1"],
                    "gpt-arithmetic": ["train", "gpt", "--data", "arithmetic", "--steps", "2", "--eval-every", "2",
                                       "--set", "num_layers=1", "--set", "embed_dim=16", "--set", "num_heads=2",
                                       "--set", "context_length=16"]}[name]
            out = self.root / "base" / name
            done = run([*args, "--out", str(out), "--quiet"], self.root)
            if done.code != 0:
                raise SystemExit(f"the base checkpoint {name} could not be trained: {done.stderr.strip()}")
            self._bases[name] = out
            self._digests[name] = digest(out)
        return self._bases[name]

    def copy(self, name: str, as_: str) -> Path:
        target = self.root / as_
        shutil.copytree(self.base(name), target)
        return target

    def bases_changed(self) -> bool:
        """Whether any base checkpoint (which no case may write) differs from when it was trained."""
        return any(digest(self._bases[n]) != d for n, d in self._digests.items())

    def path(self, name: str) -> Path:
        return self.root / name


def blank_png(path: Path, width: int, height: int) -> None:
    """A valid 1-bit PNG of zero pixels: a few kilobytes that declare `width` x `height`."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


class WritesMarker:
    """Pickles as a call of ``touch MARKER``: what a malicious weight file does when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class DeclaresHugeArray:
    """Pickles as numpy's reconstruction of an array that declares 10^7 x 10^7 floats (364 TiB)."""

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(0))[0], (np.ndarray, (10**7, 10**7), b"f"))


# ---- the cases: each returns an Outcome --------------------------------------------------


def refused_train(*args: str) -> Callable[[Workspace], Outcome]:
    def case(ws: Workspace) -> Outcome:
        out = Path(tempfile.mkdtemp(dir=ws.root)) / "run"
        done = run(["train", *args, "--out", str(out), "--quiet"], ws.root)
        return outcome(done, silent=done.code == 0)
    return case


def predict_file(write: Callable[[Path], None], suffix: str, base: str = "mlp-wine") -> Callable[[Workspace], Outcome]:
    def case(ws: Workspace) -> Outcome:
        file = ws.path(f"input-{write.__name__}{suffix}")
        write(file)
        done = run(["predict", str(ws.base(base)), str(file), "--json"], ws.root)
        note = ""
        if done.code == 0:
            try:
                json.loads(done.stdout)
            except ValueError:
                note = "stdout is not strict JSON"
        return outcome(done, silent=done.code == 0, note=note)
    return case


def nan_csv(path: Path) -> None:
    path.write_text("1,1,1,1,1,1,1,1,1,1,1,1,1\n1,1,1,1,nan,1,1,1,1,1,1,1,1\n")


def overflow_csv(path: Path) -> None:
    path.write_text("1,1,1,1,1,1,1,1,1,1,1,1,1\n1,1,1,1,1e40,1,1,1,1,1,1,1,1\n")


def inf_npy(path: Path) -> None:
    x = np.ones((3, 13))
    x[2, 5] = np.inf
    np.save(path, x)


def complex_npy(path: Path) -> None:
    np.save(path, np.ones((2, 13)) * (1 + 2j))


def huge_png(path: Path) -> None:
    blank_png(path, 20000, 20000)


def evaluate_damaged(damage: Callable[[Path], None], base: str = "mlp-wine") -> Callable[[Workspace], Outcome]:
    def case(ws: Workspace) -> Outcome:
        folder = ws.copy(base, f"damaged-{damage.__name__}")
        damage(folder)
        done = run(["evaluate", str(folder), "--json"], ws.root, timeout=30)
        note = ""
        if done.code == 0:
            metrics = json.loads(done.stdout)["metrics"]
            note = f"evaluated: test_accuracy {metrics.get('test_accuracy')}"
        elif done.code == "timeout":
            note = "stopped by the 30 s limit"
        return outcome(done, silent=done.code == 0, note=note)
    return case


def corrupt_config(folder: Path) -> None:
    (folder / "config.json").write_text('{"format": "archlab-checkpoint", "model": ')


def truncated_weights(folder: Path) -> None:
    file = folder / "model.safetensors"
    file.write_bytes(file.read_bytes()[:100])


def flipped_bit(folder: Path) -> None:
    file = folder / "model.safetensors"
    data = bytearray(file.read_bytes())
    header = struct.unpack("<Q", data[:8])[0]
    # the most significant byte of the first float32 of the first tensor: its exponent, a huge weight
    data[8 + header + 3] ^= 0x40
    file.write_bytes(bytes(data))


def huge_num_layers(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model"]["kwargs"]["num_layers"] = 10**6
    (folder / "config.json").write_text(json.dumps(config))


def missing_checkpoint(ws: Workspace) -> Outcome:
    done = run(["evaluate", str(ws.path("no-such-run"))], ws.root)
    return outcome(done, silent=done.code == 0)


def malicious_pytorch_bin(ws: Workspace) -> Outcome:
    import torch

    hf = ws.path("hf-bert")
    hf.mkdir()
    words = ["good", "bad", "film", "plot", "a", "very"]
    (hf / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    (hf / "config.json").write_text(json.dumps({
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": 11, "hidden_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32}))
    marker = ws.path("pwned")
    torch.save(WritesMarker(marker), hf / "pytorch_model.bin")
    data = ws.path("sst2-data") / "sst2"
    data.mkdir(parents=True)
    rows = ["sentence\tlabel"] + [f"a {'very good' if i % 2 else 'bad'} film \t{i % 2}" for i in range(20)]
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    (data / "dev.tsv").write_text("\n".join(rows[:9]) + "\n")
    done = run(["train", "bert", "--data", "sst2", "--data-dir", str(data.parent), "--pretrained", str(hf),
                "--steps", "1", "--out", str(ws.path("bert-run")), "--quiet"], ws.root)
    ran = marker.exists()
    weights_only_advice = "with `weights_only` set to `False`" in done.stderr or "weights_only=False" in done.stderr
    note = "; ".join(n for n, bad in (("the pickle RAN code", ran),
                                      ("torch's weights_only advice reached the user", weights_only_advice)) if bad)
    return outcome(done, silent=done.code == 0 or ran, note=note)


def planetoid_bomb(ws: Workspace) -> Outcome:
    folder = ws.path("planetoid-data") / "planetoid"
    folder.mkdir(parents=True)
    (folder / "ind.cora.x").write_bytes(pickle.dumps(DeclaresHugeArray(), protocol=2))
    done = run(["train", "gcn", "--data", "cora", "--data-dir", str(folder.parent), "--epochs", "1",
                "--out", str(ws.path("gcn-cora")), "--quiet"], ws.root)
    return outcome(done, silent=done.code == 0)


def train_over_a_checkpoint(ws: Workspace) -> Outcome:
    folder = ws.copy("cnn-digits", "existing-cnn")
    done = run(["train", "mlp", "--data", "wine", "--epochs", "1", "--out", str(folder), "--quiet"], ws.root)
    held = json.loads((folder / "config.json").read_text())["model"]["name"]
    lost = held != "cnn"
    return outcome(done, lost=lost, note=f"the folder now holds a {held}" if lost else "")


def concurrent_runs(ws: Workspace) -> Outcome:
    out = ws.path("shared-out")
    args = ["train", "mlp", "--data", "wine", "--epochs", "20", "--out", str(out), "--quiet", "--json"]
    first, second = start(args, ws.root), start(args, ws.root)
    results = [p.communicate(timeout=TIMEOUT) for p in (first, second)]
    codes = [first.returncode, second.returncode]
    stderr = next((err for (_, err), code in zip(results, codes) if code != 0), results[0][1])
    both = codes == [0, 0]
    return Outcome("/".join(map(str, codes)), stderr, lost=both,
                   note="both exited 0 and printed the same folder: one result overwrote the other" if both else "")


def divergence(ws: Workspace) -> Outcome:
    done = run(["train", "cnn", "--data", "digits", "--lr", "1e6", "--optimizer", "adamw", "--epochs", "1",
                "--out", str(ws.path("diverged")), "--quiet", "--json"], ws.root)
    note = ""
    if done.code == 0:
        metrics = json.loads(done.stdout)["metrics"]
        note = f"reported success: test_accuracy {metrics.get('test_accuracy')}, test_loss {metrics.get('test_loss')}"
    return outcome(done, silent=done.code == 0, note=note)


def interrupt_then_resume(ws: Workspace) -> Outcome:
    out = ws.path("interrupted")
    args = ["train", "cnn", "--data", "digits", "--epochs", "10", "--checkpoint-every", "20", "--out", str(out)]
    process = start(args, ws.root)
    deadline = time.monotonic() + TIMEOUT
    while not (out / "config.json").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, first_err = process.communicate(timeout=TIMEOUT)
    resumed = run([*args, "--resume", "--quiet", "--json"], ws.root)
    code = f"{process.returncode}->{resumed.code}"
    lost = process.returncode != 130 or resumed.code != 0
    return Outcome(code, first_err if process.returncode != 130 else resumed.stderr or first_err, lost=lost,
                   note="interrupted then resumed to the end" if not lost else "")


def evaluate_seed_folder(ws: Workspace) -> Outcome:
    out = ws.path("seeds")
    trained = run(["train", "mlp", "--data", "wine", "--epochs", "1", "--seeds", "2", "--out", str(out), "--quiet"],
                  ws.root)
    if trained.code != 0:
        return outcome(trained, note="train --seeds failed")
    done = run(["evaluate", str(out), "--json"], ws.root)
    return outcome(done)


CASES: list[tuple[str, str, Callable[[Workspace], Outcome]]] = [
    ("unknown model name", "refuse", refused_train("nope", "--data", "wine")),
    ("unknown dataset name", "refuse", refused_train("mlp", "--data", "nope")),
    ("--set bidirectional=yes (bool)", "refuse", refused_train("lstm", "--data", "digits-seq", "--epochs", "1",
                                                               "--set", "bidirectional=yes")),
    ("--set channels=[16, (list)", "refuse", refused_train("cnn", "--data", "digits", "--epochs", "1",
                                                           "--set", "channels=[16,")),
    ("gpt --set context_length=0", "refuse", refused_train("gpt", "--data", "arithmetic", "--steps", "1",
                                                           "--set", "context_length=0")),
    ("predict: NaN in a .csv", "refuse", predict_file(nan_csv, ".csv")),
    ("predict: 1e40 in a .csv (inf in float32)", "refuse", predict_file(overflow_csv, ".csv")),
    ("predict: inf in a .npy", "refuse", predict_file(inf_npy, ".npy")),
    ("predict: complex .npy", "refuse", predict_file(complex_npy, ".npy")),
    ("predict: 20000x20000 PNG", "refuse", predict_file(huge_png, ".png", base="cnn-digits")),
    ("Planetoid pickle declaring 364 TiB", "refuse", planetoid_bomb),
    ("evaluate: corrupt config.json", "refuse", evaluate_damaged(corrupt_config)),
    ("evaluate: missing checkpoint folder", "refuse", missing_checkpoint),
    ("evaluate: truncated model.safetensors", "refuse", evaluate_damaged(truncated_weights)),
    ("evaluate: bit-flipped model.safetensors", "refuse", evaluate_damaged(flipped_bit)),
    ("evaluate: config.json num_layers=10**6", "refuse", evaluate_damaged(huge_num_layers, base="gpt-arithmetic")),
    ("--pretrained: malicious pytorch_model.bin", "refuse", malicious_pytorch_bin),
    ("train into an existing checkpoint", "refuse", train_over_a_checkpoint),
    ("two concurrent runs on one --out", "refuse", concurrent_runs),
    ("cnn --lr 1e6 (divergence)", "refuse", divergence),
    ("SIGINT, then --resume", "succeed", interrupt_then_resume),
    ("evaluate a --seeds folder", "succeed", evaluate_seed_folder),
]


def first_line(text: str, root: Path) -> str:
    """The first non-empty line, with the temporary folder shown as TMP, cut at 140 characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "").replace(str(root), "TMP")
    return line if len(line) <= 140 else line[:137] + "..."


def verdict(expect: str, result: Outcome, traceback: bool) -> str:
    codes = result.code.replace("->", "/").split("/")
    problems = []
    if traceback:
        problems.append("traceback")
    if result.lost:
        problems.append("work lost")
    if expect == "refuse" and (result.silent or all(c == "0" for c in codes)):
        problems.append("accepted")
    elif expect == "refuse" and "timeout" in codes:
        problems.append("timeout")
    elif expect == "succeed" and codes[-1] != "0":
        problems.append(f"exit {result.code}")
    if result.note and problems:
        problems.append(result.note)
    return "ok" if not problems else "FAIL: " + "; ".join(problems)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only the cases whose name contains this text")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="archlab-faults-"))
    ws = Workspace(root)
    rows = []
    try:
        for name, expect, case in CASES:
            if args.k not in name:
                continue
            started = time.perf_counter()
            result = case(ws)
            result.lost = result.lost or ws.bases_changed()
            traceback = "Traceback (most recent call last)" in result.stderr
            rows.append((name, result.code, first_line(result.stderr, root), "yes" if traceback else "no",
                         "yes" if result.lost else "no", verdict(expect, result, traceback),
                         time.perf_counter() - started))
            print(f"{name}: {rows[-1][5]} ({rows[-1][6]:.1f} s)", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"cases ran in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("| case | exit | first stderr line | traceback | work lost | verdict |")
    print("|---|---|---|---|---|---|")
    for name, code, line, traceback, lost, judged, _ in rows:
        print(f"| {cell(name)} | {code} | {cell(line)} | {traceback} | {lost} | {cell(judged)} |")
    failing = sum(row[5] != "ok" for row in rows)
    print(f"\n{len(rows)} cases: {len(rows) - failing} ok, {failing} failing; "
          f"{sum(row[3] == 'yes' for row in rows)} tracebacks, {sum(row[4] == 'yes' for row in rows)} with work lost, "
          f"{sum('accepted' in row[5] for row in rows)} accepted that should have been refused.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
