"""One writer at a time in a run's output folder.

A run holds ``.NAME.lock`` beside its folder ``NAME`` for as long as it trains: an
exclusive `fcntl.flock` on a file that holds the writer's PID. The kernel drops the
lock when the process dies, however it dies, so a lock file left by a killed run is
simply taken over. Within one process the lock is re-entrant: `fit` and the
checkpoint writer it calls take the same folder's lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError

# A writer that finds the lock taken retries this long: a reader that puts back a checkpoint
# after a crash holds it for milliseconds, a training run for its whole length.
WRITER_WAIT = 0.5

_held: dict[Path, list[int]] = {}  # lock file -> [file descriptor, depth]
_guard = threading.Lock()


def lock_file(path: str | os.PathLike) -> Path:
    path = Path(path).absolute()
    return path.with_name(f".{path.name}.lock")


def holder(path: str | os.PathLike) -> str:
    """The process named in a folder's lock file, as ``PID 1234`` (it may have died since)."""
    try:
        pid = lock_file(path).read_text().strip()
    except OSError:
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "PID unknown"


def _try_acquire(lock: Path) -> int | None:
    """A descriptor of `lock` exclusively locked by this process, or None when another holds it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # The previous holder unlinks the file as it lets go; a lock on that unlinked file
        # guards nothing, so start again on the file now at the path.
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd


def _enter(lock: Path, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        with _guard:
            entry = _held.get(lock)
            if entry is not None:
                entry[1] += 1
                return True
            fd = _try_acquire(lock)
            if fd is not None:
                _held[lock] = [fd, 1]
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _exit(lock: Path) -> None:
    with _guard:
        entry = _held[lock]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[lock]
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
            os.close(entry[0])


@contextmanager
def hold_run_dir(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock on the run folder `path` (which need not exist yet) until the block ends,
    however it ends; `ConfigError` naming the holder's PID when another process holds it."""
    path = Path(path)
    lock = lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    if not _enter(lock, WRITER_WAIT):
        raise ConfigError(f"{path} is in use by another archlab run ({holder(path)}, lock file {lock}); "
                          "wait for it to finish, or choose another --out.")
    try:
        yield
    finally:
        _exit(lock)


@contextmanager
def try_hold_run_dir(path: str | os.PathLike) -> Iterator[bool]:
    """Hold the lock if it is free (True), else nothing (False); never waits and never creates
    folders. A folder where the lock file cannot be created (read-only) gives False."""
    lock = lock_file(path)
    try:
        held = _enter(lock, 0.0)
    except OSError:
        held = False
    try:
        yield held
    finally:
        if held:
            _exit(lock)

