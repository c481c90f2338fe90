"""One training process per run directory: a lock file holding the holder's pid.

``RUN_DIR/.lock`` is created atomically (``O_CREAT | O_EXCL``) with ``pid host start-time``. A
second ``train.py`` on the same run directory is refused with the holder's pid. A lock left by a
process that no longer exists (killed with SIGKILL, a crashed machine) is taken over with a
warning. A lock from another host cannot be checked: the message says how to remove it.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from pathlib import Path

from common.errors import UserError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: Path) -> tuple[int | None, str, str]:
    """(pid, host, started) from a lock file; pid None when unreadable."""
    try:
        parts = path.read_text().split(maxsplit=2)
        return int(parts[0]), parts[1], parts[2].strip() if len(parts) > 2 else "?"
    except (OSError, ValueError, IndexError):
        return None, "", "?"


class RunLock:
    """``with RunLock(run_dir): ...`` holds ``run_dir/.lock`` for the duration."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()} {socket.gethostname()} "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        return True

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return self
            pid, host, started = _read(self.path)
            here = socket.gethostname()
            if pid == os.getpid() and host == here:
                raise UserError(f"{self.path.parent}: this process already trains in this run "
                                "directory")
            if pid is not None and host != here:
                raise UserError(f"{self.path.parent}: in use by process {pid} on {host} (since "
                                f"{started}); if no training runs there, delete {self.path}")
            if pid is not None and _alive(pid):
                raise UserError(f"{self.path.parent}: in use by training process {pid} (since "
                                f"{started}); wait for it to finish, stop it, or pass another "
                                f"--out (if process {pid} is not a training run, delete {self.path})")
            what = f"process {pid} (since {started}) no longer runs" if pid else "it is unreadable"
            print(f"warning: taking over the stale lock {self.path}: {what}", file=sys.stderr)
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as error:
                if error.errno != errno.ENOENT:
                    raise UserError(f"{self.path}: cannot remove the stale lock ({error}); "
                                    "delete it by hand") from None
        raise UserError(f"{self.path}: could not take the lock (another process keeps taking it); "
                        "check for other training processes on this run directory")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        pid, _, _ = _read(self.path)
        if pid == os.getpid():
            try:
                self.path.unlink()
            except OSError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
