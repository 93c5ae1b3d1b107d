"""Weight porting from keras.applications models, by Keras's names.

`from_keras_applications(keras_model)` finds the registered zoo model
whose `KerasTwin` (`zoo._keras_twin`) names `keras_model`, reads how
the Keras model was built (input shape, data format, top, pooling,
classes, classifier activation, and the family's own arguments), builds
that zoo model, and copies every weight, statistics included.

Each zoo weight finds its source by name: the twin's rules turn its
layer path into the Keras layer's name, and the weight keeps its name
(Keras names a layer's unnamed variable "variable"). Pairing by name
makes a port independent of the order in which either model lists its
weights, and lets a failure name the weight: the first zoo weight (in
the zoo's order) without a source of its shape, or the first Keras
weight left over, raises a ValueError naming it. A depthwise kernel
that Keras keeps as a grouped convolution's, `(k, k, 1, c)`, is the
same array as the zoo's `(k, k, c, 1)` (one axis has size 1).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any

import keras

from kerasblocks.io._specs import finalize_state
from kerasblocks.params import unique_variables
from zoo._keras_arguments import DATA_FORMATS, to_channels_last
from zoo._keras_twin import (
    AUTO,
    KerasTwin,
    RegisteredTwin,
    Source,
    auto_named_layers,
    registered_twins,
)

_AUTO_WEIGHT = re.compile(r"variable(_\d+)?")
_POOLINGS = {
    keras.layers.GlobalAveragePooling2D: "avg",
    keras.layers.GlobalMaxPooling2D: "max",
}


@dataclasses.dataclass(frozen=True)
class _Converted:
    """A source weight's value in the zoo's layout."""

    path: str
    value: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


def _data_format(keras_model: keras.Model) -> str:
    # The layout keras.applications built the model in (its layers
    # record it); the twin takes it, with input_shape channels-last.
    return next(
        (
            layer.data_format
            for layer in keras_model.layers
            if getattr(layer, "data_format", None) in DATA_FORMATS
        ),
        keras.config.image_data_format(),
    )


def _activation(layer) -> str | None:
    name = keras.activations.serialize(layer.activation)
    return None if name == "linear" else name


def applications_config(
    keras_model: keras.Model, classifier: str = "predictions"
) -> dict[str, Any]:
    """The zoo arguments equivalent to how a keras.applications model was
    built: input_shape, data_format, include_top, pooling, num_classes,
    classifier_activation. `classifier` names its classifier layer (a
    Dense or a 1x1 convolution)."""
    layers = {layer.name: layer for layer in keras_model.layers}
    data_format = _data_format(keras_model)
    top = layers.get(classifier.replace("{name}", keras_model.name))
    config: dict[str, Any] = {
        "input_shape": to_channels_last(
            tuple(keras_model.input_shape[1:]), data_format
        ),
        "include_top": top is not None,
        "pooling": None,
        "data_format": data_format,
    }
    if top is not None:
        config["num_classes"] = int(
            top.units if isinstance(top, keras.layers.Dense) else top.filters
        )
        config["classifier_activation"] = _activation(top)
        last = keras_model.layers[-1]
        # A linear classifier followed by an Activation (MobileNet's
        # "predictions", some families' softmax).
        if _activation(top) is None and isinstance(
            last, keras.layers.Activation
        ):
            config["classifier_activation"] = _activation(last)
        return config
    # Without a top, the pooling ends the model, or comes just before
    # a final normalization (ConvNeXt).
    for layer in keras_model.layers[-2:]:
        config["pooling"] = _POOLINGS.get(type(layer), config["pooling"])
    return config


class _Sources:
    """A Keras model's weights by layer name (the layer's own name, in
    or out of name scopes and nested models: NASNet's cells, ConvNeXt's
    stem). keras.applications names its layers uniquely; should two
    share a name, the shape checks and the left-over check still catch
    a wrong pairing."""

    def __init__(self, keras_model: keras.Model, twin: KerasTwin):
        self.model, self.twin = keras_model, twin
        self.by_layer: dict[str, list] = {}
        for variable in unique_variables(keras_model):
            layer = variable.path.rsplit("/", 1)[0]
            self.by_layer.setdefault(layer.rsplit("/", 1)[-1], []).append(
                variable
            )
        self._auto: dict[str, list[str]] = {}
        self._ranks: dict[str, dict[str, int]] = {}

    def _auto_names(self, prefix: str) -> list[str]:
        if prefix not in self._auto:
            self._auto[prefix] = auto_named_layers(self.model, prefix)
        return self._auto[prefix]

    def has(self, name: str) -> bool:
        if name.endswith(AUTO):
            return bool(self._auto_names(name[:-1]))
        return name in self.by_layer

    def layer_of(self, zoo_layer: str) -> str:
        """The Keras layer name of a zoo layer path; an auto-named
        layer is the next unpaired one (or, past the last, the zoo
        path, which then names no Keras layer)."""
        name = self.twin.keras_layer(zoo_layer, self.model.name, self.has)
        if not name.endswith(AUTO):
            return name
        ranks = self._ranks.setdefault(name, {})
        rank = ranks.setdefault(zoo_layer, len(ranks))
        names = self._auto_names(name[:-1])
        return names[rank] if rank < len(names) else zoo_layer

    def find(self, layer: str, weight: str):
        candidates = self.by_layer.get(layer, [])
        found = [v for v in candidates if v.path.rsplit("/", 1)[1] == weight]
        if not found and len(candidates) == 1:
            # Keras names a layer's unnamed variable "variable_<n>".
            name = candidates[0].path.rsplit("/", 1)[1]
            found = candidates if _AUTO_WEIGHT.fullmatch(name) else []
        return (found[0] if found else None), bool(candidates)


def _in_zoo_layout(found, target):
    """`found`, or its value reshaped from a grouped convolution's
    depthwise kernel `(k, k, 1, c)` to the zoo's `(k, k, c, 1)`."""
    shape, wanted = tuple(found.shape), tuple(target.shape)
    if (
        len(shape) == 4
        and shape[2] == 1
        and wanted == (*shape[:2], shape[3], 1)
    ):
        value = keras.ops.reshape(found.value, wanted)
        return _Converted(found.path, value)
    return found


def gather_sources(
    target: keras.Model, keras_model: keras.Model, twin: KerasTwin
) -> list:
    """The Keras weight (or its converted value) for each unique
    variable of `target`, in order.

    Raises:
        ValueError: a zoo weight has no source, a source of another
            shape, or a Keras weight is left over; the message names the
            first such weight.
    """
    name = keras_model.name
    sources, lookup, used = [], _Sources(keras_model, twin), set()
    for index, variable in enumerate(unique_variables(target)):
        zoo_layer, weight = variable.path.rsplit("/", 1)
        layer = lookup.layer_of(zoo_layer)
        found, has_weights = lookup.find(layer, weight)
        if found is None:
            what = (
                f"weight {weight!r} in layer {layer!r}"
                if has_weights
                else f"layer {layer!r} with weights"
            )
            raise ValueError(
                f"Weight {index} does not match: zoo {variable.path} "
                f"{tuple(variable.shape)} has no source; {name} has no "
                f"{what}."
            )
        source = _in_zoo_layout(found, variable)
        if tuple(source.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight {index} does not match: {name} {found.path} has "
                f"shape {tuple(found.shape)}, zoo {variable.path} has "
                f"shape {tuple(variable.shape)}."
            )
        used.add(id(found))
        sources.append(source)
    left = [v for v in unique_variables(keras_model) if id(v) not in used]
    if left:
        raise ValueError(
            f"Weight {left[0].path} {tuple(left[0].shape)} of {name} has "
            f"no place in the zoo model ({len(left)} {name} weights left "
            "over)."
        )
    return sources


def copy_weights(target: keras.Model, sources: list) -> None:
    """Assigns `sources[i]` (shapes checked by `gather_sources`) to the
    i-th unique variable of `target`, then lets every Normalization
    derive its state from the values just copied."""
    for source, variable in zip(sources, unique_variables(target), strict=True):
        variable.assign(source.value)
    finalize_state(target)


def _twin_of(keras_model: keras.Model) -> RegisteredTwin:
    entries = [e for e in registered_twins() if e.keras_twin is not None]
    for entry in entries:
        if entry.keras_twin.matches(keras_model.name):
            return entry
    known = sorted({e.keras_twin.name for e in entries})
    close = difflib.get_close_matches(keras_model.name, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Cannot port {keras_model.name!r}: not a keras.applications "
        f"model the zoo knows.{hint} Known names: {', '.join(known)}"
    )


def from_keras_applications(keras_model: keras.Model) -> keras.Model:
    """The zoo model equal to a keras.applications model, weights copied.

    Args:
        keras_model: a model built by keras.applications (any
            include_top, pooling, input_shape, classes, data format).

    Returns:
        The zoo model of the same configuration; in inference mode both
        give the same outputs.

    Raises:
        ValueError: the model is not one the zoo knows, or its weights do
            not match the architecture its name claims (the message names
            the first weight that differs).

    Example:

    >>> import keras, zoo
    >>> source = keras.applications.VGG16(
    ...     weights=None, input_shape=(32, 32, 3), classes=5)
    >>> zoo.from_keras_applications(source).output_shape
    (None, 5)
    """
    if not isinstance(keras_model, keras.Model):
        raise TypeError(
            f"Expected a keras.Model. Received: {type(keras_model).__name__}"
        )
    entry = _twin_of(keras_model)
    twin = entry.keras_twin
    config = applications_config(keras_model, twin.classifier)
    if config["include_top"] and entry.pretrained_cfg is not None:
        # A classifier needs a size; Keras leaves it open by default
        # when the head pools globally (MobileNetV3).
        size = entry.pretrained_cfg.input_size
        config["input_shape"] = tuple(
            size[i] if d is None else d
            for i, d in enumerate(config["input_shape"])
        )
    source = Source(keras_model, config["include_top"])
    config.update(twin.family_arguments(source))
    # The registered function, not create_model: `config` is the
    # classes' (input_shape channels-last, whatever the data format).
    model = entry.build(**config)
    copy_weights(model, gather_sources(model, keras_model, twin))
    return model
