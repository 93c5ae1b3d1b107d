"""The run directory's policy: what a start may do with what is there.

The directory is locked first (`lock`), then checked, which reads only.
Nothing is written until `start`, which the trainer calls once the
flags, the data and the model have been checked; a start that fails
before its first checkpoint is undone by `abandon`, so the next attempt
(with fixed flags, say) starts cleanly. A completed run is never trained
again without `--overwrite`. A run with checkpoints is resumed with the
settings it was trained with; other settings that change what is trained
need `allow_flag_changes`, and are then recorded in flags.json's
`flag_history` with the step they took effect (`record_resume`), so that
flags.json always describes every step trained.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Any

from kerasblocks.io._atomic import atomic_path
from kerasblocks.training import config as config_lib
from kerasblocks.training import record as record_lib
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import RunDirectoryError
from kerasblocks.training.lock import LOCK, RunLock
from kerasblocks.training.record import RunRecord

FLAGS = "flags.json"
MODEL = record_lib.FILE
COMPLETED = "COMPLETED"
CHECKPOINTS = "checkpoints"


def write_json(path: str, value: Any) -> None:
    """Writes `value` as JSON, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(value, f, indent=1, sort_keys=True, default=float)
            f.write("\n")


class RunDirectory:
    """One run's directory, as seen by one process.

    Args:
        config: the run's (validated) settings.
        chief: whether this process writes (non-chief workers only read).
    """

    def __init__(self, config: TrainConfig, chief: bool = True):
        self.config = config
        self.path = config.out_dir
        self.chief = chief
        self._replace = False
        self._created = False
        # Changes of the settings since the recorded ones, to record on
        # resume, and the record so far.
        self._changes: dict[str, tuple[Any, Any]] = {}
        self._history: list[dict[str, Any]] = []

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _has_checkpoints(self) -> bool:
        directory = self.file(CHECKPOINTS)
        return os.path.isdir(directory) and any(
            n.startswith("ckpt-") for n in os.listdir(directory)
        )

    def is_completed(self) -> bool:
        """A finished run (left alone unless --overwrite)."""
        return not self.config.overwrite and os.path.exists(
            self.file(COMPLETED)
        )

    def lock(self, *, wait: bool = False, stream=None):
        """The run's lock (the chief's; other workers only read), to hold
        for the whole run: see `kerasblocks.training.lock.RunLock`."""
        if not self.chief:
            return contextlib.nullcontext()
        return RunLock(self.path, wait=wait, stream=stream)

    def check(self, allow_flag_changes: bool = False) -> None:
        """Raises `RunDirectoryError` if this run may not use the
        directory; writes nothing."""
        path, flags = self.path, self.file(FLAGS)
        if os.path.exists(path) and not os.path.isdir(path):
            raise RunDirectoryError(
                f"--out_dir={path} is a file; give a directory."
            )
        if not os.path.isdir(path) or not set(os.listdir(path)) - {LOCK}:
            return
        if not os.path.exists(flags):
            raise RunDirectoryError(
                f"--out_dir={path} exists and is not a run directory; give "
                "another --out_dir."
            )
        if self.config.overwrite:
            self._replace = True
            return
        saved, self._history = self._saved()
        changes = self.config.changes(saved)
        if not self._has_checkpoints():
            # A run that never reached a checkpoint holds nothing to
            # resume: other settings start it afresh.
            self._replace = bool(changes)
            return
        fixed = {k: v for k, v in changes.items() if k in config_lib.FIXED}
        if fixed:
            raise RunDirectoryError(
                f"--out_dir={path} holds a run with different settings "
                f"({config_lib.describe_changes(fixed)}) that its "
                "checkpoints cannot resume with; use the recorded flags, "
                "another --out_dir, or --overwrite to start afresh."
            )
        trained = {
            k: v for k, v in changes.items() if self.config.needs_permission(k)
        }
        if trained and not allow_flag_changes:
            raise RunDirectoryError(
                f"--out_dir={path} holds a run with different settings "
                f"({config_lib.describe_changes(trained)}); rerun with the "
                "recorded flags to resume, add --allow_flag_changes to train "
                "on with the new ones (recorded in flags.json), "
                "--overwrite to start afresh, or give another --out_dir."
            )
        self._changes = changes

    def _saved(self) -> tuple[TrainConfig, list[dict[str, Any]]]:
        with open(self.file(FLAGS)) as f:
            values = json.load(f)
        return TrainConfig.from_dict(values), values.get(config_lib.HISTORY, [])

    def saved_config(self) -> TrainConfig:
        return self._saved()[0]

    def read(self, name: str) -> Any | None:
        """A JSON file of the run, or None when it is not there (or is
        about to be replaced)."""
        if self._replace or not os.path.exists(self.file(name)):
            return None
        with open(self.file(name)) as f:
            return json.load(f)

    def start(self, record: RunRecord) -> None:
        """Writes the run's settings and model config (the chief only).
        A resume with changed settings keeps the recorded ones until
        `record_resume` knows the step the change takes effect."""
        if not self.chief:
            return
        if self._replace:
            self._empty()
            self._history = []
        self._created = not os.path.isdir(self.path) or not os.path.exists(
            self.file(FLAGS)
        )
        os.makedirs(self.path, exist_ok=True)
        if not self._changes:
            self._write_flags()
        self.write(MODEL, record.to_dict())

    def record_resume(self, step: int) -> None:
        """Records the settings changed on this resume, from `step` on."""
        if not self.chief or not self._changes:
            return
        self._history = self._history + [
            {"step": step, "flag": k, "old": old, "new": new}
            for k, (old, new) in self._changes.items()
        ]
        self._changes = {}
        self._write_flags()

    def _write_flags(self) -> None:
        values = json.loads(self.config.to_json())
        values[config_lib.HISTORY] = self._history
        self.write(FLAGS, values)

    def write(self, name: str, value: Any) -> None:
        if self.chief:
            write_json(self.file(name), value)

    def abandon(self) -> None:
        """After a failed start: removes what this process made of the
        run if it never reached a checkpoint (the lock goes on release)."""
        if self.chief and self._created and not self._has_checkpoints():
            with contextlib.suppress(OSError):
                self._empty()

    def _empty(self) -> None:
        """Removes everything but the lock, which this process holds."""
        for name in set(os.listdir(self.path)) - {LOCK}:
            entry = self.file(name)
            if os.path.isdir(entry) and not os.path.islink(entry):
                shutil.rmtree(entry)
            else:
                os.remove(entry)
