"""Deferred initialization: build a model's variables without real data.

Keras creates variables on first call. `materialize` makes that call with
symbolic inputs of the given shape, so every variable exists (and the
parameter table is complete) before any data is seen.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class NotBuiltError(ValueError):
    """A model's parameters were asked for before the model was built."""


def require_built(model: keras.layers.Layer) -> None:
    """Raises `NotBuiltError` (with how to fix it) if `model` is unbuilt."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"Expected a Keras layer or model. Received: {type(model).__name__}"
        )
    if not model.built:
        raise NotBuiltError(
            f"{type(model).__name__} '{model.name}' is not built, so its "
            "parameters do not exist yet. Build it with "
            "kerasblocks.materialize(model, input_shape) or call it on a "
            "batch once."
        )


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool))
        for d in value
    )


def _to_keras_tensor(spec: Any, dtype: str | None) -> keras.KerasTensor:
    if isinstance(spec, keras.KerasTensor):
        return spec
    if isinstance(spec, tf.TensorSpec):
        return keras.KerasTensor(tuple(spec.shape), dtype=spec.dtype.name)
    if _is_shape(spec):
        if any(d is not None and d < 0 for d in spec):
            raise ValueError(f"Dimensions must be >= 0. Received: {spec}")
        return keras.KerasTensor(tuple(spec), dtype=dtype or "float32")
    raise TypeError(
        "Expected a shape tuple, tf.TensorSpec or keras.KerasTensor (or a "
        f"list/dict of them). Received: {spec!r}"
    )


def to_keras_tensors(spec: Any, dtype: str | None = None):
    """Converts a shape, spec, or nest of them to KerasTensors."""
    if _is_shape(spec) or isinstance(spec, (tf.TensorSpec, keras.KerasTensor)):
        return _to_keras_tensor(spec, dtype)
    if isinstance(spec, dict):
        return {k: _to_keras_tensor(v, dtype) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_to_keras_tensor(v, dtype) for v in spec]
    return _to_keras_tensor(spec, dtype)


def materialize(
    model: keras.layers.Layer, input_shape_or_spec: Any, *, dtype=None
):
    """Creates all of a model's variables from an input shape or spec.

    Runs the model once on symbolic inputs (no data, no computation) so
    that every variable exists, then returns the output spec.

    Args:
        model: any Keras layer or model.
        input_shape_or_spec: a shape such as `(None, 20)` (batch first;
            None means any size), a `tf.TensorSpec`, a `keras.KerasTensor`,
            or a list/dict of them for a model with several inputs.
        dtype: dtype for inputs given as plain shapes (default float32).

    Returns:
        The output as `tf.TensorSpec` (or a nest of them).

    Example:

    >>> import kerasblocks
    >>> net = kerasblocks.layers.MLP()
    >>> kerasblocks.materialize(net, (None, 20))
    TensorSpec(shape=(None, 10), dtype=tf.float32, name=None)
    >>> kerasblocks.params.count_parameters(net)
    7946
    """
    inputs = to_keras_tensors(input_shape_or_spec, dtype)
    outputs = model(inputs)
    if not model.built:  # e.g. a layer whose build is a no-op
        model.built = True
    return keras.tree.map_structure(
        lambda t: tf.TensorSpec(tuple(t.shape), t.dtype), outputs
    )
