"""LiteRT (`.tflite`) export, float or quantized, and its runner.

`export_litert` converts in a child process (`kerasblocks.io._convert`)
to TFLite builtin ops only, because `ai-edge-litert`, the runtime that
replaces `tf.lite.Interpreter`, carries no TensorFlow (Flex) kernels.

Quantization (`quantize=`):

- None: float32, the reference;
- "float16": float16 weights; half the file, the same CPU time;
- "dynamic_int8": int8 weights, float activations. Slower than float32
  on depthwise (MobileNet-like) networks on x86 CPUs;
- "int8": full-integer. Every op, and the file's inputs and outputs, are
  int8 (token-id inputs stay integer), calibrated on `calibration`. An
  image model's preprocessing (e.g. `Rescaling`) stays inside, so the
  int8 input is the model's own pixel scale quantized with the file's
  (scale, zero point); `run_litert` applies them, and dequantizes the
  outputs. Int8 rather than uint8 input: one convention for every model,
  and the one LiteRT's XNNPACK kernels run natively.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks import choices
from kerasblocks.io import _runtimes
from kerasblocks.io._conversion import run_child

# A run's quantizations, with None for a float file ("none" in a run).
QUANTIZE = (None, *(q for q in choices.QUANTIZE if q != "none"))
SIGNATURE = "serving_default"


def export_litert(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    quantize: str | None = None,
    calibration: Iterable | tf.data.Dataset | None = None,
) -> None:
    """Converts `model` to a LiteRT flatbuffer at `path`, atomically.

    The file has one `serving_default` signature whose inputs carry the
    model's input names (a dict input's keys) with a dynamic batch, and
    whose outputs are `output_0`, `output_1`, ... in the model's order.
    A model with a recurrent layer (`keras.layers.RNN`) gets a batch fixed
    at 1 (sequence length stays dynamic): LiteRT's builtin ops run its
    loop only with a static state shape. Conversion runs in a child
    process; a model with an op LiteRT lacks
    raises `kerasblocks.io.ConversionError` naming the op and the layer,
    and leaves `path` as it was.

    Args:
        model: a built Keras model.
        path: the `.tflite` file to write.
        quantize: None, "float16", "dynamic_int8" or "int8" (see the
            module docstring).
        calibration: for "int8": an iterable of input batches, or a
            `tf.data.Dataset` of inputs or of (inputs, labels). A few
            hundred examples like the ones served are enough.

    Example:

    >>> import os, tempfile, numpy as np, keras, kerasblocks
    >>> inputs = keras.Input((4,), name="x")
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.tflite")
    >>> kerasblocks.io.export_litert(model, path)
    >>> x = np.ones((3, 4), "float32")
    >>> out = kerasblocks.io.run_litert(path, x)
    >>> out.shape, bool(np.allclose(out, model(x), atol=1e-5))
    ((3, 2), True)
    """
    if quantize not in QUANTIZE:
        raise ValueError(
            f"quantize must be one of {QUANTIZE}. Received: {quantize=}"
        )
    if quantize != "int8" and calibration is not None:
        raise ValueError(
            "calibration is used only with quantize='int8'. Received: "
            f"{quantize=}"
        )
    run_child(
        model,
        path,
        "litert",
        quantize=quantize,
        calibration=calibration,
        suffix=".tflite",
    )


_interpreters = _runtimes.FileCache()


def _interpreter(path: str):
    return _interpreters.get(path, _build_interpreter)


def _build_interpreter(path: str):
    from ai_edge_litert.interpreter import Interpreter

    with _quiet_stderr():
        # The runtime announces its XNNPACK delegate on stderr, through C.
        interpreter = Interpreter(
            model_path=path, num_threads=min(os.cpu_count() or 1, 4)
        )
        interpreter.allocate_tensors()
    return interpreter


@contextlib.contextmanager
def _quiet_stderr():
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _quantize(value: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.kind in "iu" and scale and np.asarray(value).dtype.kind == "f":
        info = np.iinfo(dtype)
        value = np.round(np.asarray(value) / scale + zero_point)
        return np.clip(value, info.min, info.max).astype(dtype)
    return np.asarray(value, dtype=dtype)


def _dequantize(value: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return ((value.astype(np.float32) - zero_point) * scale).astype(
            np.float32
        )
    return value


def run_litert(path: str | os.PathLike, inputs: Any):
    """Runs a `.tflite` file with `ai_edge_litert` and returns float
    outputs (dequantized when the file is int8).

    Float inputs are quantized with the file's own (scale, zero point)
    when its inputs are integer, so the same arrays feed a float and an
    int8 export.

    Args:
        path: the `.tflite` file.
        inputs: one array, a dict keyed by input name, or a list of
            arrays in the order of the input names (sorted, as the
            file's signature lists them; a dict-input model's own order).

    Returns:
        One array, or a list of arrays in the model's output order.

    Example:

    >>> import os, tempfile, numpy as np, keras, kerasblocks
    >>> x = keras.Input((4,), name="x")
    >>> heads = [keras.layers.Dense(2)(x), keras.layers.Dense(3)(x)]
    >>> path = os.path.join(tempfile.mkdtemp(), "two_heads.tflite")
    >>> kerasblocks.io.export_litert(keras.Model(x, heads), path)
    >>> [out.shape for out in kerasblocks.io.run_litert(path, np.ones((5, 4)))]
    [(5, 2), (5, 3)]
    """
    path = os.fspath(path)
    interpreter = _interpreter(path)
    signatures = interpreter.get_signature_list()
    if not signatures:
        return _run_without_signature(interpreter, inputs, path)
    key = SIGNATURE if SIGNATURE in signatures else sorted(signatures)[0]
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()
    # A signature lists its inputs by name: for a dict input that is the
    # model's own (Keras flattens dicts in key order).
    names = sorted(details)
    feed = {
        n: _quantize(v, details[n])
        for n, v in _runtimes.by_name(inputs, names, path).items()
    }
    output_details = runner.get_output_details()
    parts = []
    for part in _batches(feed, details):
        results = runner(**part)
        order = sorted(results, key=_output_key)
        parts.append(
            [_dequantize(results[n], output_details[n]) for n in order]
        )
    if len(parts) == 1:
        return _runtimes.outputs(parts[0])
    return _runtimes.outputs(
        [np.concatenate(p) for p in zip(*parts, strict=True)]
    )


def _batches(feed: dict, details: dict) -> list[dict]:
    """`feed` whole, or one example at a time for a file whose batch is
    fixed at 1 (a recurrent model, see `export_litert`)."""
    fixed = all(
        len(d["shape_signature"]) and d["shape_signature"][0] == 1
        for d in details.values()
    )
    count = len(next(iter(feed.values())))
    if not fixed or count <= 1:
        return [feed]
    return [{n: v[i : i + 1] for n, v in feed.items()} for i in range(count)]


def _output_key(name: str):
    number = name.rpartition("_")[2]
    return (0, int(number), "") if number.isdigit() else (1, 0, name)


def _run_without_signature(interpreter, inputs, path):
    details = interpreter.get_input_details()
    feed = _runtimes.by_name(inputs, [d["name"] for d in details], path)
    for detail in details:
        interpreter.resize_tensor_input(
            detail["index"], np.shape(feed[detail["name"]])
        )
    interpreter.allocate_tensors()
    for detail in details:
        interpreter.set_tensor(
            detail["index"], _quantize(feed[detail["name"]], detail)
        )
    interpreter.invoke()
    return _runtimes.outputs(
        [
            _dequantize(interpreter.get_tensor(d["index"]), d)
            for d in interpreter.get_output_details()
        ]
    )
