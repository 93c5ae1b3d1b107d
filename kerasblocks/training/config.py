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
# "tflite" is the old name of "litert", kept for one release.
EXPORTS = ("saved_model", "keras", "h5", "litert", "onnx", "tflite")
QUANTIZE = ("none", "float16", "dynamic_int8", "int8")
FREEZE = ("none", "backbone", "all_but_head")
# How a resumed run may differ from the run it resumes (see
# `TrainConfig.changes`):
# - these only change what the run writes, never what it trains: a
#   resumed run takes the new value silently;
OUTPUT_ONLY = (
    "export",
    "quantize",
    "calibration",
    "calibration_examples",
    "min_agreement",
    "checkpoint_every",
    "keep_checkpoints",
    "overwrite",
    "out_dir",  # a moved run directory is the same run
)
# - these say how long it trains: under a constant schedule the steps
#   already planned stay the same, so they may change (and are recorded);
RUN_LENGTH = ("epochs", "steps")
# - these say what a checkpoint holds: its weights and optimizer slots
#   cannot be resumed under other values;
FIXED = (
    "model",
    "model_overrides",
    "optimizer",
    "mixed_precision",
    "freeze",
    "unfreeze_at_epoch",
    "image_size",
)
# - anything else changes what is trained: --allow_flag_changes, and
#   the change is recorded in flags.json with the step it took effect.
# The key of that record in flags.json.
HISTORY = "flag_history"


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
    # kerasblocks.data.streams.MAX_PIXELS; see its comment.
    max_image_pixels: int = 8192 * 8192
    channels: int | None = None
    quantize: str = "none"
    calibration: str | None = None
    calibration_examples: int = 256
    min_agreement: float = 0.98

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
        positive("max_image_pixels")
        if self.channels not in (None, 1, 3):
            raise UserInputError(
                f"--channels must be 1 or 3: {self.channels!r}"
            )
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
        choice("quantize", QUANTIZE)
        positive("calibration_examples")
        if not 0 <= self.min_agreement <= 1:
            raise UserInputError(
                "--min_agreement must be in [0, 1]. "
                f"Received: {self.min_agreement!r}"
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
        """The settings of a flags.json (its `flag_history` aside)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k != HISTORY}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(f"Unknown settings: {', '.join(unknown)}")
        return cls(**values)

    def changes(self, old: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """{field: (old value, this value)} of the fields that differ
        from `old`, except the `OUTPUT_ONLY` ones."""
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(old)
        return {
            k: (theirs[k], mine[k])
            for k in sorted(mine)
            if k not in OUTPUT_ONLY and _normal(mine[k]) != _normal(theirs[k])
        }

    def needs_permission(self, field: str) -> bool:
        """Whether changing `field` on resume changes what is trained
        (a run length does not under a constant schedule)."""
        return field not in RUN_LENGTH or self.schedule != "constant"


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    """`--name old -> new, ...` for a user."""
    return ", ".join(
        f"--{k} {_shown(old)} -> {_shown(new)}"
        for k, (old, new) in changes.items()
    )


def _shown(value) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_normal(value), sort_keys=True)
    return str(value)


def _normal(value):
    return list(value) if isinstance(value, tuple) else value
