"""Weight porting from keras.applications models.

`from_keras_applications(keras_model)` reads the configuration of a
keras.applications model (input shape, include_top, pooling, classes,
classifier activation), builds the zoo model of the same configuration
and copies every weight. A family registers a porter for the model names
keras.applications gives (`"resnet50"`, `"vgg16"`, ...); the porter
returns the zoo model and the source variables in the order of the zoo
model's variables, and `copy_weights` checks and assigns them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerasblocks.io._specs import finalize_state
from kerasblocks.params import unique_variables
from zoo._keras_arguments import DATA_FORMATS, to_channels_last

Porter = Callable[[keras.Model, dict[str, Any]], tuple[keras.Model, list]]
_PORTERS: dict[str, Porter] = {}


def register_porter(*name_patterns: str):
    """Registers a porter for keras.applications models whose `name`
    matches one of the shell-style patterns (e.g. `"resnet50"`,
    `"mobilenetv2_*"`).

    The porter is called as `porter(keras_model, config)` with `config`
    from `applications_config`, and returns `(zoo_model,
    source_variables)` where `source_variables[i]` is the keras variable
    that goes into the zoo model's i-th unique variable.
    """

    def decorator(porter: Porter) -> Porter:
        for pattern in name_patterns:
            if pattern in _PORTERS:
                raise ValueError(f"A porter for {pattern!r} is registered.")
            _PORTERS[pattern] = porter
        return porter

    return decorator


def applications_config(keras_model: keras.Model) -> dict[str, Any]:
    """The zoo arguments equivalent to how a keras.applications model was
    built: input_shape, include_top, pooling, num_classes,
    classifier_activation."""
    layers = {layer.name: layer for layer in keras_model.layers}
    last = keras_model.layers[-1]
    # The layout keras.applications built the model in (its layers
    # record it); the twin takes it, with input_shape channels-last.
    data_format = next(
        (
            layer.data_format
            for layer in keras_model.layers
            if getattr(layer, "data_format", None) in DATA_FORMATS
        ),
        keras.config.image_data_format(),
    )
    config: dict[str, Any] = {
        "input_shape": to_channels_last(
            tuple(keras_model.input_shape[1:]), data_format
        ),
        "include_top": "predictions" in layers,
        "pooling": None,
        "data_format": data_format,
    }
    if config["include_top"]:
        predictions = layers["predictions"]
        if not isinstance(predictions, keras.layers.Dense):
            # The classifier is elsewhere (MobileNet's 1x1 convolution
            # before an Activation named "predictions"): the family's
            # porter reads it.
            return config
        config["num_classes"] = predictions.units
        activation = keras.activations.serialize(predictions.activation)
        config["classifier_activation"] = (
            None if activation == "linear" else activation
        )
        if predictions.activation is keras.activations.linear:
            # keras.applications puts a separate softmax Activation layer
            # after a linear Dense in some families.
            if isinstance(last, keras.layers.Activation):
                config["classifier_activation"] = keras.activations.serialize(
                    last.activation
                )
    elif isinstance(last, keras.layers.GlobalAveragePooling2D):
        config["pooling"] = "avg"
    elif isinstance(last, keras.layers.GlobalMaxPooling2D):
        config["pooling"] = "max"
    return config


def copy_weights(
    target: keras.Model, sources: Sequence, *, source_name: str = "source"
) -> None:
    """Assigns `sources[i]` to the i-th unique variable of `target`.

    Every shape is checked before anything is assigned; the first
    mismatch raises a ValueError naming both paths and shapes.
    """
    targets = unique_variables(target)
    pairs = list(zip(sources, targets, strict=False))
    for index, (source, variable) in enumerate(pairs):
        if tuple(source.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight {index} does not match: {source_name} "
                f"{source.path} has shape {tuple(source.shape)}, zoo "
                f"{variable.path} has shape {tuple(variable.shape)}."
            )
    if len(sources) != len(targets):
        index = len(pairs)
        if len(sources) > len(targets):
            extra = sources[index]
            what = (
                f"{source_name} has an extra weight {extra.path} "
                f"{tuple(extra.shape)}"
            )
        else:
            extra = targets[index]
            what = f"zoo weight {extra.path} {tuple(extra.shape)} has no source"
        raise ValueError(
            f"Weight {index} does not match: {what} ({len(sources)} "
            f"{source_name} weights, {len(targets)} zoo weights)."
        )
    for source, variable in pairs:
        variable.assign(source.value if hasattr(source, "value") else source)
    # A Normalization uses what it derived from its variables, not the
    # variables themselves: derive again from the values just copied.
    finalize_state(target)


def from_keras_applications(keras_model: keras.Model) -> keras.Model:
    """The zoo model equal to a keras.applications model, weights copied.

    Args:
        keras_model: a model built by keras.applications (any
            include_top, pooling, input_shape, classes).

    Returns:
        The zoo model of the same configuration; in inference mode both
        give the same outputs.

    Raises:
        ValueError: the model is not one the zoo knows, or its weights do
            not match the architecture its name claims (the message names
            the first weight that differs).
    """
    if not isinstance(keras_model, keras.Model):
        raise TypeError(
            f"Expected a keras.Model. Received: {type(keras_model).__name__}"
        )
    name = keras_model.name
    for pattern, porter in _PORTERS.items():
        if fnmatch.fnmatchcase(name, pattern):
            config = applications_config(keras_model)
            model, sources = porter(keras_model, config)
            copy_weights(model, sources, source_name=name)
            return model
    raise ValueError(
        f"Cannot port {name!r}: not a keras.applications model the zoo "
        f"knows. Known names: {', '.join(sorted(_PORTERS)) or '(none)'}"
    )
