"""Atomic, verified, rotating checkpoints.

Each checkpoint is a directory `ckpt-<step>` written atomically (the
model, optimizer and counters through `tf.train.Checkpoint`, a
`state.json`, and a manifest of checksums). The newest `keep` and the
best one are kept. Restoring walks from the newest to the oldest and
skips a damaged checkpoint with a warning that names it and the one used
instead; if checkpoints exist but none is usable, it refuses to start
afresh silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from typing import Any

import tensorflow as tf

from kerasblocks.io import _integrity
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError
from kerasblocks.training.errors import UserInputError

_NAME = re.compile(r"^ckpt-(\d{9})$")
_BEST = "BEST"


class NoUsableCheckpointError(RuntimeError):
    """Checkpoints exist but every one of them is damaged."""


class CheckpointManager:
    """Writes and finds checkpoints under `directory`.

    Args:
        directory: the checkpoints directory.
        keep: how many of the newest to keep (the best is kept besides).
        is_chief: False on non-chief workers of a multi-worker run, which
            write to a scratch directory that is removed again.
    """

    def __init__(self, directory: str, keep: int = 3, is_chief: bool = True):
        self.directory = directory
        self.keep = keep
        self.is_chief = is_chief
        os.makedirs(directory, exist_ok=True)

    def _all(self) -> list[str]:
        names = [n for n in os.listdir(self.directory) if _NAME.match(n)]
        return sorted(names)

    def best(self) -> str | None:
        path = os.path.join(self.directory, _BEST)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read().strip() or None

    def save(
        self, step: int, objects: dict[str, Any], state: dict, is_best=False
    ) -> str:
        """Writes checkpoint `step` and prunes old ones; returns its path."""
        name = f"ckpt-{step:09d}"
        target = os.path.join(self.directory, name)
        checkpoint = tf.train.Checkpoint(**objects)
        if not self.is_chief:
            # Every worker must take part in writing; only the chief's
            # copy is kept. The scratch copy goes outside the run
            # directory, which the chief reads and syncs meanwhile.
            scratch = tempfile.mkdtemp(prefix="kb-worker-checkpoint-")
            try:
                checkpoint.write(os.path.join(scratch, "ckpt"))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return target
        with atomic_path(target) as temporary:
            os.makedirs(temporary)
            checkpoint.write(os.path.join(temporary, "ckpt"))
            with open(os.path.join(temporary, "state.json"), "w") as f:
                json.dump(state, f, indent=1, sort_keys=True)
            _integrity.seal_directory(
                temporary, {"format": "kerasblocks.checkpoint"}
            )
        if is_best:
            with atomic_path(os.path.join(self.directory, _BEST)) as temporary:
                with open(temporary, "w") as f:
                    f.write(name)
        self._prune()
        return target

    def _prune(self) -> None:
        names = self._all()
        best = self.best()
        for name in names[: -self.keep]:
            if name != best:
                shutil.rmtree(
                    os.path.join(self.directory, name), ignore_errors=True
                )

    def latest(self) -> tuple[str, dict] | None:
        """The newest usable checkpoint and its state, or None if there is
        no checkpoint at all.

        Raises:
            NoUsableCheckpointError: checkpoints exist, none is usable.
        """
        names = self._all()
        damaged = []
        for name in reversed(names):
            path = os.path.join(self.directory, name)
            try:
                manifest = _integrity.verify_directory(path)
                if manifest is None:
                    raise CorruptFileError(path, "no manifest (incomplete)")
                with open(os.path.join(path, "state.json")) as f:
                    state = json.load(f)
            except (CorruptFileError, OSError, ValueError) as error:
                damaged.append((name, str(error)))
                continue
            if damaged:
                warnings.warn(
                    f"Checkpoint {damaged[0][0]} is damaged ({damaged[0][1]}); "
                    f"resuming from {name} instead.",
                    stacklevel=2,
                )
            return path, state
        if damaged:
            raise NoUsableCheckpointError(
                f"No usable checkpoint in {self.directory}: "
                + "; ".join(f"{n}: {why}" for n, why in damaged[:3])
                + ". Delete the directory (or pass --overwrite) to start "
                "afresh."
            )
        return None

    def find(self, which: str) -> str:
        """The path of checkpoint `which`: "latest" (the newest usable),
        "best", or a directory name such as "ckpt-000000100".

        Raises:
            UserInputError: there is no such checkpoint.
        """
        run_dir = os.path.dirname(self.directory)
        if which == "latest":
            found = self.latest()
            if found is None:
                raise UserInputError(f"{run_dir}: no checkpoint yet")
            return found[0]
        name = self.best() if which == "best" else which
        path = os.path.join(self.directory, name or "")
        if not name or not os.path.isdir(path):
            raise UserInputError(
                f"{run_dir}: no checkpoint {which!r}; give --checkpoint="
                "latest, best, or a ckpt-* name under checkpoints/."
            )
        return path

    @staticmethod
    def restore(path: str, objects: dict[str, Any]) -> None:
        status = tf.train.Checkpoint(**objects).read(os.path.join(path, "ckpt"))
        status.assert_existing_objects_matched()
