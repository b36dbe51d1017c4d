"""Where a report was made: versions, the device, the git commit of the working directory, and
SHA-256 digests of the data files a run read."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path

import torch

from .._version import __version__

#: at most this many files of a data folder are hashed (the rest are counted)
MAX_HASHED_FILES = 64


def git_commit(folder: str | os.PathLike | None = None) -> str | None:
    """The commit checked out in `folder` (the working directory by default), with ``-dirty`` when
    tracked files have changes; None outside a git repository or without git."""
    try:
        run = dict(cwd=folder or os.getcwd(), capture_output=True, text=True, timeout=10)
        head = subprocess.run(["git", "rev-parse", "HEAD"], **run)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run)
        return head.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
               f"{torch.get_num_threads()} torch threads)"
    return str(device)


def environment(device: torch.device) -> list[tuple[str, str]]:
    """``(what, value)`` rows: archlab, torch and python versions, platform, device, git commit."""
    commit = git_commit()
    return [("archlab", __version__), ("torch", torch.__version__),
            ("python", f"{platform.python_version()} ({platform.python_implementation()})"),
            ("platform", platform.platform()), ("device", device_name(device)),
            ("git commit", commit or "not run inside a git repository")]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(paths: list[Path]) -> tuple[list[tuple[str, int, str]], int]:
    """``(path, bytes, sha256)`` of each file in `paths` (folders walked, in name order), and how many
    files past `MAX_HASHED_FILES` were left unhashed."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
    rows = [(str(f), f.stat().st_size, sha256(f)) for f in files[:MAX_HASHED_FILES]]
    return rows, max(0, len(files) - MAX_HASHED_FILES)
