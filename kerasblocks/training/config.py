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

from kerasblocks import choices
from kerasblocks.training.errors import UserInputError

# The fields that name a choice, and their choices.
_CHOICES = {
    "optimizer": choices.OPTIMIZERS,
    "schedule": choices.SCHEDULES,
    "mixed_precision": choices.PRECISIONS,
    "jit_compile": choices.JIT,
    "strategy": choices.STRATEGIES,
    "freeze": choices.FREEZE,
    "quantize": choices.QUANTIZE,
}
# The integer fields that must be positive, and those that may also be
# None (not given).
_COUNTS = (
    "epochs",
    "batch_size",
    "checkpoint_every",
    "keep_checkpoints",
    "max_image_pixels",
    "calibration_examples",
)
_OPTIONAL_COUNTS = ("steps", "unfreeze_at_epoch")
# The number fields: (field, whether a value is good, what it must be).
_NUMBERS = (
    ("learning_rate", lambda v: v > 0, "positive"),
    ("finetune_lr_scale", lambda v: v > 0, "positive"),
    ("weight_decay", lambda v: v >= 0, ">= 0"),
    ("label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("min_agreement", lambda v: 0 <= v <= 1, "in [0, 1]"),
)
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
    "channels",
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
    max_image_pixels: int = choices.MAX_IMAGE_PIXELS
    channels: int | None = None
    quantize: str = "none"
    calibration: str | None = None
    calibration_examples: int = 256
    min_agreement: float = 0.98

    def validate(self) -> TrainConfig:
        """Checks every field; raises `UserInputError` naming the first bad
        one. Fills in the defaults that depend on other fields."""
        if not isinstance(self.model, str) or not self.model:
            raise UserInputError(
                "--model must name a zoo model (see zoo.list_models())."
            )
        _require(
            isinstance(self.model_overrides, dict),
            "model_overrides",
            self.model_overrides,
            "a JSON object",
        )
        for name in (*_COUNTS, *_OPTIONAL_COUNTS):
            value = getattr(self, name)
            _require(
                _is_count(value)
                or (value is None and name in _OPTIONAL_COUNTS),
                name,
                value,
                "a positive integer",
            )
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            _require(
                value in allowed, name, value, f"one of {', '.join(allowed)}"
            )
        _require(
            self.channels in (None, 1, 3), "channels", self.channels, "1 or 3"
        )
        for name, good, what in _NUMBERS:
            value = getattr(self, name)
            _require(_is_number(value) and good(value), name, value, what)
        self.export = tuple(self.export)
        for kind in self.export:
            if kind not in choices.EXPORTS:
                raise UserInputError(
                    f"--formats takes {', '.join(choices.EXPORTS)}. "
                    f"Received: {kind!r}"
                )
        self._validate_transfer()
        self._validate_image_size()
        if self.cache is not None and not self.cache:
            self.cache = None
        if not self.out_dir:
            self.out_dir = f"runs/{self.model}-{self.dataset}"
        return self

    def _validate_image_size(self) -> None:
        if self.image_size is None:
            return
        size = self.image_size
        size = [size, size] if isinstance(size, int) else list(size)
        if len(size) != 2 or not all(_is_count(v) for v in size):
            raise UserInputError(
                "--image_size must be SIZE or HEIGHT,WIDTH (positive). "
                f"Received: {self.image_size!r}"
            )
        self.image_size = size

    def _validate_transfer(self) -> None:
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


def _require(good: bool, name: str, value: Any, what: str) -> None:
    if not good:
        raise UserInputError(f"--{name} must be {what}. Received: {value!r}")


def _is_count(value: Any) -> bool:
    """A positive int (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
