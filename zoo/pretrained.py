"""Pretrained weights: what each set expects, and how to load it.

Each zoo model that is identical to a keras.applications model carries,
in its registration (`register_model(pretrained_cfg=...)`, beside its
`keras_twin`), a `PretrainedCfg` (timm's idea): the keras.applications
constructor whose weights fit it, the input size, interpolation and
crop fraction its weights were evaluated with, and the preprocessing
they expect.
`zoo.create_model(name, weights=...)` loads (see `zoo._loading`):

- `"imagenet"`: the file keras.applications itself would use (its
  file names, URLs and hashes), downloaded into Keras's cache through
  `keras.utils.get_file` by `zoo._download` (atomic, verified, with
  `ZOO_WEIGHTS_MIRROR` and `ZOO_OFFLINE`);
- a file written from a keras.applications model, in any format Keras
  writes (the legacy `.h5` of keras.applications' own files, `.keras`,
  `.weights.h5`, `.h5` from `model.save`), read by Keras into that
  model, then ported;
- a `.keras`, `.h5`, `.weights.h5` or SavedModel of the same
  architecture, through `kerasblocks.io.load_weights`.

A file with a classifier decides the class count unless `num_classes`
is given. When the requested head differs from the file's
(`include_top=False`, another `num_classes`), the backbone is loaded,
the head is new, and a one-line report says which layers were not
loaded. A backbone weight left unloaded is an error unless
`strict=False`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import keras

from kerasblocks.layers.preprocessing import ImagePreprocessing
from zoo._download import PretrainedWeightsError as PretrainedWeightsError
from zoo._download import imagenet_weights
from zoo._keras_twin import PretrainedCfg as PretrainedCfg
from zoo._keras_twin import registered_twin, registered_twins

# Fine-tuning lives in zoo.finetune; reachable from here too.
from zoo.finetune import FREEZE_MODES as FREEZE_MODES
from zoo.finetune import freeze as freeze
from zoo.finetune import head_layer_names as head_layer_names

logger = logging.getLogger("zoo")

# The arguments keras.applications' constructors share with the zoo's
# image models, under Keras's names.
_SHARED = {
    "input_shape": "input_shape",
    "include_top": "include_top",
    "pooling": "pooling",
    "num_classes": "classes",
    "classifier_activation": "classifier_activation",
}


class _Registered(Mapping):
    """Registered name -> `PretrainedCfg`, for every registered model
    that has one (its registration carries it: `register_model(
    pretrained_cfg=...)`)."""

    def _table(self) -> dict[str, PretrainedCfg]:
        return {
            twin.name: twin.pretrained_cfg
            for twin in registered_twins()
            if twin.pretrained_cfg is not None
        }

    def __getitem__(self, name: str) -> PretrainedCfg:
        return self._table()[name]

    def __iter__(self):
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


PRETRAINED: Mapping[str, PretrainedCfg] = _Registered()


def pretrained_cfg(name: str) -> PretrainedCfg | None:
    """The `PretrainedCfg` of a registered model name, or None.

    Example:

    >>> import zoo
    >>> zoo.get_model_entry("resnet50").pretrained_cfg.preprocessing
    'caffe'
    """
    twin = registered_twin(name)
    return None if twin is None else twin.pretrained_cfg


def preprocessing_layer(cfg: PretrainedCfg) -> ImagePreprocessing:
    """The layer mapping 0-255 RGB pixels to what `cfg`'s weights
    expect."""
    mode = "none" if cfg.preprocessing == "builtin" else cfg.preprocessing
    return ImagePreprocessing(mode, name="preprocessing")


def with_preprocessing(model: keras.Model, cfg: PretrainedCfg) -> keras.Model:
    """`model` behind the preprocessing its weights expect: the result
    takes RGB pixels in [0, 255] (any integer or float dtype)."""
    inputs = keras.Input(shape=model.input_shape[1:], name="images")
    outputs = model(preprocessing_layer(cfg)(inputs))
    return keras.Model(inputs, outputs, name=model.name)


# --- finding and reading the files -----------------------------------


# keras.applications gives EfficientNet (V1) one more rescaling when it
# loads its ImageNet file by name, not by path: the zoo model keeps it.
_IMAGENET_LAYOUT = {
    f"EfficientNetB{k}": {"stddev_rescaling": True} for k in range(8)
}


def keras_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """The zoo arguments `args` under keras.applications' names, with
    `input_shape` (channels-last in the zoo) in Keras's global data
    format, the layout keras.applications builds in. Its weights are
    the same arrays in either layout."""
    keras_args = {_SHARED.get(k, k): v for k, v in args.items()}
    shape = keras_args.get("input_shape")
    channels_first = keras.config.image_data_format() == "channels_first"
    if shape is not None and channels_first:
        keras_args["input_shape"] = (shape[2], shape[0], shape[1])
    return keras_args


def _keras_application(name: str, cfg: PretrainedCfg, weights, args):
    """Builds `keras.applications.<cfg.keras_application>` with
    `weights`, the zoo arguments translated to Keras's names."""
    constructor = getattr(keras.applications, cfg.keras_application)
    keras_args = keras_arguments(args)
    if weights == "imagenet":
        # The file keras.applications would load, fetched into Keras's
        # cache by zoo._download (nothing in Keras is patched).
        weights = imagenet_weights(name, cfg.keras_application, keras_args)
    try:
        return constructor(weights=weights, **keras_args)
    except (ValueError, OSError) as error:
        raise PretrainedWeightsError(
            f"{name}: keras.applications.{cfg.keras_application} cannot "
            f"read {weights!r}: {str(error).splitlines()[0]}"
        ) from None


# Width arguments keras.applications' constructors take under the zoo's
# names; the weights file was written at one of them.
_WIDTHS = ("alpha", "depth_multiplier", "minimalistic")
