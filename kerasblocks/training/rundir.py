"""The run directory's policy: what a start may do with what is there.

Checking reads only. Nothing is written until `start`, which the trainer
calls once the flags, the data and the model have been checked; a start
that fails before its first checkpoint is undone by `abandon`, so the
next attempt (with fixed flags, say) starts cleanly. A completed run is
never trained again without `--overwrite`, and a run with checkpoints is
only resumed with the settings it was started with.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from kerasblocks.io._atomic import atomic_path
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import RunDirectoryError

FLAGS = "flags.json"
MODEL = "model_config.json"
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

    def check(self) -> None:
        """Raises `RunDirectoryError` if this run may not use the
        directory; writes nothing."""
        path, flags = self.path, self.file(FLAGS)
        if os.path.exists(path) and not os.path.isdir(path):
            raise RunDirectoryError(
                f"--out_dir={path} is a file; give a directory."
            )
        if not os.path.isdir(path) or not os.listdir(path):
            return
        if not os.path.exists(flags):
            raise RunDirectoryError(
                f"--out_dir={path} exists and is not a run directory; give "
                "another --out_dir."
            )
        if self.config.overwrite:
            self._replace = True
            return
        saved = self.saved_config()
        changed = self.config.differences(saved)
        if changed and self._has_checkpoints():
            raise RunDirectoryError(
                f"--out_dir={path} holds a run with different settings "
                f"({', '.join(changed)}); use the same flags to resume, "
                "another --out_dir, or --overwrite to start afresh."
            )
        # A run that never reached a checkpoint holds nothing to resume.
        self._replace = bool(changed)

    def saved_config(self) -> TrainConfig:
        with open(self.file(FLAGS)) as f:
            return TrainConfig.from_dict(json.load(f))

    def read(self, name: str) -> Any | None:
        """A JSON file of the run, or None when it is not there (or is
        about to be replaced)."""
        if self._replace or not os.path.exists(self.file(name)):
            return None
        with open(self.file(name)) as f:
            return json.load(f)

    def start(self, model_record: dict[str, Any]) -> None:
        """Writes the run's settings and model config (the chief only)."""
        if not self.chief:
            return
        if self._replace:
            shutil.rmtree(self.path)
        self._created = not os.path.isdir(self.path) or not os.path.exists(
            self.file(FLAGS)
        )
        os.makedirs(self.path, exist_ok=True)
        self.write(FLAGS, json.loads(self.config.to_json()))
        self.write(MODEL, model_record)

    def write(self, name: str, value: Any) -> None:
        if self.chief:
            write_json(self.file(name), value)

    def abandon(self) -> None:
        """After a failed start: removes the run if this process made it
        and it never reached a checkpoint."""
        if self.chief and self._created and not self._has_checkpoints():
            shutil.rmtree(self.path, ignore_errors=True)
