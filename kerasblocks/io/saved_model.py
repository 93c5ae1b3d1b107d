"""SavedModel export that serves anywhere and comes back as Keras.

`export_saved_model(model, directory)` writes a SavedModel with

- a `serving_default` signature: named inputs with the model's shapes and
  a dynamic batch, named outputs; it checks each input's rank and shape
  first, so a wrong shape fails with a message naming the input, not
  deep in the graph;
- a `validate` signature (also `module.validate`) that takes inputs of
  any shape and fails, naming the input, on a wrong rank or shape, an
  empty batch or non-finite values;
- `assets/kerasblocks/`: the model's full Keras config and a map from
  each variable to its checkpoint key, so `kerasblocks.io.load_model`
  rebuilds the original, trainable Keras model;
- `kerasblocks_manifest.json`: the SHA-256 of every file.

A process that never imports this project serves it with plain
`tf.saved_model.load(directory).signatures["serving_default"]`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks._keras_compat import export_lib, export_utils
from kerasblocks.compile._signature import normalize_spec
from kerasblocks.io import _integrity, _tied, safety, serving_warmup
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io._signatures import input_names, serving_functions
from kerasblocks.io._specs import (
    asset_layers,
    finalize_state,
    relative_path,
)
from kerasblocks.io.errors import CorruptFileError, UnsafeModelError
from kerasblocks.io.image_serving import (
    ImageServing,
    image_endpoints,
    output_kind,
)
from kerasblocks.params import unique_variables

FORMAT = "kerasblocks.saved_model"
VERSION = 1
ASSETS = os.path.join("assets", "kerasblocks")
CONFIG_FILE = "model_config.json"
WEIGHT_MAP_FILE = "weight_map.json"
OPTIMIZER_MAP_FILE = "optimizer_map.json"
SERVING_FILE = "serving.json"
LAYER_ASSETS = "layer_assets"  # each layer's Keras assets (vocabularies)
_VARIABLE_KEY = "kb_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"
_OPTIMIZER_KEY = "kb_optimizer_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"


def _keras_signature(model, input_spec, input_signature) -> list:
    """The positional-argument signature Keras's `model.export` uses."""
    if input_signature is not None:
        return list(input_signature)
    if input_spec is not None:
        return [normalize_spec(input_spec)]
    # As `model.export`: a subclassed model must have been called (its
    # build shape does not say how `call` takes its inputs). Models our
    # loaders restore are called on their recorded spec, so they export.
    return list(export_utils.get_input_signature(model))


def model_spec(model, input_spec: Any = None) -> Any:
    """The model's one argument as a nest of `tf.TensorSpec` with a
    dynamic batch (from `input_spec`, or as `model.export` infers it)."""
    signature = _keras_signature(model, input_spec, None)
    return keras.tree.map_structure(
        lambda x: export_utils.make_tf_tensor_spec(x, dynamic_batch=True),
        signature[0],
    )


def _named_specs(model, signature: list) -> tuple[list, list[str]]:
    """Flat `tf.TensorSpec`s (dynamic batch) and a name for each: a dict
    input's key, else the model's input name, else `inputs[_i]`."""
    tensor_specs = keras.tree.map_structure(
        lambda x: export_utils.make_tf_tensor_spec(x, dynamic_batch=True),
        signature,
    )
    paths = [path for path, _ in keras.tree.flatten_with_path(tensor_specs)]
    specs = tf.nest.flatten(tensor_specs)
    names = input_names(model, len(specs))
    keyed = [p[-1] if p and isinstance(p[-1], str) else None for p in paths]
    if all(keyed) and len(set(keyed)) == len(keyed):
        names = [k.replace("/", "_") for k in keyed]
    return specs, names


def _keras_config(model) -> tuple[Any, str | None]:
    """The model's config for reloading as Keras, or why there is none."""
    try:
        config = keras.saving.serialize_keras_object(model)
        json.dumps(config, default=_json_default)
    except (NotImplementedError, TypeError, ValueError) as error:
        return None, f"{type(model).__name__} has no config ({error})"
    orders = _tied.sequential_orders(model)
    return (_tied.expand(config, orders) if orders else config), None


def export_saved_model(
    model: keras.Model,
    directory: str | os.PathLike,
    input_spec: Any = None,
    *,
    input_signature: Any = None,
    verbose: bool | None = None,
    image_serving: ImageServing | None = None,
    warmup: bool = False,
    **kwargs,
) -> None:
    """Exports `model` as a SavedModel that also reloads as Keras.

    Built on Keras's `ExportArchive`, so the export holds everything
    `model.export(directory)` writes (the `serve` endpoint with Keras's
    calling convention, lookup tables, RNG state), plus our named
    `serving_default` and `validate` signatures and the Keras config.
    The model is not run (nor changed) by exporting. The write is
    atomic: a failure leaves an existing export untouched.

    Args:
        model: a built Keras model.
        directory: the SavedModel directory.
        input_spec: input shape(s)/spec(s) of the model's one argument;
            None takes them from the model, as `model.export` does.
        input_signature: Keras's argument: a list with one spec
            structure per positional argument of the model's `call`.
        verbose: print the endpoints, as Keras does (default False).
        image_serving: for an image classifier, how clients' raw images
            become its input (`kerasblocks.io.ImageServing`). Then
            `serving_default` takes uint8 images of any size,
            `serving_bytes` encoded JPEG/PNG strings, and the float
            signature is named `serving_float`.
        warmup: add TF Serving's warm-up requests for `serving_default`
            (`assets.extra/tf_serving_warmup_requests`, see
            `kerasblocks.io.serving_warmup`).
        **kwargs: passed to Keras's endpoint (backend options).

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf, zoo, kerasblocks
    >>> model = zoo.create_model("lenet")
    >>> path = os.path.join(tempfile.mkdtemp(), "lenet")
    >>> kerasblocks.io.export_saved_model(model, path)
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> list(serve.structured_input_signature[1])
    ['images']
    >>> serve(images=tf.zeros((3, 28, 28, 1)))["predictions"].shape
    TensorShape([3, 10])
    """
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built. It must be built before "
            "export."
        )
    signature = _keras_signature(model, input_spec, input_signature)
    specs, names = _named_specs(model, signature)
    output_names: list[str] = []
    archive = export_lib.ExportArchive()
    default_specs = _add_endpoints(
        archive,
        model,
        signature,
        specs,
        names,
        output_names,
        image_serving,
        kwargs,
    )
    variables = unique_variables(model)
    archive.add_variable_collection(
        "kb_variables", [v.value for v in variables]
    )
    optimizer = getattr(model, "optimizer", None)
    slots = list(optimizer.variables) if optimizer and optimizer.built else []
    if slots:
        archive.add_variable_collection(
            "kb_optimizer_variables", [v.value for v in slots]
        )
    config, no_config = _keras_config(model)
    with atomic_path(directory) as temporary:
        archive.write_out(temporary, verbose=bool(verbose))
        # `output_names` is filled in when `serve` is traced.
        serving = _serving_record(
            model, names, specs, output_names, no_config, image_serving
        )
        contents = [
            (WEIGHT_MAP_FILE, _weight_map(model, variables)),
            (SERVING_FILE, serving),
        ]
        if slots:
            contents.append((OPTIMIZER_MAP_FILE, _optimizer_map(slots)))
        if config is not None:
            contents.append((CONFIG_FILE, config))
        _write_assets(temporary, model, contents)
        if warmup:
            serving_warmup.write_warmup_requests(
                temporary,
                serving_warmup.warmup_inputs(
                    default_specs,
                    max_pixels=getattr(image_serving, "max_pixels", None),
                ),
            )
        _integrity.seal_directory(
            temporary,
            {
                "format": FORMAT,
                "version": VERSION,
                "keras_version": keras.__version__,
                "tensorflow_version": tf.__version__,
            },
        )


def _add_endpoints(
    archive, model, signature, specs, names, output_names, image_serving, kw
) -> dict:
    """Adds Keras's `serve` endpoint, our named serving signature, the
    `validate` signature and, with `image_serving`, the image
    endpoints to `archive`; returns the specs `serving_default` takes,
    by input name."""
    forward = archive.track_and_add_endpoint(
        export_lib.DEFAULT_ENDPOINT_NAME, model, signature, **kw
    )
    serve, validate = serving_functions(
        model, signature, specs, names, output_names, forward
    )
    archive.add_endpoint(
        "serving_default" if image_serving is None else "serving_float",
        serve,
        [
            tf.TensorSpec(s.shape, s.dtype, name=n)
            for s, n in zip(specs, names, strict=True)
        ],
    )
    archive.add_endpoint(
        "validate",
        validate,
        [
            tf.TensorSpec(None, s.dtype, name=n)
            for s, n in zip(specs, names, strict=True)
        ],
    )
    default_specs = dict(zip(names, specs, strict=True))
    if image_serving is not None:
        endpoints = image_endpoints(model, image_serving, forward)
        for name, (fn, spec) in endpoints.items():
            archive.add_endpoint(name, fn, spec)
            if name == "serving_default":
                default_specs = {s.name: s for s in spec}
    return default_specs


def _weight_map(model, variables) -> list[dict]:
    """Where each of the model's variables is in the checkpoint."""
    return [
        {
            "path": relative_path(model, v),
            "shape": list(v.shape),
            "dtype": str(v.dtype),
            "key": _VARIABLE_KEY.format(i),
        }
        for i, v in enumerate(variables)
    ]


def _optimizer_map(slots) -> list[dict]:
    """Where each of the optimizer's variables is in the checkpoint."""
    return [
        {"path": v.path, "shape": list(v.shape), "key": key}
        for i, v in enumerate(slots)
        for key in [_OPTIMIZER_KEY.format(i)]
    ]


def _serving_record(
    model, names, specs, output_names, no_config, image_serving
) -> dict:
    """`serving.json`: the named inputs and outputs, and how images are
    served."""
    serving = {
        "inputs": [
            {"name": n, "shape": s.shape.as_list(), "dtype": s.dtype.name}
            for n, s in zip(names, specs, strict=True)
        ],
        "outputs": output_names,
    }
    if no_config:
        serving["no_keras_config"] = no_config
    if image_serving is not None:
        serving["image_serving"] = dataclasses.asdict(image_serving)
        serving["image_outputs"] = output_kind(model)
    return serving


def _write_assets(directory, model, contents) -> None:
    """Writes our JSON files and each layer's Keras assets under the
    export's `ASSETS`."""
    assets = os.path.join(directory, ASSETS)
    os.makedirs(assets, exist_ok=True)
    for name, content in contents:
        with open(os.path.join(assets, name), "w") as f:
            json.dump(content, f, default=_json_default)
    for index, layer in enumerate(asset_layers(model)):
        where = os.path.join(assets, LAYER_ASSETS, f"{index:04d}")
        os.makedirs(where)
        layer.save_assets(where)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def _read_json(directory: str, name: str):
    path = os.path.join(directory, ASSETS, name)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise CorruptFileError(
            directory, f"unreadable {name} ({error})"
        ) from None


def check_saved_model(directory: str | os.PathLike) -> list[str]:
    """What in a SavedModel directory would read/write files or run code.

    Reads `saved_model.pb` (and the kerasblocks config, if any) as data;
    never loads or calls the graph. An empty list means nothing found.
    """
    directory = os.fspath(directory)
    problems = safety.saved_model_problems(directory)
    config = _read_json(directory, CONFIG_FILE)
    if config is not None:
        safety.import_trusted_packages(config)
        problems += safety.config_problems(config)
    return problems


def load_saved_model(
    directory: str,
    *,
    trusted: bool = False,
    compile: bool = True,
    custom_objects=None,
) -> keras.Model:
    """The Keras model exported to `directory` by `export_saved_model`."""
    if not os.path.exists(os.path.join(directory, "saved_model.pb")):
        raise CorruptFileError(directory, "no saved_model.pb: not a SavedModel")
    _integrity.verify_directory(directory)
    if not trusted:
        problems = safety.saved_model_problems(directory)
        if problems:
            raise UnsafeModelError(directory, problems)
    config = _read_json(directory, CONFIG_FILE)
    weight_map = _read_json(directory, WEIGHT_MAP_FILE)
    if config is not None:
        safety.import_trusted_packages(config)
    if config is None or weight_map is None:
        serving = _read_json(directory, SERVING_FILE) or {}
        why = (
            serving.get("no_keras_config")
            or "it was not exported by kerasblocks"
        )
        raise ValueError(
            f"{directory}: this SavedModel holds no Keras config ({why}); "
            "serve it with tf.saved_model.load."
        )
    config = safety.gate(directory, config, trusted, (), custom_objects)
    model = keras.saving.deserialize_keras_object(
        config, custom_objects=custom_objects, safe_mode=not trusted
    )
    if not model.built and config.get("build_config"):
        model.build_from_config(config["build_config"])
    variables = unique_variables(model)
    if len(variables) != len(weight_map):
        raise CorruptFileError(
            directory,
            f"the weight map lists {len(weight_map)} variables, the model "
            f"has {len(variables)}",
        )
    reader = tf.train.load_checkpoint(
        os.path.join(directory, "variables", "variables")
    )
    values = []
    for variable, entry in zip(variables, weight_map, strict=True):
        if list(variable.shape) != entry["shape"]:
            raise CorruptFileError(
                directory,
                f"{entry['path']} has shape {entry['shape']} in the file and "
                f"{list(variable.shape)} in the model",
            )
        try:
            values.append(reader.get_tensor(entry["key"]))
        except Exception as error:  # NotFoundError, DataLossError
            raise CorruptFileError(
                directory,
                f"cannot read {entry['path']} ({type(error).__name__})",
            ) from None
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    for index, layer in enumerate(asset_layers(model)):
        where = os.path.join(directory, ASSETS, LAYER_ASSETS, f"{index:04d}")
        if os.path.isdir(where):
            layer.load_assets(where)
    finalize_state(model)
    if compile and config.get("compile_config"):
        model.compile_from_config(config["compile_config"])
        _restore_optimizer(directory, model, reader)
    return model


def _restore_optimizer(directory: str, model, reader) -> None:
    """The optimizer's state (step count, moments) as exported."""
    optimizer_map = _read_json(directory, OPTIMIZER_MAP_FILE)
    optimizer = getattr(model, "optimizer", None)
    if not optimizer_map or optimizer is None:
        return
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    slots = list(optimizer.variables)
    shapes = [list(v.shape) for v in slots]
    if shapes != [entry["shape"] for entry in optimizer_map]:
        raise CorruptFileError(
            directory, "the optimizer state does not match the optimizer"
        )
    values = [reader.get_tensor(entry["key"]) for entry in optimizer_map]
    for variable, value in zip(slots, values, strict=True):
        variable.assign(value)
