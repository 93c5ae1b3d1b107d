"""What can stop a run, by whose fault.

`UserInputError` is the user's to fix (a flag, a file, a name, a shape,
a data set too small): the tools show its one-line message and exit 2.
Anything else is a bug or an outage and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import re
import shutil


class UserInputError(ValueError):
    """Input the user gave cannot work; the message names the flag or
    file and what to do."""


class RunDirectoryError(UserInputError):
    """The run directory holds something else than this run."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class PeerLostError(RuntimeError):
    """A multi-worker run lost a peer: a collective failed or timed out.
    The message names the peer; rerun every worker to resume."""


class DiskFullError(OSError):
    """The disk filled while the run wrote `path`. Whatever was written
    before is intact (every write is atomic): free space and rerun to
    resume."""

    def __init__(self, path: str, needed: int | None, free: int | None):
        shown = (
            f": it needs about {_megabytes(needed)}"
            if needed is not None
            else ""
        )
        if free is not None:
            shown += f", {_megabytes(free)} free there"
        super().__init__(
            f"disk full writing {path}{shown}. The checkpoints written "
            "before are intact: free space and rerun the same command to "
            "resume."
        )
        self.path, self.needed, self.free = path, needed, free

    @classmethod
    def of_checkpoint(cls, path: str, model, optimizers) -> DiskFullError:
        """The error of a run whose checkpoints hold `model` and
        `optimizers` (None for none): it says about what a checkpoint
        needs, and what is free on the disk of `path`."""
        variables = list(model.weights)
        for optimizer in optimizers:
            if optimizer is not None:
                variables += list(optimizer.variables)
        needed = sum(int(v.numpy().nbytes) for v in variables)
        return cls(path, needed, free_bytes(path))

    def __str__(self) -> str:
        return self.args[0]


def free_bytes(path: str) -> int | None:
    """The free space of the disk that holds `path` (or its nearest
    existing parent); None when it can't be read."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


# What the operating system (or TensorFlow, quoting it) says.
_NO_SPACE = "No space left on device"
_NO_SPACE_PATH = re.compile(r"(/[^;:\n]*?)(?:; |: )" + _NO_SPACE)
_TEMPORARY = re.compile(r"^\.(.+)\.kbtmp-\d+-[0-9a-f]+.*$")


def disk_full_path(error: BaseException) -> str | None:
    """If `error` (or what caused it) is a full disk: the path that was
    being written (the run's own name for it, not a temporary sibling's;
    "" when unknown). Otherwise None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DiskFullError):
            return error.path
        full = isinstance(error, OSError) and error.errno in (
            errno.ENOSPC,
            errno.EDQUOT,
        )
        text = str(error)
        if full or _NO_SPACE in text:
            # An OSError's file, or the file a converter child could
            # not write (ConversionError.path).
            path = getattr(error, "filename", None) or getattr(
                error, "path", None
            )
            if not path:
                match = _NO_SPACE_PATH.search(text)
                path = match.group(1) if match else ""
            return _own_name(str(path))
        error = error.__cause__ or error.__context__
    return None


def _own_name(path: str) -> str:
    """`dir/name` for a temporary `dir/.name.kbtmp-...` (see
    kerasblocks.io._atomic), walking up past anything written inside
    one."""
    parts = path.split(os.sep)
    for i, part in enumerate(parts):
        match = _TEMPORARY.match(part)
        if match:
            return os.sep.join(parts[:i] + [match.group(1)])
    return path
