"""The run directory's lock: one process trains in a directory at a time.

An exclusive `fcntl.flock` on `<run dir>/.lock`, held for the whole run.
The kernel drops the lock when its process dies, however it dies, so a
lock file left by a killed run is simply taken over; the file only
records which process held it last, for the message a second process
gets. The lock is taken before anything of the run is read or written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys

from kerasblocks.training.errors import DiskFullError, RunDirectoryError

LOCK = ".lock"


class RunLockedError(RunDirectoryError):
    """Another process holds the run directory's lock."""


def _holder(fd: int) -> str:
    """Who holds the lock, as the lock file says."""
    try:
        text = os.pread(fd, 200, 0).decode("ascii", "replace").strip()
    except OSError:
        return "another process"
    return f"pid {text}" if text.isdigit() else "another process"


class RunLock:
    """An exclusive lock on a run directory.

    Args:
        directory: the run directory (made if missing, and removed again
            on release if the lock was all that was put in it).
        wait: wait for the holder to finish instead of refusing.
        stream: where the line saying that it waits goes.

    Example:

    >>> import tempfile
    >>> path = tempfile.mkdtemp()
    >>> with RunLock(path):
    ...     try:
    ...         RunLock(path).acquire()
    ...     except RunLockedError as error:
    ...         print("busy:", "--wait_for_lock" in str(error))
    busy: True
    """

    def __init__(self, directory: str, *, wait: bool = False, stream=None):
        self.directory = directory
        self.path = os.path.join(directory, LOCK)
        self.wait = wait
        self.stream = stream
        self._fd: int | None = None
        self._made_directory = False

    def acquire(self) -> None:
        """Takes the lock, or raises `RunLockedError` (one line)."""
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise RunDirectoryError(
                f"--out_dir={self.directory} is a file; give a directory."
            )
        said = False
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not self.wait:
                    holder = _holder(fd)
                    os.close(fd)
                    self._undo_directory()
                    raise RunLockedError(
                        f"--out_dir={self.directory} is in use by another "
                        f"run ({holder}); wait for it to finish, pass "
                        "--wait_for_lock to wait, or give another --out_dir."
                    ) from None
                if not said:
                    print(
                        f"waiting for {_holder(fd)} to release "
                        f"{self.directory} ...",
                        file=self.stream or sys.stdout,
                        flush=True,
                    )
                    said = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            # The holder removes the file before it lets go, so the lock
            # just won may be on a file no longer there: try again.
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            return

    def _open(self) -> int:
        """The lock file, made (with the directory) if missing."""
        try:
            if not os.path.isdir(self.directory):
                os.makedirs(self.directory)
                self._made_directory = True
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise DiskFullError(self.path, None, 0) from None
            raise RunDirectoryError(
                f"--out_dir={self.directory}: cannot create the run's lock "
                f"file {self.path} ({error.strerror}); give a directory you "
                "can write to."
            ) from None

    def release(self) -> None:
        """Lets go of the lock (removing its file first, see `acquire`)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        self._undo_directory()
        os.close(self._fd)
        self._fd = None

    def _undo_directory(self) -> None:
        """Removes the directory `acquire` made if nothing else is in it."""
        if self._made_directory:
            with contextlib.suppress(OSError):
                os.rmdir(self.directory)  # only when empty

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
