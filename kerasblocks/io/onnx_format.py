"""ONNX export (through tf2onnx, in a child process) and its runner.

The file's inputs carry the model's input names (a dict input's keys)
with a dynamic batch; its outputs come in the model's order. After
converting, the child loads the file with onnxruntime, so a file that
onnxruntime refuses never replaces anything.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from kerasblocks.io import _runtimes
from kerasblocks.io._conversion import run_child


def export_onnx(model: keras.Model, path: str | os.PathLike) -> None:
    """Converts `model` to an ONNX file at `path`, atomically, checked by
    running it with onnxruntime.

    A model with an op tf2onnx cannot express raises
    `kerasblocks.io.ConversionError` naming the op and the layer, and
    leaves `path` as it was.

    Args:
        model: a built Keras model.
        path: the `.onnx` file to write.

    Example:

    >>> import os, tempfile, numpy as np, keras, kerasblocks
    >>> inputs = keras.Input((4,), name="x")
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> kerasblocks.io.export_onnx(model, path)
    >>> x = np.ones((3, 4), "float32")
    >>> out = kerasblocks.io.run_onnx(path, x)
    >>> out.shape, bool(np.allclose(out, model(x), atol=1e-5))
    ((3, 2), True)
    """
    run_child(model, os.fspath(path), "onnx", suffix=".onnx")


_sessions = _runtimes.FileCache()


def _session(path: str):
    return _sessions.get(path, _build_session)


def _build_session(path: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"]
    )


_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def run_onnx(path: str | os.PathLike, inputs: Any):
    """Runs an `.onnx` file with onnxruntime (CPU).

    Args:
        path: the `.onnx` file.
        inputs: one array, a list of arrays in the model's input order,
            or a dict keyed by input name.

    Returns:
        One array, or a list of arrays in the model's output order.

    Example:

    >>> import os, tempfile, numpy as np, keras, kerasblocks
    >>> a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    >>> model = keras.Model({"a": a, "b": b}, keras.layers.Add()([a, b]))
    >>> path = os.path.join(tempfile.mkdtemp(), "sum.onnx")
    >>> kerasblocks.io.export_onnx(model, path)
    >>> feed = {"a": np.ones((2, 4)), "b": np.full((2, 4), 2.0)}
    >>> kerasblocks.io.run_onnx(path, feed)[0].tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    path = os.fspath(path)
    session = _session(path)
    arguments = session.get_inputs()
    names = [a.name for a in arguments]
    feed = _runtimes.by_name(inputs, names, path)
    feed = {
        a.name: np.asarray(feed[a.name], dtype=_NUMPY_TYPES.get(a.type))
        for a in arguments
    }
    return _runtimes.outputs(session.run(None, feed))
