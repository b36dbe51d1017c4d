"""Where real datasets are read from.

The data directory is a root holding one folder per dataset (``mnist/``,
``planetoid/``, ``omniglot/``, ``tinyshakespeare/``, ``sst2/``). It is, in order:
the `data_dir` argument (``--data-dir``), the ``ARCHLAB_DATA`` environment
variable, or ``$XDG_CACHE_HOME/archlab/data`` (``~/.cache/archlab/data``).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "archlab" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("ARCHLAB_DATA")
    if env:
        return Path(env).expanduser()
    return default_data_dir()
