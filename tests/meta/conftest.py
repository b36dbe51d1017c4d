"""The meta-learning tests run many tiny ops, so they run single-threaded (see `single_thread`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_threaded(single_thread):
    yield
