"""Transfer learning in a run: where the first weights come from, what
is frozen in which epoch, and how served images reach the model.

`--init_from` is "imagenet" or a weights path (loaded by the model
source, i.e. the zoo) or a kb-train run directory (its best checkpoint,
copied here by variable path). A pretrained start puts the weights'
preprocessing inside the model, so the run's pipelines feed 0-255 RGB
pixels ("raw") instead of kb-train's usual [0, 1] ("unit"); the choice
is recorded in `model_config.json` and read back by evaluation and
export, so training, evaluation and serving see one function.

All of it is resolved once, by `start_model`, into a `Start` that the
later stages (the loop, the record, the exports) read. The frozen state
is a function of the epoch alone (`Freeze`), so a resumed run derives it
from its checkpoint's epoch.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras

from kerasblocks.data import dataset as data_lib
from kerasblocks.io.image_serving import ImageServing
from kerasblocks.io.report import LoadReport, copy_variables
from kerasblocks.training import models, runs
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError
from kerasblocks.training.record import RunRecord


@dataclasses.dataclass(frozen=True)
class Freeze:
    """What is frozen in which epoch: `mode` until the 0-based epoch
    `unfreeze_epoch`, nothing from it on. A function of the epoch alone,
    so a resumed run derives it from its checkpoint's epoch.

    Example:

    >>> freeze = Freeze("backbone", unfreeze_epoch=2)
    >>> [freeze.at(epoch) for epoch in range(4)]
    ['backbone', 'backbone', 'none', 'none']
    """

    mode: str = "none"
    unfreeze_epoch: int | None = None

    @classmethod
    def of(cls, config: TrainConfig) -> Freeze:
        """`--freeze` until `--unfreeze_at_epoch` (1-based)."""
        unfreeze = config.unfreeze_at_epoch
        return cls(config.freeze, None if unfreeze is None else unfreeze - 1)

    def at(self, epoch: int) -> str:
        unfreeze = self.unfreeze_epoch
        return (
            "none" if unfreeze is not None and epoch >= unfreeze else self.mode
        )


@dataclasses.dataclass(frozen=True)
class Start:
    """The run's model as it starts, and everything later stages need to
    know about where it came from.

    Attributes:
        model: the built model, its weights loaded and the part of
            epoch 0 frozen.
        record: what `model_config.json` holds (the model's config, init
            source, pretrained configuration, pixels, class names).
        image_shape: the (height, width, channels) it takes, for image
            data (None otherwise).
        from_logits: whether it ends without a softmax.
        freeze: what is frozen in which epoch.
        serving: how its export takes raw images (None when it is not an
            image classifier).
        line: the one-line load report ("" for a random start).
        adapted: one line when the input shape or class count of
            pretrained weights was adapted to the data ("" if not).
    """

    model: keras.Model
    record: RunRecord
    image_shape: tuple | None = None
    from_logits: bool = True
    freeze: Freeze = Freeze()
    serving: ImageServing | None = None
    line: str = ""
    adapted: str = ""

    @property
    def pixels(self) -> str:
        """ "raw" (0-255, the model preprocesses) or "unit"."""
        return self.record.pixels

    @property
    def eval_view(self) -> dict[str, Any]:
        """The central crop and resize method of evaluation and serving
        (`RunRecord.eval_view`); training batches are resized whole."""
        return self.record.eval_view


def is_run_directory(path: str | None) -> bool:
    return bool(path) and os.path.isfile(os.path.join(path, "flags.json"))


def _layers(paths) -> list[str]:
    return sorted({p.rsplit("/", 1)[0] for p in paths})


def _shown(names: list[str], count: int = 3) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > count else ""
    return ", ".join(names[:count]) + more


def report_line(source: str, report: LoadReport) -> str:
    """One short line: how many weights came from `source`, and the
    first few layers that start new (and of the source's left over)."""
    new = _layers(report.missing + [m[0] for m in report.mismatched])
    left = _layers(report.unexpected)
    return (
        f"init_from {source}: loaded {len(report.loaded)} weights"
        + (f"; new (not loaded): {_shown(new)}" if new else "; all loaded")
        + (f"; unused: {_shown(left)}" if left else "")
    )


def adapted_line(model: keras.Model, cfg: dict[str, Any] | None) -> str:
    """One line when a pretrained model's input shape or class count
    was adapted to the data ("" when neither was).

    Example:

    >>> import keras
    >>> net = keras.Sequential([keras.Input((32, 32, 3)),
    ...                         keras.layers.GlobalAveragePooling2D(),
    ...                         keras.layers.Dense(10)])
    >>> line = adapted_line(net, {"input_size": [224, 224, 3],
    ...                           "num_classes": 1000})
    >>> line.startswith("adapted to the data: input shape (32, 32, 3)")
    True
    >>> "; 10 classes (the weights: 1000; new classifier)" in line
    True
    """
    if not cfg:
        return ""
    parts = []
    shape = tuple(model.input_shape[1:])
    trained = tuple(cfg.get("input_size") or ())
    if trained and shape != trained:
        parts.append(f"input shape {shape} (the weights: {trained})")
    outputs = model.output_shape
    if isinstance(outputs, tuple) and len(outputs) == 2:
        classes = cfg.get("num_classes")
        if classes and outputs[-1] != classes:
            parts.append(
                f"{outputs[-1]} classes (the weights: {classes}; new "
                "classifier)"
            )
    return f"adapted to the data: {'; '.join(parts)}" if parts else ""


def class_names(dataset) -> list[str] | None:
    """A data set's class names (strings), or None when it has none."""
    names = getattr(dataset, "class_names", None)
    if names is None and isinstance(getattr(dataset, "info", None), dict):
        names = dataset.info.get("class_names")
    return [str(n) for n in names] if names else None


@dataclasses.dataclass(frozen=True)
class _Origin:
    """Where a run's first weights come from (`--init_from`)."""

    path: str | None
    pixels: str  # how the model takes images: "raw" or "unit"
    pretrained_cfg: dict[str, Any] | None
    prior: runs.Run | None = None  # a run directory's run, read back


def _origin(config: TrainConfig) -> _Origin:
    path = config.init_from or None
    if is_run_directory(path):
        best = os.path.join(path, "checkpoints", "BEST")
        prior = runs.open_run(
            path, "best" if os.path.exists(best) else "latest"
        )
        record = prior.record
        return _Origin(path, record.pixels, record.pretrained_cfg, prior)
    cfg = models.source().pretrained_cfg(config.model) if path else None
    return _Origin(path, "raw" if cfg is not None else "unit", cfg)


def start_model(config: TrainConfig, dataset: data_lib.Dataset) -> Start:
    """Builds the run's model from `config.init_from` (see the module
    docstring) and freezes the part of epoch 0. Raises
    `UserInputError` for weights that do not fit.

    Each piece is asked once, in order: where the weights come from (a
    run directory is read back whole), the model, its weights; then
    `_finish` states what later stages read."""
    origin = _origin(config)
    arguments: dict[str, Any] = {}
    if origin.pixels == "raw":
        arguments["include_preprocessing"] = True
    if origin.path and origin.prior is None:
        arguments.update(weights=origin.path, strict=config.init_from_strict)
    model = models.create_model(config, dataset, **arguments)
    shape = models.image_shape(model, dataset)
    from_logits = models.outputs_logits(model)
    report = getattr(model, "pretrained_report", None) or LoadReport()
    if origin.prior is not None:
        report = copy_variables(origin.prior.model, model)
    return _finish(config, dataset, origin, model, report, shape, from_logits)


def _finish(
    config, dataset, origin, model, report, shape, from_logits
) -> Start:
    """Checks the weights loaded, freezes the part of epoch 0, and
    states the start: the record (with the model's config as frozen),
    the served view of an image classifier, the lines to print."""
    adapted = ""
    if origin.prior is not None:
        _check_run_weights(config, report)
    elif origin.path is not None:
        adapted = adapted_line(model, origin.pretrained_cfg)
    freeze = Freeze.of(config)
    if freeze.mode != "none":
        apply_freeze(model, freeze.mode)
    names = class_names(dataset)
    record = RunRecord(
        config.model,
        keras.saving.serialize_keras_object(model),
        config.mixed_precision,
        tuple(config.image_size) if config.image_size else None,
        origin.path,
        tuple(names) if names else None,
        origin.pixels,
        origin.pretrained_cfg,
    )
    serving = None
    if dataset.is_image and dataset.task == "classification":
        serving = image_serving(model, record)
    line = report_line(origin.path, report) if origin.path else ""
    return Start(
        model, record, shape, from_logits, freeze, serving, line, adapted
    )


def _check_run_weights(config: TrainConfig, report: LoadReport) -> None:
    """Of a run's checkpoint, nothing that fits is refused, and so is
    one that leaves a weight outside the classifier unloaded, unless
    --init_from_strict=false."""
    origin = config.init_from
    if not report.loaded:
        raise UserInputError(
            f"--init_from={origin}: no weight of that run fits "
            f"--model={config.model} ({report})"
        )
    unloaded = report.missing + [m[0] for m in report.mismatched]
    backbone = [p for p in unloaded if not p.startswith("predictions/")]
    if backbone and config.init_from_strict:
        raise UserInputError(
            f"--init_from={origin}: leaves {len(backbone)} backbone "
            f"weights unloaded ({_shown(backbone)}); pass "
            "--init_from_strict=false to load what fits."
        )


# --- freezing ----------------------------------------------------------


def apply_freeze(model: keras.Model, mode: str) -> None:
    """Freezes part of `model` through the model source."""
    freeze = models.source().freeze
    if freeze is None:
        if mode == "none":
            return
        raise UserInputError(
            "--freeze: the model source cannot freeze parts of a model."
        )
    try:
        freeze(model, mode)
    except ValueError as error:
        raise UserInputError(f"--freeze={mode}: {error}") from None


# --- serving -----------------------------------------------------------


def image_serving(model: keras.Model, record: RunRecord) -> ImageServing | None:
    """How the exported model takes raw images, from the run's record:
    None for a model that is not an image classifier.

    Example:

    >>> import keras
    >>> net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                         keras.layers.Dense(2, activation="softmax")])
    >>> record = RunRecord("net", {}, class_names=("no", "yes"))
    >>> serving = image_serving(net, record)
    >>> serving.image_size, serving.channels, serving.preprocessing
    ((8, 8), 1, 'unit')
    """
    shape = model.input_shape
    outputs = model.output_shape
    if (
        isinstance(shape, list)
        or len(shape) != 4
        or shape[-1] not in (1, 3)
        or None in shape[1:3]
        or not isinstance(outputs, tuple)
        or len(outputs) != 2
    ):
        return None
    names = record.class_names
    return ImageServing(
        tuple(shape[1:3]),
        channels=shape[-1],
        **record.eval_view,
        preprocessing="none" if record.pixels == "raw" else "unit",
        class_names=list(names) if names is not None else None,
    )
