"""The legacy `.h5` format, through Keras's legacy HDF5 writer and
reader, plus our guarantees.

Added to Keras's own `.h5`: a checksum of the file in its HDF5 user
block, atomic writes (by `kerasblocks.io.models`), the safety checks of
`kerasblocks.io.safety` before anything is built, the registered class
name and build record of a subclassed model (which Keras's writer omits,
so its reader cannot rebuild one), tied layers, and a training config
whose losses and metrics are given by name (which Keras's reader
refuses).
"""

from __future__ import annotations

import contextlib
import json
import os

import h5py
import keras

from kerasblocks import _keras_compat
from kerasblocks._keras_compat import (
    legacy_h5_format,
    legacy_json_utils,
    legacy_saving_utils,
    serialization_lib,
)
from kerasblocks._keras_compat import legacy_saving_options as saving_options
from kerasblocks.io import _integrity, _tied, safety
from kerasblocks.io.errors import CorruptFileError


def _unique_layers(model) -> list:
    seen, layers = set(), []
    for layer in model.layers:
        if id(layer) not in seen:
            seen.add(id(layer))
            layers.append(layer)
    return layers


@contextlib.contextmanager
def _canonical_order(model):
    """Every layer trainable while the weights are written or read.

    Keras's legacy writer lists a layer's trainable weights before its
    frozen ones, so a model saved with a frozen backbone (a fine-tuned
    run) wrote its head first, and the model rebuilt from the file (all
    trainable) read the head's kernel into its stem. With every layer
    trainable the order is the order of creation on both sides; each
    layer's own flag is put back afterwards (outer layers first, so an
    inner layer's own setting wins)."""
    layers = _keras_compat.flatten_layers(model)
    flags = [(layer, layer.trainable) for layer in layers]
    for layer in layers:
        layer.trainable = True
    try:
        yield
    finally:
        for layer, trainable in flags:
            layer.trainable = trainable


def _weights_view(model):
    """`model` as Keras's legacy HDF5 code sees it, each layer once."""
    return _keras_compat.legacy_weights_view(model, _unique_layers(model))


def save(model, path: str, include_optimizer: bool, orders) -> None:
    with h5py.File(path, "w", userblock_size=_integrity.USERBLOCK_SIZE) as f:
        with (
            saving_options.keras_option_scope(use_legacy_config=True),
            _keras_compat.compile_config_kept(model),
        ):
            metadata = legacy_saving_utils.model_metadata(
                model, include_optimizer
            )
            # Keras writes the bare class name, which its own loader cannot
            # resolve for a registered class; write the registered name.
            metadata["model_config"]["class_name"] = (
                keras.saving.get_registered_name(type(model))
            )
            # The legacy config has no build record; without it a
            # subclassed model comes back unbuilt and its weights cannot
            # be placed.
            build_config = model.get_build_config()
            if build_config:
                metadata["model_config"]["build_config"] = build_config
            if orders:
                metadata["model_config"] = _tied.expand(
                    metadata["model_config"], orders
                )
            for key, value in metadata.items():
                if isinstance(value, (dict, list, tuple)):
                    value = json.dumps(value, default=_json_default)
                f.attrs[key] = value
            group = f.create_group("model_weights")
            with _canonical_order(model):
                legacy_h5_format.save_weights_to_hdf5_group(
                    group, _weights_view(model)
                )
            if include_optimizer and getattr(model, "optimizer", None):
                if model.optimizer.built:
                    legacy_h5_format.save_optimizer_weights_to_hdf5_group(
                        f, model.optimizer
                    )
    _integrity.seal_h5(path)


def _json_default(obj):
    return legacy_json_utils.get_json_type(obj)


def _resolve_compile_value(value, kind: str, custom_objects):
    if isinstance(value, dict) and "class_name" in value:
        module = keras.losses if kind == "loss" else keras.metrics
        with keras.saving.custom_object_scope(custom_objects or {}):
            return module.deserialize(value)
    if isinstance(value, dict):
        return {
            k: _resolve_compile_value(v, kind, custom_objects)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_compile_value(v, kind, custom_objects) for v in value]
    return value  # names such as "mse" are resolved by compile()


def _compile_from_training_config(model, training: dict, custom_objects):
    """Compiles from a legacy training config. Keras 3.15's own reader
    fails on a loss given by name ("Could not deserialize
    'keras.metrics.mse'"), so names are passed to compile() as names."""

    def resolve(key, kind):
        return _resolve_compile_value(training.get(key), kind, custom_objects)

    model.compile(
        optimizer=keras.optimizers.deserialize(training["optimizer_config"]),
        loss=resolve("loss", "loss"),
        metrics=resolve("metrics", "metric"),
        loss_weights=training.get("loss_weights"),
        weighted_metrics=resolve("weighted_metrics", "metric"),
        run_eagerly=training.get("run_eagerly", False),
        steps_per_execution=training.get("steps_per_execution", 1),
        jit_compile=training.get("jit_compile", "auto"),
    )


def load(
    path: str,
    trusted: bool,
    compile: bool,
    custom_objects=None,
    safe_mode: bool = True,
) -> keras.Model:
    """Loads a legacy `.h5` model, checked first (see the module)."""
    with _integrity.open_h5(path) as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise CorruptFileError(path, "no model config in the file")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        try:
            config = json.loads(raw)
        except ValueError as error:
            raise CorruptFileError(
                path, f"unreadable model config ({error})"
            ) from None
        found = safety.h5_problems(f, os.path.getsize(path))
        config = safety.gate(path, config, trusted, found, custom_objects)
        group = f.get("model_weights")
        if not isinstance(group, h5py.Group):
            raise CorruptFileError(path, "no model_weights group in the file")
        with saving_options.keras_option_scope(use_legacy_config=True):
            with serialization_lib.SafeModeScope(safe_mode and not trusted):
                model = legacy_saving_utils.model_from_config(
                    config, custom_objects=custom_objects
                )
                if not model.built and config.get("build_config"):
                    model.build_from_config(config["build_config"])
                with _canonical_order(model):
                    legacy_h5_format.load_weights_from_hdf5_group(
                        group, _weights_view(model)
                    )
        training = f.attrs.get("training_config")
        if compile and training is not None:
            if isinstance(training, bytes):
                training = training.decode("utf-8")
            _compile_from_training_config(
                model, json.loads(training), custom_objects
            )
            if "optimizer_weights" in f:
                model.optimizer.build(model.trainable_variables)
                model.optimizer.set_weights(
                    legacy_h5_format.load_optimizer_weights_from_hdf5_group(f)
                )
    return model
