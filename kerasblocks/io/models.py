"""Saving and loading whole models: `.keras`, legacy `.h5`, SavedModel.

On top of Keras's own formats this adds:

- atomic writes (a crash mid-save leaves the old file intact);
- integrity: a `.keras` archive carries a manifest (format version,
  Keras/TF versions, SHA-256 of each member) and a checksum of the whole
  file in its comment; an `.h5` file carries a checksum of itself in its
  HDF5 user block; a SavedModel directory a manifest of every file. Any
  damage raises `CorruptFileError` naming the file and the problem;
- safe loading by default: anything that would run code or reach
  outside the file (a Lambda, an unregistered or non-Keras class or
  function, a file reference, an archive member escaping the archive, an
  HDF5 external link, a dataset larger than its file, a SavedModel op
  that reads or writes files) is refused with `UnsafeModelError` before
  anything is built, unless `trusted=True`;
- tied layers stay tied: a `keras.Sequential` holding one layer twice,
  which Keras 3.15 saves but cannot load, comes back with one layer used
  twice (and one set of variables).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import types
import zipfile
from typing import Any

import h5py
import keras
from keras.src.legacy.saving import legacy_h5_format, saving_options
from keras.src.legacy.saving import saving_utils as legacy_saving_utils

from kerasblocks._registry import register
from kerasblocks.io import _integrity, safety
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError, UnsafeModelError

MANIFEST = "kerasblocks_manifest.json"
MANIFEST_VERSION = 1
_KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")


def _format_of(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".keras"):
        return "keras"
    if lowered.endswith((".h5", ".hdf5")):
        return "h5"
    if os.path.isdir(path) or not os.path.splitext(path)[1]:
        return "saved_model"
    raise ValueError(
        f"{path}: unknown model format; use a path ending in '.keras' or "
        "'.h5', or a directory (SavedModel)."
    )


def save_model(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    include_optimizer: bool = True,
) -> None:
    """Saves a model to `.keras` or legacy `.h5`, atomically.

    Args:
        model: a built Keras model.
        path: ends in `.keras` or `.h5` (or `.hdf5`).
        include_optimizer: for `.h5`, also save the optimizer state of a
            compiled model (`.keras` always includes it).

    Example:

    >>> import os, tempfile, keras, kerasblocks
    >>> net = kerasblocks.SequentialBlock(keras.layers.Dense(3))
    >>> _ = kerasblocks.materialize(net, (None, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.keras")
    >>> kerasblocks.io.save_model(net, path)
    >>> type(kerasblocks.io.load_model(path)).__name__
    'SequentialBlock'
    """
    path = os.fspath(path)
    kind = _format_of(path)
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built; build it (e.g. "
            "kerasblocks.materialize(model, input_shape)) before saving."
        )
    if kind == "saved_model":
        from kerasblocks.io.saved_model import export_saved_model

        export_saved_model(model, path)
        return
    suffix = ".keras" if kind == "keras" else ".h5"
    orders = _tied_sequential_orders(model)
    with atomic_path(path, suffix=suffix) as temporary:
        if kind == "keras":
            keras.saving.save_model(model, temporary)
            _finish_archive(temporary, orders)
        else:
            _save_h5(model, temporary, include_optimizer, orders)
            _integrity.seal_h5(temporary)


def _tied_sequential_orders(model) -> dict[tuple[str, ...], list[str]]:
    """For each Sequential that uses a layer twice, its layer order.

    Keras's `Sequential.get_config` lists each layer once, which loses
    the second use; the order is written back into the saved config.
    Keys are the chain of layer names from the model down.
    """
    orders = {}

    def visit(layer, prefix):
        here = (*prefix, layer.name)
        if isinstance(layer, keras.Sequential):
            names = [sub.name for sub in layer.layers]
            if len(names) != len(set(names)):
                orders[here] = names
        for child in layer._flatten_layers(include_self=False, recursive=False):
            visit(child, here)

    visit(model, ())
    return orders


def _expand_tied_sequentials(config, orders, prefix=()):
    """Rewrites the layer lists of the Sequentials in `orders`."""
    if isinstance(config, list):
        return [_expand_tied_sequentials(v, orders, prefix) for v in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if "class_name" in config and isinstance(inner, dict) and "name" in inner:
        here = (*prefix, inner["name"])
        inner = {
            k: _expand_tied_sequentials(v, orders, here)
            for k, v in inner.items()
        }
        if config["class_name"] == "Sequential" and here in orders:
            layers = inner["layers"]
            by_name = {layer["config"]["name"]: layer for layer in layers}
            heads = [x for x in layers if x["class_name"] == "InputLayer"]
            inner["layers"] = heads + [by_name[n] for n in orders[here]]
        return {**config, "config": inner}
    return {
        k: _expand_tied_sequentials(v, orders, prefix)
        for k, v in config.items()
    }


def _finish_archive(path: str, orders) -> None:
    """Writes the tie-preserving config (if needed) and the manifest."""
    if orders:
        with zipfile.ZipFile(path) as source:
            members = {name: source.read(name) for name in source.namelist()}
        config = json.loads(members["config.json"])
        members["config.json"] = json.dumps(
            _expand_tied_sequentials(config, orders)
        ).encode("utf-8")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            for name, data in members.items():
                target.writestr(name, data)
    with zipfile.ZipFile(path, "a") as archive:
        digests = {
            name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist()
        }
        manifest = {
            "format_version": MANIFEST_VERSION,
            "keras_version": keras.__version__,
            "tensorflow_version": _tf_version(),
            "sha256": digests,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
        archive.comment = _integrity.zip_placeholder_comment()
    _integrity.seal_zip(path)


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__


def _unique_layers(model) -> list:
    seen, layers = set(), []
    for layer in model.layers:
        if id(layer) not in seen:
            seen.add(id(layer))
            layers.append(layer)
    return layers


def _weights_view(model):
    """`model` as Keras's legacy HDF5 code sees it, each layer once."""
    return types.SimpleNamespace(
        layers=_unique_layers(model),
        weights=model.weights,
        _trainable_variables=model._trainable_variables,
        _non_trainable_variables=model._non_trainable_variables,
    )


def _save_h5(model, path: str, include_optimizer: bool, orders) -> None:
    with h5py.File(path, "w", userblock_size=_integrity.USERBLOCK_SIZE) as f:
        with saving_options.keras_option_scope(use_legacy_config=True):
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
                metadata["model_config"] = _expand_tied_sequentials(
                    metadata["model_config"], orders
                )
            for key, value in metadata.items():
                if isinstance(value, (dict, list, tuple)):
                    value = json.dumps(value, default=_json_default)
                f.attrs[key] = value
            group = f.create_group("model_weights")
            legacy_h5_format.save_weights_to_hdf5_group(
                group, _weights_view(model)
            )
            if include_optimizer and getattr(model, "optimizer", None):
                if model.optimizer.built:
                    legacy_h5_format.save_optimizer_weights_to_hdf5_group(
                        f, model.optimizer
                    )


def _json_default(obj):
    from keras.src.legacy.saving import json_utils

    return json_utils.get_json_type(obj)


# --- loading -----------------------------------------------------------


def _mark_tied_sequentials(config: Any) -> Any:
    """Routes each Sequential config that repeats a layer to the loader
    that rebuilds it with one shared layer."""
    if isinstance(config, list):
        return [_mark_tied_sequentials(v) for v in config]
    if not isinstance(config, dict):
        return config
    config = {k: _mark_tied_sequentials(v) for k, v in config.items()}
    if config.get("class_name") == "Sequential" and isinstance(
        config.get("config"), dict
    ):
        names = [
            layer.get("config", {}).get("name")
            for layer in config["config"].get("layers", [])
            if isinstance(layer, dict)
        ]
        if len(names) != len(set(names)):
            config["class_name"] = "kerasblocks>TiedSequential"
            config["registered_name"] = "kerasblocks>TiedSequential"
            config["module"] = None
    return config


@register()
class TiedSequential(keras.Sequential):
    """Loader for a `keras.Sequential` that uses one layer several times.

    Only its `from_config` is used: it returns a plain `keras.Sequential`
    in which each repeated layer name is one shared layer.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = keras.Sequential(name=config["name"])
        by_name: dict[str, keras.layers.Layer] = {}
        for layer_config in config["layers"]:
            name = layer_config.get("config", {}).get("name")
            if name not in by_name:
                if "module" in layer_config:
                    layer = keras.saving.deserialize_keras_object(
                        layer_config, custom_objects=custom_objects
                    )
                else:  # the legacy (.h5) config style
                    layer = legacy_saving_utils.model_from_config(
                        layer_config, custom_objects=custom_objects
                    )
                by_name[name] = layer
            model.add(by_name[name])
        shape = config.get("build_input_shape")
        if not model._functional and isinstance(shape, (tuple, list)):
            model.build(shape)
        return model


def load_model(
    path: str | os.PathLike, *, trusted: bool = False, compile: bool = True
) -> keras.Model:
    """Loads a `.keras`, `.h5` or SavedModel model, safely unless trusted.

    A SavedModel written by `export_saved_model` comes back as the
    original Keras model: same class, config and weights, trainable.

    Args:
        path: the file or SavedModel directory.
        trusted: allow files that would run code or reach outside the
            file (Lambda layers, unregistered classes, non-Keras
            functions, file references, file-reading ops). Only for files
            you trust. Integrity checks apply either way.
        compile: restore the training configuration if one was saved.

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: the file is damaged or not a model file.
        UnsafeModelError: the file would run code and `trusted` is False.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    kind = _format_of(path)
    if kind == "saved_model":
        if not os.path.isdir(path):
            raise CorruptFileError(path, "not a SavedModel directory")
        from kerasblocks.io.saved_model import load_saved_model

        return load_saved_model(path, trusted=trusted, compile=compile)
    if kind == "keras":
        _integrity.verify_zip(path)
        return _load_keras(path, trusted, compile)
    _integrity.verify_h5(path)
    return _load_h5(path, trusted, compile)


def _build_like(model: keras.Model, source: keras.Model) -> None:
    """Builds `model` with the input spec of an equivalent `source`."""
    from kerasblocks.deferred import materialize
    from kerasblocks.io.weights import _input_spec_of, _spec_to_keras

    spec = _input_spec_of(source)
    if spec is None:
        raise ValueError(
            f"Model '{model.name}' is not built and the file does not say "
            "its input shape; build it first."
        )
    materialize(model, _spec_to_keras(spec))


def _check(path: str, config: Any, trusted: bool, found=()) -> Any:
    safety.import_own_packages(config)
    if not trusted:
        problems = list(found) + safety.config_problems(config)
        if problems:
            raise UnsafeModelError(path, problems)
    return _mark_tied_sequentials(config)


def _load_keras(path: str, trusted: bool, compile: bool) -> keras.Model:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise CorruptFileError(
            path, f"not a readable .keras archive ({error})"
        ) from None
    with archive, tempfile.TemporaryDirectory() as scratch:
        names = archive.namelist()
        found = safety.archive_member_problems(
            names, (*_KERAS_MEMBERS, MANIFEST)
        )
        for member in ("config.json", "model.weights.h5"):
            if member not in names:
                raise CorruptFileError(path, f"the archive has no {member}")
        try:
            if MANIFEST in names:
                manifest = json.loads(archive.read(MANIFEST))
                for member, digest in manifest.get("sha256", {}).items():
                    if member not in names:
                        raise CorruptFileError(path, f"{member} is missing")
                    data = archive.read(member)
                    if hashlib.sha256(data).hexdigest() != digest:
                        raise CorruptFileError(
                            path, f"checksum mismatch in {member}"
                        )
            config = json.loads(archive.read("config.json"))
            weights_path = os.path.join(scratch, "model.weights.h5")
            with open(weights_path, "wb") as out:
                out.write(archive.read("model.weights.h5"))
        except CorruptFileError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            raise CorruptFileError(
                path, f"cannot read the archive ({error})"
            ) from None
        with h5py.File(weights_path, "r") as weights:
            found += safety.h5_problems(weights, os.path.getsize(weights_path))
        config = _check(path, config, trusted, found)
        model = keras.saving.deserialize_keras_object(
            config, safe_mode=not trusted
        )
        if compile and config.get("compile_config"):
            model.compile_from_config(config["compile_config"])
        model.load_weights(weights_path)
    return model


def _resolve_compile_value(value):
    if isinstance(value, dict) and "class_name" in value:
        return keras.saving.deserialize_keras_object(value)
    if isinstance(value, dict):
        return {k: _resolve_compile_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_compile_value(v) for v in value]
    return value  # names such as "mse" are resolved by compile()


def _compile_from_training_config(model, training: dict) -> None:
    """Compiles from a legacy training config. Keras 3.15's own reader
    fails on a loss given by name ("Could not deserialize
    'keras.metrics.mse'"), so names are passed to compile() as names."""
    model.compile(
        optimizer=keras.optimizers.deserialize(training["optimizer_config"]),
        loss=_resolve_compile_value(training.get("loss")),
        metrics=_resolve_compile_value(training.get("metrics")),
        loss_weights=training.get("loss_weights"),
        weighted_metrics=_resolve_compile_value(
            training.get("weighted_metrics")
        ),
        run_eagerly=training.get("run_eagerly", False),
        steps_per_execution=training.get("steps_per_execution", 1),
        jit_compile=training.get("jit_compile", "auto"),
    )


def _load_h5(path: str, trusted: bool, compile: bool) -> keras.Model:
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise CorruptFileError(
            path, f"not a readable HDF5 file ({error})"
        ) from None
    with f:
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
        config = _check(path, config, trusted, found)
        group = f.get("model_weights")
        if not isinstance(group, h5py.Group):
            raise CorruptFileError(path, "no model_weights group in the file")
        with saving_options.keras_option_scope(use_legacy_config=True):
            with keras.src.saving.serialization_lib.SafeModeScope(not trusted):
                model = legacy_saving_utils.model_from_config(config)
                if not model.built and config.get("build_config"):
                    model.build_from_config(config["build_config"])
                legacy_h5_format.load_weights_from_hdf5_group(
                    group, _weights_view(model)
                )
        training = f.attrs.get("training_config")
        if compile and training is not None:
            if isinstance(training, bytes):
                training = training.decode("utf-8")
            _compile_from_training_config(model, json.loads(training))
            if "optimizer_weights" in f:
                model.optimizer.build(model.trainable_variables)
                model.optimizer.set_weights(
                    legacy_h5_format.load_optimizer_weights_from_hdf5_group(f)
                )
    return model
