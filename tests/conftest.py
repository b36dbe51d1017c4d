"""Shared fixtures. Real datasets come from ``../shared/data`` beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data root (``mnist/``, ``planetoid/``, ...); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}; CI always has them")
    return SHARED_DATA


def require_dataset(folder: str) -> Path:
    """Path of one dataset folder of the shared data root, or skip with the reason."""
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"{path} not found; CI has ../shared/data")
    return path


@pytest.fixture
def single_thread():
    """One intra-op thread: tests of many tiny ops (meta-learning) only spin-wait with several threads
    on a shared 2-core machine (70x slower measured here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
