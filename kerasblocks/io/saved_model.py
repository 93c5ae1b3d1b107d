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

from kerasblocks.compile._signature import normalize_spec, spec_of_model
from kerasblocks.io import _integrity, safety
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError, UnsafeModelError
from kerasblocks.io.image_serving import ImageServing, image_signatures
from kerasblocks.params import unique_variables

FORMAT = "kerasblocks.saved_model"
VERSION = 1
ASSETS = os.path.join("assets", "kerasblocks")
CONFIG_FILE = "model_config.json"
WEIGHT_MAP_FILE = "weight_map.json"
SERVING_FILE = "serving.json"
_VARIABLE_KEY = "kb_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"


def _input_names(model, count: int) -> list[str]:
    try:
        names = [t.name.split(":")[0] for t in model.inputs]
    except (AttributeError, ValueError, TypeError):
        names = []
    if len(names) != count or len(set(names)) != count:
        names = (
            ["inputs"] if count == 1 else [f"inputs_{i}" for i in range(count)]
        )
    return [n.replace("/", "_") for n in names]


def _output_names(model, count: int) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != count or len(set(names)) != count:
        names = (
            ["outputs"]
            if count == 1
            else [f"outputs_{i}" for i in range(count)]
        )
    return names


def _model_spec(model, input_spec):
    if input_spec is not None:
        return normalize_spec(input_spec)
    spec = spec_of_model(model)
    if spec is None:
        from kerasblocks.io.weights import _input_spec_of

        spec = _described_to_spec(_input_spec_of(model))
    if spec is None:
        raise ValueError(
            f"Cannot tell the input spec of '{model.name}'; pass input_spec, "
            "e.g. (None, 28, 28, 1)."
        )
    return normalize_spec(spec)


def _described_to_spec(described):
    if described is None:
        return None
    if isinstance(described, dict) and set(described) == {"shape", "dtype"}:
        return tf.TensorSpec(described["shape"], described["dtype"])
    if isinstance(described, dict):
        return {k: _described_to_spec(v) for k, v in described.items()}
    return [_described_to_spec(v) for v in described]


def _checks(name: str, x, spec: tf.TensorSpec, finite: bool):
    """Graph assertions on one input, each naming the input and spec."""
    expected = [d if d is not None else -1 for d in spec.shape.as_list()]
    described = (
        f"input '{name}' expects shape {tuple(spec.shape.as_list())} "
        f"dtype {spec.dtype.name}"
    )
    # The signature's static shape would let Grappler fold these checks
    # away; an unknown-shape view of the input keeps them at run time.
    x = tf.raw_ops.PlaceholderWithDefault(input=x, shape=None)
    shape = tf.shape(x)
    checks = [
        tf.debugging.assert_equal(
            tf.rank(x), len(expected), message=f"{described}: wrong rank"
        )
    ]
    with tf.control_dependencies(checks):
        padded = tf.concat(
            [
                shape,
                tf.ones(
                    [tf.maximum(len(expected) - tf.size(shape), 0)], tf.int32
                ),
            ],
            0,
        )[: len(expected)]
        known = [i for i, d in enumerate(expected) if d >= 0]
        if known:
            checks.append(
                tf.debugging.assert_equal(
                    tf.gather(padded, known),
                    tf.constant([expected[i] for i in known], tf.int32),
                    message=f"{described}: wrong shape",
                )
            )
        checks.append(
            tf.debugging.assert_greater(
                padded[0], 0, message=f"{described}: empty batch"
            )
        )
        if finite and spec.dtype.is_floating:
            checks.append(
                tf.debugging.assert_equal(
                    tf.reduce_all(tf.math.is_finite(x)),
                    True,
                    message=f"{described}: non-finite values",
                )
            )
    return checks


def _build_module(model, specs: list, names: list[str], structure: Any):
    module = tf.Module()
    module.kb_variables = [v.value for v in unique_variables(model)]

    def to_model_inputs(tensors):
        return tf.nest.pack_sequence_as(structure, tensors)

    # A probe of batch 1; other dynamic sizes (a sequence length) are 1.
    outputs_probe = model(
        to_model_inputs(
            [
                tf.zeros([1, *[d or 1 for d in s.shape.as_list()[1:]]], s.dtype)
                for s in specs
            ]
        ),
        training=False,
    )
    flat_outputs = tf.nest.flatten(outputs_probe)
    output_names = _output_names(model, len(flat_outputs))

    def serve(*tensors):
        checks = []
        for name, x, spec in zip(names, tensors, specs, strict=True):
            checks += _checks(name, x, spec, finite=False)
        with tf.control_dependencies(checks):
            tensors = [
                tf.ensure_shape(tf.identity(x), s.shape)
                for x, s in zip(tensors, specs, strict=True)
            ]
        result = model(to_model_inputs(tensors), training=False)
        return dict(zip(output_names, tf.nest.flatten(result), strict=True))

    def validate(*tensors):
        checks = []
        for name, x, spec in zip(names, tensors, specs, strict=True):
            checks += _checks(name, x, spec, finite=True)
        with tf.control_dependencies(checks):
            return {"valid": tf.constant(True)}

    named = [
        tf.TensorSpec(s.shape, s.dtype, name=n)
        for s, n in zip(specs, names, strict=True)
    ]
    loose = [
        tf.TensorSpec(None, s.dtype, name=n)
        for s, n in zip(specs, names, strict=True)
    ]
    module.serve = tf.function(serve, input_signature=named)
    module.validate = tf.function(validate, input_signature=loose)
    return module, output_names


def export_saved_model(
    model: keras.Model,
    directory: str | os.PathLike,
    input_spec: Any = None,
    *,
    image_serving: ImageServing | None = None,
) -> None:
    """Exports `model` as a SavedModel that also reloads as Keras.

    The write is atomic: a failure leaves an existing export untouched.

    Args:
        model: a built Keras model.
        directory: the SavedModel directory.
        input_spec: input shape(s)/spec(s); None takes them from the
            model (a Functional model's inputs or its build shape).
        image_serving: for an image classifier, how clients' raw images
            become its input (`kerasblocks.io.ImageServing`). Then
            `serving_default` takes uint8 images of any size,
            `serving_bytes` encoded JPEG/PNG strings, and the float
            signature above is named `serving_float`.

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
    from kerasblocks.io.models import (
        _expand_tied_sequentials,
        _tied_sequential_orders,
    )

    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built; build it first.")
    spec = _model_spec(model, input_spec)
    specs = tf.nest.flatten(spec)
    names = _input_names(model, len(specs))
    module, output_names = _build_module(model, specs, names, spec)
    config = keras.saving.serialize_keras_object(model)
    orders = _tied_sequential_orders(model)
    if orders:
        config = _expand_tied_sequentials(config, orders)
    variables = unique_variables(model)
    from kerasblocks.io.weights import relative_path

    weight_map = [
        {
            "path": relative_path(model, v),
            "shape": list(v.shape),
            "dtype": str(v.dtype),
            "key": _VARIABLE_KEY.format(i),
        }
        for i, v in enumerate(variables)
    ]
    serving = {
        "inputs": [
            {"name": n, "shape": s.shape.as_list(), "dtype": s.dtype.name}
            for n, s in zip(names, specs, strict=True)
        ],
        "outputs": output_names,
    }
    signatures = {
        "serving_default": module.serve.get_concrete_function(),
        "validate": module.validate.get_concrete_function(),
    }
    if image_serving is not None:
        signatures["serving_float"] = signatures.pop("serving_default")
        signatures.update(image_signatures(model, image_serving))
        serving["image_serving"] = dataclasses.asdict(image_serving)
    with atomic_path(directory) as temporary:
        tf.saved_model.save(module, temporary, signatures=signatures)
        assets = os.path.join(temporary, ASSETS)
        os.makedirs(assets, exist_ok=True)
        for name, content in (
            (CONFIG_FILE, config),
            (WEIGHT_MAP_FILE, weight_map),
            (SERVING_FILE, serving),
        ):
            with open(os.path.join(assets, name), "w") as f:
                json.dump(content, f, default=_json_default)
        _integrity.seal_directory(
            temporary,
            {
                "format": FORMAT,
                "version": VERSION,
                "keras_version": keras.__version__,
                "tensorflow_version": tf.__version__,
            },
        )


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
        safety.import_own_packages(config)
        problems += safety.config_problems(config)
    return problems


def load_saved_model(
    directory: str, *, trusted: bool = False, compile: bool = True
) -> keras.Model:
    """The Keras model exported to `directory` by `export_saved_model`."""
    from kerasblocks.io.models import _mark_tied_sequentials

    if not os.path.exists(os.path.join(directory, "saved_model.pb")):
        raise CorruptFileError(directory, "no saved_model.pb: not a SavedModel")
    _integrity.verify_directory(directory)
    if not trusted:
        problems = check_saved_model(directory)
        if problems:
            raise UnsafeModelError(directory, problems)
    config = _read_json(directory, CONFIG_FILE)
    weight_map = _read_json(directory, WEIGHT_MAP_FILE)
    if config is not None:
        safety.import_own_packages(config)
    if config is None or weight_map is None:
        raise ValueError(
            f"{directory}: this SavedModel was not exported by kerasblocks, so "
            "it holds no Keras config; serve it with tf.saved_model.load."
        )
    model = keras.saving.deserialize_keras_object(
        _mark_tied_sequentials(config), safe_mode=not trusted
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
    if compile and config.get("compile_config"):
        model.compile_from_config(config["compile_config"])
    return model


class ServingValidator:
    """Checks inputs against an exported model's serving signature.

    Call it with a dict `{input name: array}` (or one array for a
    single-input model); it returns the dict of arrays, or raises
    ValueError naming the input, the expected spec and what it got.
    """

    def __init__(self, inputs: list[dict]):
        self.inputs = inputs

    def __call__(self, values) -> dict[str, np.ndarray]:
        if not isinstance(values, dict):
            if len(self.inputs) != 1:
                keys = [i["name"] for i in self.inputs]
                raise ValueError(f"expected a dict with keys {keys}")
            values = {self.inputs[0]["name"]: values}
        unknown = sorted(set(values) - {i["name"] for i in self.inputs})
        if unknown:
            raise ValueError(f"unknown inputs {unknown}")
        result = {}
        for spec in self.inputs:
            name, shape, dtype = spec["name"], spec["shape"], spec["dtype"]
            expected = f"shape {tuple(shape)} dtype {dtype}"
            if name not in values:
                raise ValueError(
                    f"input '{name}' is missing (expects {expected})"
                )
            array = np.asarray(values[name])
            received = f"shape {array.shape} dtype {array.dtype}"
            where = f"input '{name}' expects {expected}, received {received}"
            if array.dtype.name != dtype:
                raise ValueError(f"{where}: wrong dtype")
            if array.ndim != len(shape):
                raise ValueError(f"{where}: wrong rank")
            if any(
                e is not None and e != r
                for e, r in zip(shape, array.shape, strict=True)
            ):
                raise ValueError(f"{where}: wrong shape")
            if array.shape[0] == 0:
                raise ValueError(f"{where}: empty batch")
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise ValueError(f"{where}: non-finite values")
            result[name] = array
        return result


def serving_validator(directory: str | os.PathLike) -> ServingValidator:
    """A validator for the inputs of the SavedModel in `directory`.

    Example:

    >>> import os, tempfile, numpy as np, zoo, kerasblocks
    >>> path = os.path.join(tempfile.mkdtemp(), "lenet")
    >>> kerasblocks.io.export_saved_model(zoo.create_model("lenet"), path)
    >>> validate = kerasblocks.io.serving_validator(path)
    >>> validate(np.zeros((2, 28, 28, 1), "float32"))["images"].shape
    (2, 28, 28, 1)
    >>> validate(np.zeros((2, 28, 28), "float32"))
    Traceback (most recent call last):
    ...
    ValueError: input 'images' expects shape (None, 28, 28, 1) ...: wrong rank
    """
    directory = os.fspath(directory)
    serving = _read_json(directory, SERVING_FILE)
    if serving is None:
        loaded = tf.saved_model.load(directory)
        signature = loaded.signatures["serving_default"]
        serving = {
            "inputs": [
                {"name": n, "shape": s.shape.as_list(), "dtype": s.dtype.name}
                for n, s in signature.structured_input_signature[1].items()
            ]
        }
    return ServingValidator(serving["inputs"])
