"""The shared test harness: one call checks a layer or model end to end.

`run_layer_test` checks, for one layer (or model) and one input:

1. the output shape (and dtype) and that every output is finite;
2. `get_config` -> `from_config` gives an equal config and the same
   variable shapes;
3. eager, `tf.function` and forced XLA (`jit_compile=True`) outputs agree;
4. one training step reaches every trainable variable with a non-zero
   gradient and moves it;
5. `.keras` and legacy `.h5` round trips (through `kerasblocks.io` and,
   where Keras can, through plain `keras.saving.load_model` with no
   `custom_objects`) give equal outputs.

The project's tests call it for every public block and zoo model, so a
per-layer test stays a few lines long. `oversized_png` and `oversized_jpeg`
make the hostile images the limits are tested with.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks import _keras_compat
from kerasblocks import io as kb_io
from kerasblocks._comparisons import (
    assert_close,
    max_abs_diff,
    random_inputs,
    shapes_match,
    to_numpy,
)
from kerasblocks._keras_compat import models_functional
from kerasblocks.params import unique_variables

SAVE_FORMATS = ("keras", "h5")


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """A tiny conformance spec: how to build a block and what to feed it.

    Attributes:
        factory: returns a fresh instance.
        input_shape: shape(s) of the seeded random input.
        output_shape: the expected output shape(s).
        input_dtype: dtype of the input ("int32" for token ids).
        atol: tolerance of the eager/graph/XLA comparison.
        allow_no_gradient: variable path patterns excused from the
            training-step gradient check.
    """

    factory: Callable[[], keras.layers.Layer]
    input_shape: Any
    output_shape: Any = None
    input_dtype: str = "float32"
    atol: float = 1e-5
    allow_no_gradient: tuple[str, ...] = ()


@dataclasses.dataclass
class LayerTestResult:
    """What `run_layer_test` computed, for further assertions."""

    layer: keras.layers.Layer
    inputs: Any
    outputs: Any
    max_parity_error: dict[str, float]
    reloaded: dict[str, keras.layers.Layer]
    gradients: dict[str, float]
    clone: keras.layers.Layer | None = None


def _accepts_training(layer) -> bool:
    return _keras_compat.call_has_training_arg(layer)


def _call(layer, inputs, training: bool):
    if _accepts_training(layer):
        return layer(inputs, training=training)
    return layer(inputs)


def _as_model(layer, inputs) -> keras.Model:
    """A model that can be saved whole: the layer itself if it is a
    model, else a Functional model around it."""
    if isinstance(layer, keras.Model):
        return layer

    def spec(t):
        return keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype.name)

    symbolic = keras.tree.map_structure(spec, inputs)
    return keras.Model(symbolic, layer(symbolic), name=f"{layer.name}_model")


def _strip_names(config):
    if isinstance(config, dict):
        return {k: _strip_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, list):
        return [_strip_names(v) for v in config]
    return config


def check_config_round_trip(layer, inputs) -> keras.layers.Layer:
    """`from_config(get_config())` rebuilds an equal layer; returns it."""
    config = layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(serialized)
    if type(clone) is not type(layer):
        raise AssertionError(
            f"deserialized a {type(clone).__name__}, expected "
            f"{type(layer).__name__}"
        )
    if not clone.built:
        _call(clone, inputs, training=False)
    clone_config = clone.get_config()
    if _strip_names(clone_config) != _strip_names(config):
        raise AssertionError(
            f"config changed in a round trip:\n{config}\n!=\n{clone_config}"
        )
    shapes = [tuple(v.shape) for v in unique_variables(layer)]
    clone_shapes = [tuple(v.shape) for v in unique_variables(clone)]
    if sorted(shapes) != sorted(clone_shapes):
        raise AssertionError(
            f"variable shapes changed in a config round trip: {shapes} != "
            f"{clone_shapes}"
        )
    return clone


def check_compiled_parity(layer, inputs, *, atol: float, rtol: float):
    """Eager vs `tf.function` vs forced XLA; returns the max differences."""
    eager = _call(layer, inputs, training=False)
    graph = tf.function(lambda x: _call(layer, x, training=False))(inputs)
    xla = tf.function(
        lambda x: _call(layer, x, training=False), jit_compile=True
    )(inputs)
    assert_close(
        graph, eager, atol=atol, rtol=rtol, what="tf.function vs eager"
    )
    assert_close(xla, eager, atol=atol, rtol=rtol, what="XLA vs eager")
    return eager, {
        "graph": max_abs_diff(graph, eager),
        "xla": max_abs_diff(xla, eager),
    }


def check_training_step(
    layer,
    inputs,
    *,
    seed: int = 0,
    learning_rate: float = 1e-2,
    allow_no_gradient: Sequence[str] = (),
) -> dict[str, float]:
    """One SGD step on a random linear loss must give every trainable
    variable a non-zero, finite gradient and change its value.

    Args:
        allow_no_gradient: shell patterns of variable paths that may get a
            zero or no gradient (say why where you use it).

    Returns:
        `{path: gradient norm}`.
    """
    variables = [v for v in unique_variables(layer) if v.trainable]
    if not variables:
        return {}
    with tf.GradientTape() as tape:
        outputs = _call(layer, inputs, training=True)
        flat = [tf.cast(t, tf.float32) for t in keras.tree.flatten(outputs)]
        rng = np.random.default_rng(seed)
        loss = tf.add_n(
            [
                tf.reduce_sum(
                    t * tf.constant(rng.uniform(0.5, 1.5, t.shape), tf.float32)
                )
                for t in flat
            ]
        )
    grads = tape.gradient(loss, [v.value for v in variables])
    norms, problems = {}, []
    before = [np.array(v.numpy()) for v in variables]
    for variable, grad in zip(variables, grads, strict=True):
        excused = any(
            fnmatch.fnmatchcase(variable.path, p) for p in allow_no_gradient
        )
        if grad is None:
            if not excused:
                problems.append(f"{variable.path}: no gradient")
            continue
        grad = tf.convert_to_tensor(grad)
        norm = float(tf.norm(tf.cast(grad, tf.float32)))
        norms[variable.path] = norm
        if not np.isfinite(norm):
            problems.append(f"{variable.path}: non-finite gradient")
        elif norm == 0.0 and not excused:
            problems.append(f"{variable.path}: zero gradient")
        variable.assign(
            variable - learning_rate * tf.cast(grad, variable.dtype)
        )
    for variable, old in zip(variables, before, strict=True):
        excused = any(
            fnmatch.fnmatchcase(variable.path, p) for p in allow_no_gradient
        )
        if not excused and np.array_equal(old, variable.numpy()):
            problems.append(f"{variable.path}: unchanged by the step")
    if problems:
        raise AssertionError("training step: " + "; ".join(problems))
    return norms


def check_save_round_trips(
    layer,
    inputs,
    expected,
    *,
    formats: Sequence[str] = SAVE_FORMATS,
    plain_keras: bool | Sequence[str] = True,
    directory: str | None = None,
    atol: float = 1e-6,
    rtol: float = 1e-6,
) -> dict[str, keras.layers.Layer]:
    """Saves and reloads in each format; outputs must stay equal.

    Args:
        plain_keras: also reload with plain `keras.saving.load_model`
            (True: in every format; or the formats to do it for).
    """
    plain = SAVE_FORMATS if plain_keras is True else tuple(plain_keras or ())
    model = _as_model(layer, inputs)
    reloaded = {}
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        for kind in formats:
            if kind not in SAVE_FORMATS:
                raise ValueError(
                    f"Unknown format {kind!r}; expected one of {SAVE_FORMATS}"
                )
            path = os.path.join(scratch, f"model.{kind}")
            kb_io.save_model(model, path)
            loaders: list[tuple[str, Callable]] = [
                ("kerasblocks.io", lambda p: kb_io.load_model(p, compile=False))
            ]
            # Keras's legacy HDF5 loader cannot rebuild a subclassed model
            # (it never calls build_from_config); kerasblocks.io can.
            functional = isinstance(
                model, (models_functional.Functional, keras.Sequential)
            )
            if kind in plain and (kind == "keras" or functional):
                loaders.append(
                    (
                        "keras",
                        lambda p: keras.saving.load_model(p, compile=False),
                    )
                )
            for loader_name, load in loaders:
                restored = load(path)
                if type(restored) is not type(model):
                    raise AssertionError(
                        f"{kind} via {loader_name}: got "
                        f"{type(restored).__name__}, expected "
                        f"{type(model).__name__}"
                    )
                output = _call(restored, inputs, training=False)
                assert_close(
                    output,
                    expected,
                    atol=atol,
                    rtol=rtol,
                    what=f"{kind} round trip via {loader_name}",
                )
                reloaded[f"{kind}/{loader_name}"] = restored
    return reloaded


def run_layer_test(
    layer: keras.layers.Layer | Callable[[], keras.layers.Layer],
    inputs: Any = None,
    *,
    input_shape: Any = None,
    input_dtype: str = "float32",
    expected_output_shape: Any = None,
    expected_output_dtype: str | None = None,
    seed: int = 0,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    xla: bool = True,
    training: bool = True,
    allow_no_gradient: Sequence[str] = (),
    save_formats: Sequence[str] = SAVE_FORMATS,
    plain_keras: bool | Sequence[str] = True,
) -> LayerTestResult:
    """Checks a layer or model end to end; raises AssertionError on a
    failure, saying which check failed and by how much.

    Args:
        layer: the layer, or a zero-argument factory returning it.
        inputs: a tensor (or nest) to call it on; or give `input_shape`.
        input_shape: shape(s) for seeded random inputs (None -> 2).
        input_dtype: dtype of random inputs.
        expected_output_shape: the output shape(s) to assert (None
            matches any size).
        expected_output_dtype: the output dtype to assert.
        seed: seeds the inputs and the training-step loss.
        atol, rtol: tolerance of the eager/graph/XLA comparison.
        xla: include the forced-XLA comparison.
        training: include the training-step check.
        allow_no_gradient: variable path patterns excused from the
            gradient check.
        save_formats: formats to round-trip ("keras", "h5").
        plain_keras: also reload with plain `keras.saving.load_model`
            (True: in every format; or the formats to do it for).

    Example:

    >>> import kerasblocks
    >>> from kerasblocks.testing import run_layer_test
    >>> result = run_layer_test(
    ...     kerasblocks.layers.ScratchDense(3), input_shape=(4, 5),
    ...     expected_output_shape=(4, 3))
    >>> sorted(result.reloaded)[:2]
    ['h5/keras', 'h5/kerasblocks.io']
    """
    keras.utils.set_random_seed(seed)
    if not isinstance(layer, keras.layers.Layer):
        layer = layer()
    if inputs is None:
        if input_shape is None:
            raise ValueError("Give inputs or input_shape.")
        inputs = random_inputs(input_shape, seed=seed, dtype=input_dtype)
    outputs = _call(layer, inputs, training=False)
    flat_outputs = keras.tree.flatten(to_numpy(outputs))
    for index, array in enumerate(flat_outputs):
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise AssertionError(f"output {index} has non-finite values")
    if expected_output_shape is not None:
        actual = keras.tree.map_structure(lambda t: tuple(t.shape), outputs)
        expected = keras.tree.map_shape_structure(tuple, expected_output_shape)
        if not shapes_match(actual, expected):
            raise AssertionError(f"output shape {actual}, expected {expected}")
    if expected_output_dtype is not None:
        for tensor in keras.tree.flatten(outputs):
            if keras.backend.standardize_dtype(tensor.dtype) != (
                expected_output_dtype
            ):
                raise AssertionError(
                    f"output dtype {tensor.dtype}, expected "
                    f"{expected_output_dtype}"
                )
    clone = check_config_round_trip(layer, inputs)
    parity = {}
    if xla:
        outputs, parity = check_compiled_parity(
            layer, inputs, atol=atol, rtol=rtol
        )
    reloaded = {}
    if save_formats:
        reloaded = check_save_round_trips(
            layer,
            inputs,
            outputs,
            formats=save_formats,
            plain_keras=plain_keras,
        )
    gradients = {}
    if training:
        gradients = check_training_step(
            layer, inputs, seed=seed, allow_no_gradient=allow_no_gradient
        )
    return LayerTestResult(
        layer=layer,
        inputs=inputs,
        outputs=outputs,
        max_parity_error=parity,
        reloaded=reloaded,
        gradients=gradients,
        clone=clone,
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def oversized_png(height: int, width: int, rows: int = 500) -> bytes:
    """A whole, valid grayscale PNG of `height` x `width` zeros, which
    compresses about 1000:1 (40000x40000 is ~1.6 MB for 1.6 GB of
    pixels): what a hostile client or file sends. `height` must be a
    multiple of `rows`.

    Made in well under a second: a block of `rows` rows is compressed
    once and, after a full flush (which resets the compressor), repeated.

    Example:

    >>> png = oversized_png(1000, 600)
    >>> tf.io.decode_png(png).shape
    TensorShape([1000, 600, 1])
    """
    if height % rows:
        raise ValueError(f"height must be a multiple of {rows}: {height}")
    raw = b"\0" * ((width + 1) * rows)  # each row: filter byte, pixels
    compressor = zlib.compressobj(9)
    first = compressor.compress(raw) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(raw) + compressor.flush(zlib.Z_FULL_FLUSH)
    # A final empty fixed-Huffman block, then the Adler-32 of all-zero
    # data: a = 1, b = the length (mod 65521).
    length = (width + 1) * height
    end = b"\x03\x00" + struct.pack(">I", (length % 65521) << 16 | 1)
    stream = first + again * (height // rows - 1) + end
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", stream)
        + _png_chunk(b"IEND", b"")
    )


def oversized_jpeg(height: int, width: int) -> bytes:
    """A small JPEG whose frame header declares `height` x `width` (at
    most 65535 each): decoders allocate that before reading the data.

    Example:

    >>> tf.image.extract_jpeg_shape(oversized_jpeg(30000, 20000)).numpy()
    array([30000, 20000,     3], dtype=int32)
    """
    jpeg = tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy()
    at = jpeg.index(b"\xff\xc0") + 5  # SOF0: length, precision, then H, W
    return jpeg[:at] + struct.pack(">HH", height, width) + jpeg[at + 4 :]
