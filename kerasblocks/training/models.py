"""The model of a run: where models come from, and rebuilding one.

The library does not know the zoo. A model source (the zoo registers
itself on import) turns a name and overrides into a model;
`create_model` adds what the data set implies and the precision policy.
`model_from_config` rebuilds a run's model from its `model_config.json`
(`RunRecord`) without touching the data set.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import keras

from kerasblocks.data import dataset as data_lib
from kerasblocks.training import record as record_lib
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError
from kerasblocks.training.record import RunRecord

POLICIES = {
    "none": None,
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Builds models by name.

    Attributes:
        create: `create(name, **overrides) -> keras.Model`; for
            pretrained starts also `weights=` ("imagenet" or a path) and
            `include_preprocessing=`, and then the model carries a
            `pretrained_report` (a `kerasblocks.io.LoadReport`).
        task_of: the task of a name ("image" or "sequence"); raises
            ValueError for an unknown name.
        pretrained_cfg: what a name's pretrained weights expect, as a
            dict (input_size, interpolation, crop_fraction,
            preprocessing, ...), or None when it has none.
        freeze: `freeze(model, mode) -> trainable layer names`, mode
            "none", "backbone" or "all_but_head"; frozen BatchNorm runs
            in inference mode. Raises ValueError for a model it cannot
            split.
    """

    create: Callable[..., keras.Model]
    task_of: Callable[[str], str]
    pretrained_cfg: Callable[[str], dict | None] = lambda name: None
    freeze: Callable[[keras.Model, str], list[str]] | None = None


_SOURCE: list[ModelSource] = []


def register_model_source(source: ModelSource) -> None:
    """Makes `source` the one the trainer builds models from (the zoo
    calls this when imported)."""
    _SOURCE[:] = [source]


def source() -> ModelSource:
    """The registered model source."""
    return _source()


def _source() -> ModelSource:
    if not _SOURCE:
        raise RuntimeError(
            "No model source is registered; import zoo (or call "
            "kerasblocks.training.register_model_source) first."
        )
    return _SOURCE[0]


def create_model(
    config: TrainConfig, dataset: data_lib.Dataset, **start: Any
) -> keras.Model:
    """The run's model, under the run's precision policy.

    The dtype policy is set only while the model is built and restored
    afterwards. A model argument the user gave that the model refuses
    (an unknown name, a bad override, an input too small) raises
    `UserInputError`; so do weights (`start["weights"]`) that cannot be
    found, verified or applied.
    """
    source = _source()
    try:
        task = source.task_of(config.model)
    except ValueError as error:
        raise UserInputError(f"--model: {error}") from None
    overrides = dict(dataset.info.get("model_overrides", {}))
    if task == "image" and dataset.task == "classification":
        overrides.setdefault("num_classes", dataset.num_classes)
    overrides.update(config.model_overrides)
    previous = keras.config.dtype_policy()
    if POLICIES[config.mixed_precision]:
        keras.config.set_dtype_policy(POLICIES[config.mixed_precision])
    try:
        return source.create(config.model, **start, **overrides)
    except ValueError as error:
        if start.get("weights") is not None:
            raise UserInputError(
                f"--init_from={config.init_from}: {error}"
            ) from None
        # Model constructors check their arguments, and these arguments
        # are the user's flags.
        raise UserInputError(
            f"--model={config.model} with {overrides}: {error}"
        ) from None
    except TypeError as error:
        # A model taking **kwargs refuses an unknown name only when the
        # Keras base class sees it; that is the user's if it is theirs.
        if refused_argument(error, config.model_overrides) is None:
            raise
        raise UserInputError(
            f"--model_overrides: {config.model} does not take "
            f"{refused_argument(error, config.model_overrides)!r} ({error})"
        ) from None
    finally:
        keras.config.set_dtype_policy(previous)


def refused_argument(error: TypeError, overrides: dict) -> str | None:
    """The override a TypeError names as unexpected, if any."""
    text = str(error)
    return next(
        (k for k in overrides if f"keyword argument '{k}'" in text), None
    )


def image_shape(model: keras.Model, dataset: data_lib.Dataset):
    """The (height, width, channels) the model takes, for image data."""
    if not dataset.is_image:
        return None
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4:
        raise UserInputError(
            f"--dataset={dataset.name} holds images but --model takes "
            f"{shape}; choose an image model."
        )
    return tuple(shape[1:])


def outputs_logits(model: keras.Model) -> bool:
    """Whether the model ends without a softmax (so it outputs logits)."""
    last = model.layers[-1]
    # A model behind its preprocessing ends in the wrapped model.
    while isinstance(last, keras.Model) and last.layers:
        last = last.layers[-1]
    activation = getattr(last, "activation", None)
    return activation not in (
        keras.activations.softmax,
        keras.activations.sigmoid,
    )


def model_from_config(run_dir: str) -> keras.Model:
    """Rebuilds a run's model (new weights) from its `model_config.json`.

    Nothing in the file runs code: classes outside Keras and the
    registered ones are refused. The package that registered the
    model's classes (the zoo) must be imported; the tools do that.

    Raises:
        UserInputError: no readable model_config.json in `run_dir`.
    """
    return RunRecord.read(run_dir).build_model(
        os.path.join(run_dir, record_lib.FILE)
    )
