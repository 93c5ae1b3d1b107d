"""Atomic file replacement: write a temporary sibling, fsync, rename.

A failure (or a kill) while writing leaves the previous file untouched.
Temporary siblings carry the writer's process id, so one left behind by a
killed process is removed by the next write to the same path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator

_MARK = ".kbtmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def stale_siblings(path: str) -> list[str]:
    """The temporary siblings of `path` whose writing process is gone."""
    directory, base = os.path.split(os.path.abspath(path))
    pattern = re.compile(
        re.escape(f".{base}{_MARK}") + r"(\d+)-[0-9a-f]+(\.old)?(\..*)?$"
    )
    try:
        entries = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    return [
        os.path.join(directory, entry)
        for entry in entries
        if (match := pattern.match(entry))
        and not _pid_alive(int(match.group(1)))
    ]


def _remove_stale_siblings(path: str) -> None:
    for sibling in stale_siblings(path):
        _remove(sibling)


def fsync_one(path: str) -> None:
    """Flushes one file's data, or one directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """Flushes what was just written at `path` (a file, or a directory
    and everything in it)."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in files:
                fsync_one(os.path.join(root, name))
            fsync_one(root)
    else:
        fsync_one(path)


def temporary_sibling(path: str, suffix: str = "") -> str:
    """A fresh, unused name next to `path`, ending with `suffix`."""
    directory, base = os.path.split(os.path.abspath(path))
    token = uuid.uuid4().hex[:12]
    return os.path.join(
        directory, f".{base}{_MARK}{os.getpid()}-{token}{suffix}"
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path to write; on success it replaces `path`.

    Works for files and for directories (a SavedModel). On any exception
    the temporary is removed and `path` is left as it was.

    Args:
        path: the final path.
        suffix: ending for the temporary name (e.g. ".keras", which Keras
            requires of the file it writes).
    """
    path = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    _remove_stale_siblings(path)
    temporary = temporary_sibling(path, suffix)
    try:
        yield temporary
        if not os.path.exists(temporary):
            raise FileNotFoundError(f"Nothing was written to {temporary}")
        fsync_tree(temporary)
        if os.path.isdir(temporary):
            _replace_directory(temporary, path)
        else:
            if os.path.isdir(path):
                raise IsADirectoryError(
                    f"{path} is a directory; cannot replace it with a file."
                )
            os.replace(temporary, path)
        # The rename itself: only the parent's entries, never its other
        # files (a run directory holds checkpoints others may be writing).
        fsync_one(directory)
    except OSError as error:
        _remove(temporary)
        if error.errno in (errno.ENOSPC, errno.EDQUOT) and not error.filename:
            # Writers (zip, HDF5, json) say the disk is full but not
            # where; the user needs the file they asked for.
            raise OSError(error.errno, os.strerror(error.errno), path) from None
        raise
    except BaseException:
        _remove(temporary)
        raise


def _replace_directory(new: str, path: str) -> None:
    if not os.path.exists(path):
        os.replace(new, path)
        return
    if not os.path.isdir(path):
        raise NotADirectoryError(
            f"{path} is a file; cannot replace it with a directory."
        )
    old = f"{new}.old"
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    _remove(old)
