"""Transfer learning in a run: where the first weights come from, what
is frozen in which epoch, and how served images reach the model.

`--init_from` is "imagenet" or a weights path (loaded by the model
source, i.e. the zoo) or a kb-train run directory (its best checkpoint,
copied here by variable path). A pretrained start puts the weights'
preprocessing inside the model, so the run's pipelines feed 0-255 RGB
pixels ("raw") instead of kb-train's usual [0, 1] ("unit"); the choice
is recorded in `model_config.json` and read back by evaluation and
export, so training, evaluation and serving see one function.

The frozen state is a function of the epoch alone (`freeze_mode`), so
a resumed run derives it from its checkpoint's epoch.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import keras

from kerasblocks.data import dataset as data_lib
from kerasblocks.io.image_serving import ImageServing
from kerasblocks.io.report import LoadReport, copy_variables
from kerasblocks.training import models
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError


@dataclasses.dataclass
class Start:
    """The run's model and where its weights came from.

    Attributes:
        model: the built model.
        pixels: "raw" (0-255, the model preprocesses) or "unit".
        record: what `model_config.json` adds (init source, pretrained
            configuration, pixels, class names).
        line: the one-line load report ("" for a random start).
        adapted: one line when the input shape or class count of
            pretrained weights was adapted to the data ("" if not).
    """

    model: keras.Model
    pixels: str
    record: dict[str, Any]
    line: str = ""
    adapted: str = ""


def is_run_directory(path: str | None) -> bool:
    return bool(path) and os.path.isfile(os.path.join(path, "flags.json"))


def read_record(run_dir: str) -> dict[str, Any]:
    """A run's `model_config.json` (an empty dict when absent)."""
    path = os.path.join(run_dir, "model_config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def run_pixels(run_dir: str) -> str:
    """How a run's model takes images ("unit" for runs before this was
    recorded)."""
    return read_record(run_dir).get("pixels", "unit")


def eval_view(record: dict[str, Any]) -> dict[str, Any]:
    """How a run's model sees images when evaluated and served: the
    central crop and resize method of its pretrained configuration
    (`{"crop_fraction": 1.0, "interpolation": "bilinear"}`, the whole
    image, for a model trained from scratch). `make_pipeline` and
    `ImageServing` take these keywords."""
    cfg = record.get("pretrained_cfg") or {}
    return {
        "crop_fraction": float(cfg.get("crop_fraction", 1.0)),
        "interpolation": cfg.get("interpolation", "bilinear"),
    }


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


def start_model(config: TrainConfig, dataset: data_lib.Dataset) -> Start:
    """Builds the run's model from `config.init_from` (see the module
    docstring). Raises `UserInputError` for weights that do not fit."""
    source = models.source()
    origin = config.init_from or None
    cfg = source.pretrained_cfg(config.model)
    record: dict[str, Any] = {
        "init_from": origin,
        "class_names": class_names(dataset),
    }
    if origin is None:
        model = models.create_model(config, dataset)
        record.update(pixels="unit", pretrained_cfg=None)
        return Start(model, "unit", record)
    if is_run_directory(origin):
        pixels = run_pixels(origin)
        start = {"include_preprocessing": True} if pixels == "raw" else {}
        model = models.create_model(config, dataset, **start)
        report = copy_variables(_run_weights(origin), model)
        if not report.loaded:
            raise UserInputError(
                f"--init_from={origin}: no weight of that run fits "
                f"--model={config.model} ({report})"
            )
        _check_backbone(origin, report, config.init_from_strict)
        pretrained = read_record(origin).get("pretrained_cfg")
        record.update(pixels=pixels, pretrained_cfg=pretrained)
        return Start(model, pixels, record, report_line(origin, report))
    pixels = "raw" if cfg is not None else "unit"
    start = {"weights": origin, "strict": config.init_from_strict}
    if cfg is not None:
        start["include_preprocessing"] = True
    model = models.create_model(config, dataset, **start)
    record.update(pixels=pixels, pretrained_cfg=cfg)
    report = getattr(model, "pretrained_report", None) or LoadReport()
    return Start(
        model,
        pixels,
        record,
        report_line(origin, report),
        adapted_line(model, cfg),
    )


def _check_backbone(origin: str, report: LoadReport, strict: bool) -> None:
    """A run's checkpoint that leaves a weight outside the classifier
    unloaded is refused, unless --init_from_strict=false."""
    unloaded = report.missing + [m[0] for m in report.mismatched]
    backbone = [p for p in unloaded if not p.startswith("predictions/")]
    if backbone and strict:
        raise UserInputError(
            f"--init_from={origin}: leaves {len(backbone)} backbone "
            f"weights unloaded ({_shown(backbone)}); pass "
            "--init_from_strict=false to load what fits."
        )


def _run_weights(run_dir: str) -> keras.Model:
    from kerasblocks.training import runs

    manager_dir = os.path.join(run_dir, "checkpoints", "BEST")
    which = "best" if os.path.exists(manager_dir) else "latest"
    return runs.load_run_model(run_dir, which)


# --- freezing ----------------------------------------------------------


def freeze_mode(config: TrainConfig, epoch: int) -> str:
    """The freeze mode of 0-based `epoch`: `config.freeze` until
    `--unfreeze_at_epoch` (1-based), "none" from it on.

    Example:

    >>> from kerasblocks.training.config import TrainConfig
    >>> config = TrainConfig(freeze="backbone", unfreeze_at_epoch=3)
    >>> [freeze_mode(config, epoch) for epoch in range(4)]
    ['backbone', 'backbone', 'none', 'none']
    """
    unfreeze = config.unfreeze_at_epoch
    if unfreeze is not None and epoch >= unfreeze - 1:
        return "none"
    return config.freeze


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


def image_serving(
    model: keras.Model, record: dict[str, Any]
) -> ImageServing | None:
    """How the exported model takes raw images, from the run's record:
    None for a model that is not an image classifier.

    Example:

    >>> import keras
    >>> net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                         keras.layers.Dense(2, activation="softmax")])
    >>> serving = image_serving(net, {"pixels": "unit",
    ...                               "class_names": ["no", "yes"]})
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
    return ImageServing(
        tuple(shape[1:3]),
        channels=shape[-1],
        **eval_view(record),
        preprocessing="none" if record.get("pixels") == "raw" else "unit",
        class_names=record.get("class_names"),
    )
