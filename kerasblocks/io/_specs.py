"""What the saving formats record about a model: its variables' paths
relative to the model, and its input spec (to build an unbuilt twin)."""

from __future__ import annotations

import contextlib
from typing import Any

import keras

from kerasblocks import _keras_compat


def relative_path(model: keras.layers.Layer, variable) -> str:
    """The variable's path without the model's own name in front."""
    prefix = f"{model.name}/"
    path = variable.path
    return path[len(prefix) :] if path.startswith(prefix) else path


def input_spec_of(model: keras.layers.Layer) -> Any:
    """A JSON-able description of the model's inputs, or None."""

    def spec(shape, dtype):
        return {"shape": [None, *list(shape)[1:]], "dtype": str(dtype)}

    try:
        inputs = _keras_compat.inputs_struct(model)
        if inputs is None:
            inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs is not None and len(keras.tree.flatten(inputs)):
        described = keras.tree.map_structure(
            lambda t: spec(t.shape, t.dtype), inputs
        )
        if isinstance(described, list) and len(described) == 1:
            described = described[0]  # Sequential keeps a one-input list
        return described
    build = model.get_build_config() if model.built else None
    if build and "input_shape" in build:
        shape = build["input_shape"]
        dtype = getattr(model, "input_dtype", "float32")
        if isinstance(shape, (list, tuple)) and all(
            d is None or isinstance(d, int) for d in shape
        ):
            return spec(shape, dtype)
    return None


def spec_to_keras(spec: Any) -> Any:
    if isinstance(spec, dict) and set(spec) == {"shape", "dtype"}:
        return keras.KerasTensor(tuple(spec["shape"]), dtype=spec["dtype"])
    if isinstance(spec, dict):
        return {k: spec_to_keras(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [spec_to_keras(v) for v in spec]
    raise ValueError(f"malformed input spec {spec!r}")


def build_like(model: keras.Model, source: keras.Model) -> None:
    """Builds `model` with the input spec of an equivalent `source`."""
    from kerasblocks.deferred import materialize

    spec = input_spec_of(source)
    if spec is None:
        raise ValueError(
            f"Model '{model.name}' is not built and the file does not say "
            "its input shape; build it first."
        )
    materialize(model, spec_to_keras(spec))


def call_on_recorded_spec(model: keras.Model) -> None:
    """Calls a restored subclassed model once on symbolic inputs of its
    recorded build shape.

    Keras restores such a model by building it from that shape, which
    never calls it, and `model.export` then refuses it ("It must be
    called"). A symbolic call computes nothing and changes no variable;
    it makes the restored model export as the saved one did. A model
    whose call fails on that spec is left as Keras restored it.
    """
    if (
        not model.built
        or _keras_compat.was_called(model)
        or isinstance(model, _keras_compat.GRAPH_MODELS)
    ):
        return
    spec = input_spec_of(model)
    if spec is None:
        return
    with contextlib.suppress(Exception):
        model(spec_to_keras(spec))


def _layers(model) -> list:
    return _keras_compat.flatten_layers(model)


def finalize_state(model) -> None:
    """Recomputes what preprocessing layers derive from their variables
    (a Normalization's mean and variance), as Keras's loader does after
    assigning them; without it the layer keeps its pre-load values."""
    for layer in _layers(model):
        if type(layer).__name__ == "Normalization":
            layer.finalize_state()


def state_outside_variables(model) -> list[str]:
    """Layers holding state a variables-only file cannot carry (an
    adapted vocabulary lives in a lookup table, saved as an asset)."""
    found = []
    for layer in _layers(model):
        if hasattr(layer, "save_assets") and hasattr(layer, "vocabulary_size"):
            reserved = layer.num_oov_indices + (layer.mask_token is not None)
            if layer.vocabulary_size() > reserved:
                found.append(layer.name)
    return found


def asset_layers(model) -> list:
    """Layers that keep state in files (Keras's `save_assets`), in a
    stable order: an adapted vocabulary is one."""
    return [
        layer
        for layer in _layers(model)
        if callable(getattr(layer, "save_assets", None))
    ]
