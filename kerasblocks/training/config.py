"""`TrainConfig`: the settings of one training run, validated eagerly.

Architecture is not configured here: a zoo name plus overrides (the
model's own constructor arguments) say what is built. These are the run
settings around it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from kerasblocks.training.errors import UserInputError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "step")
PRECISIONS = ("none", "float16", "bfloat16")
JIT = ("auto", "true", "false")
STRATEGIES = ("default", "mirrored", "multi_worker", "one_device", "tpu")
EXPORTS = ("saved_model", "keras", "h5", "tflite")
FREEZE = ("none", "backbone", "all_but_head")
# Settings a resumed run may change; anything else must match the run
# directory, or the resumed run would not be the same run.
RESUMABLE_CHANGES = (
    "epochs",
    "steps",
    "export",
    "checkpoint_every",
    "keep_checkpoints",
    "overwrite",
    "out_dir",  # a moved run directory is the same run
    "learning_rate",  # e.g. resuming with a lower rate after a NaN
)


@dataclasses.dataclass
class TrainConfig:
    """Run settings; see `tools/train.py --help` for each field."""

    model: str = "lenet"
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int = 20
    steps: int | None = None
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    schedule: str = "constant"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    init_from: str | None = None
    init_from_strict: bool = True
    freeze: str = "none"
    unfreeze_at_epoch: int | None = None
    finetune_lr_scale: float = 0.1
    mixed_precision: str = "none"
    jit_compile: str = "auto"
    strategy: str = "default"
    seed: int = 0
    deterministic: bool = False
    out_dir: str = ""
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    overwrite: bool = False
    export: tuple[str, ...] = ("saved_model", "keras")
    image_size: list[int] | None = None
    cache: str | None = None
    strict_data: bool = False

    def validate(self) -> TrainConfig:
        """Checks every field; raises `UserInputError` naming the first bad
        one."""

        def choice(name, options):
            value = getattr(self, name)
            if value not in options:
                raise UserInputError(
                    f"--{name} must be one of {', '.join(options)}. "
                    f"Received: {value!r}"
                )

        def positive(name, allow_none=False):
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < 1
            ):
                raise UserInputError(
                    f"--{name} must be a positive integer. Received: {value!r}"
                )

        if not isinstance(self.model, str) or not self.model:
            raise UserInputError(
                "--model must name a zoo model (see zoo.list_models())."
            )
        if not isinstance(self.model_overrides, dict):
            raise UserInputError(
                "--model_overrides must be a JSON object. "
                f"Received: {self.model_overrides!r}"
            )
        positive("epochs")
        positive("steps", allow_none=True)
        positive("batch_size")
        positive("checkpoint_every")
        positive("keep_checkpoints")
        choice("optimizer", OPTIMIZERS)
        choice("schedule", SCHEDULES)
        choice("mixed_precision", PRECISIONS)
        choice("jit_compile", JIT)
        choice("strategy", STRATEGIES)
        self._validate_transfer(choice, positive)
        if not self.learning_rate > 0:
            raise UserInputError(
                "--learning_rate must be positive. "
                f"Received: {self.learning_rate!r}"
            )
        if self.weight_decay < 0:
            raise UserInputError(
                f"--weight_decay must be >= 0. Received: {self.weight_decay!r}"
            )
        if not 0 <= self.label_smoothing < 1:
            raise UserInputError(
                "--label_smoothing must be in [0, 1). "
                f"Received: {self.label_smoothing!r}"
            )
        self.export = tuple(self.export)
        for kind in self.export:
            if kind not in EXPORTS:
                raise UserInputError(
                    f"--export takes {', '.join(EXPORTS)}. Received: {kind!r}"
                )
        if self.image_size is not None:
            size = self.image_size
            size = [size, size] if isinstance(size, int) else list(size)
            if len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0
                for v in size
            ):
                raise UserInputError(
                    "--image_size must be SIZE or HEIGHT,WIDTH (positive). "
                    f"Received: {self.image_size!r}"
                )
            self.image_size = size
        if self.cache is not None and not self.cache:
            self.cache = None
        if not self.out_dir:
            self.out_dir = f"runs/{self.model}-{self.dataset}"
        return self

    def _validate_transfer(self, choice, positive) -> None:
        choice("freeze", FREEZE)
        positive("unfreeze_at_epoch", allow_none=True)
        if self.unfreeze_at_epoch is not None and self.freeze == "none":
            raise UserInputError(
                "--unfreeze_at_epoch needs a frozen start; add "
                "--freeze=backbone or --freeze=all_but_head."
            )
        if self.unfreeze_at_epoch == 1:
            raise UserInputError(
                "--unfreeze_at_epoch=1 unfreezes before training starts; "
                "use --freeze=none, or an epoch >= 2."
            )
        if not self.finetune_lr_scale > 0:
            raise UserInputError(
                "--finetune_lr_scale must be positive. "
                f"Received: {self.finetune_lr_scale!r}"
            )
        source = self.init_from
        if source is not None and not isinstance(source, str):
            raise UserInputError(
                f"--init_from must be a string. Received: {source!r}"
            )
        if source and source != "imagenet" and not os.path.exists(source):
            raise UserInputError(
                f"--init_from={source}: no such file or directory; give "
                "imagenet, a weights file or SavedModel, or a kb-train run "
                "directory."
            )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(f"Unknown settings: {', '.join(unknown)}")
        return cls(**values)

    def differences(self, other: TrainConfig) -> list[str]:
        """Fields that differ, except those a resumed run may change."""
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return sorted(
            k
            for k in mine
            if k not in RESUMABLE_CHANGES
            and _normal(mine[k]) != _normal(theirs[k])
        )


def _normal(value):
    return list(value) if isinstance(value, tuple) else value
