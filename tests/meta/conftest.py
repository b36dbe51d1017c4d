"""The meta-learning tests run many tiny ops; with several threads they spin-wait badly when the
2 CPU cores are shared (70x slower measured here), so they run single-threaded."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
