"""Input signatures with a dynamic batch, and clear input validation."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


def _to_spec(spec: Any, name: str) -> tf.TensorSpec:
    if isinstance(spec, tf.TensorSpec):
        shape, dtype = spec.shape, spec.dtype
    elif isinstance(spec, keras.KerasTensor):
        shape, dtype = tf.TensorShape(spec.shape), tf.as_dtype(spec.dtype)
    elif isinstance(spec, (tuple, list)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool))
        for d in spec
    ):
        shape, dtype = tf.TensorShape(spec), tf.float32
    else:
        raise TypeError(
            "input_spec must be a shape tuple, tf.TensorSpec or "
            f"keras.KerasTensor (or a list/dict of them). Received: {spec!r}"
        )
    if shape.rank is None or shape.rank < 1:
        raise ValueError(f"{name}: the spec needs a batch dimension: {spec!r}")
    # The batch is always dynamic, so that every batch size shares a trace.
    return tf.TensorSpec([None, *shape.as_list()[1:]], dtype, name=name)


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool))
        for d in value
    )


def normalize_spec(spec: Any, name: str = "inputs") -> Any:
    """A nest of `tf.TensorSpec` with the batch dimension set to None."""
    if _is_shape(spec) or isinstance(spec, (tf.TensorSpec, keras.KerasTensor)):
        return _to_spec(spec, name)
    if isinstance(spec, dict):
        return {k: _to_spec(v, k) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        # A named spec (a Functional model's input) keeps its name.
        return [
            _to_spec(
                v,
                v.name
                if isinstance(v, tf.TensorSpec) and v.name
                else f"{name}_{i}",
            )
            for i, v in enumerate(spec)
        ]
    return _to_spec(spec, name)


def spec_of_model(model: keras.Model) -> Any:
    """The input spec of a Functional model (None if it has none)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    specs = [
        tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=_clean(t.name))
        for t in inputs
    ]
    return specs[0] if len(specs) == 1 else specs


def model_spec(model: keras.Model, input_spec: Any) -> Any:
    """`input_spec` normalized, or the spec of a Functional model when
    it is None; a ValueError when neither is there."""
    if input_spec is None:
        input_spec = spec_of_model(model)
        if input_spec is None:
            raise ValueError(
                f"Model '{model.name}' has no input spec of its own; pass "
                "input_spec, e.g. (None, 28, 28, 1)."
            )
    return normalize_spec(input_spec)


def _clean(name: str) -> str:
    return name.split(":")[0].replace("/", "_")


def describe(spec: tf.TensorSpec) -> str:
    return f"shape={tuple(spec.shape)} dtype={spec.dtype.name}"


def check_values(model, inputs, mode: str | None) -> None:
    """Value checks a model asks for (`model.check_inputs`, e.g. token ids
    in range), run eagerly before an XLA function: XLA drops in-graph
    assertions. Graph and eager modes keep the model's own assertions.
    """
    checker = getattr(model, "check_inputs", None)
    if checker is not None and mode in (None, "xla"):
        checker(inputs)


def conform(value: Any, spec: Any, what: str) -> Any:
    """Checks `value` against `spec` (a nest of TensorSpec) and returns it
    as tensors; NumPy arrays are cast to the spec's dtype.

    Raises:
        ValueError: a clear one-line message naming the expected and
            received shape/dtype.
    """
    if isinstance(spec, dict):
        if not isinstance(value, dict) or set(value) != set(spec):
            raise ValueError(
                f"{what}: expected a dict with keys {sorted(spec)}. "
                f"Received: {type(value).__name__}"
            )
        return {
            k: conform(value[k], s, f"{what}[{k!r}]") for k, s in spec.items()
        }
    if isinstance(spec, list):
        names = [s.name for s in spec]
        if isinstance(value, dict) and sorted(value) == sorted(names):
            # Inputs by name (a data set's dict), in the spec's order.
            value = [value[name] for name in names]
        if not isinstance(value, (list, tuple)) or len(value) != len(spec):
            raise ValueError(
                f"{what}: expected {len(spec)} inputs. Received: {value!r:.60}"
            )
        return [
            conform(v, s, f"{what}[{i}]")
            for i, (v, s) in enumerate(zip(value, spec, strict=True))
        ]
    if isinstance(value, (np.ndarray, np.generic, list, float, int)):
        array = np.asarray(value)
        if spec.dtype.is_floating and array.dtype.kind in "fiu":
            value = tf.constant(array, dtype=spec.dtype)
        elif spec.dtype.is_integer and array.dtype.kind in "iu":
            value = tf.constant(array, dtype=spec.dtype)
        else:
            value = tf.constant(array)
    elif not isinstance(value, (tf.Tensor, tf.Variable)):
        raise ValueError(
            f"{what}: expected a tensor with {describe(spec)}. Received: "
            f"{type(value).__name__}"
        )
    received = f"shape={tuple(value.shape)} dtype={value.dtype.name}"
    if value.dtype != spec.dtype:
        raise ValueError(
            f"{what}: expected {describe(spec)}, received {received}"
        )
    if not spec.shape.is_compatible_with(value.shape):
        raise ValueError(
            f"{what}: expected {describe(spec)}, received {received}"
        )
    if value.shape.rank and value.shape[0] == 0:
        raise ValueError(f"{what}: the batch is empty ({received})")
    return value
