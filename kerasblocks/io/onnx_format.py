"""ONNX export (through tf2onnx, in a child process) and its runner.

The file's inputs carry the model's input names (a dict input's keys)
with a dynamic batch; its outputs come in the model's order. After
converting, `export_onnx` loads the file with onnxruntime and runs it
once, so a file that onnxruntime refuses is never left behind.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import keras
import numpy as np

from kerasblocks.io._conversion import run_child
from kerasblocks.io.errors import ConversionError
from kerasblocks.io.litert import _by_name, _outputs


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
    import onnxruntime

    path = os.fspath(path)
    run_child(model, path, "onnx", suffix=".onnx")
    try:
        onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - one line for the caller
        os.remove(path)
        raise ConversionError(
            path, "ONNX", model.name, f"onnxruntime refuses it: {error}"
        ) from None


_CACHE_SIZE = 4
_sessions: collections.OrderedDict = collections.OrderedDict()


def _session(path: str):
    import onnxruntime

    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key in _sessions:
        _sessions.move_to_end(key)
        return _sessions[key]
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"]
    )
    _sessions[key] = session
    while len(_sessions) > _CACHE_SIZE:
        _sessions.popitem(last=False)
    return session


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
    >>> inputs = keras.Input((4,), name="x")
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> kerasblocks.io.export_onnx(model, path)
    >>> kerasblocks.io.run_onnx(path, {"x": np.ones((5, 4))}).shape
    (5, 2)
    """
    path = os.fspath(path)
    session = _session(path)
    arguments = session.get_inputs()
    names = [a.name for a in arguments]
    feed = _by_name(inputs, names, path)
    feed = {
        a.name: np.asarray(feed[a.name], dtype=_NUMPY_TYPES.get(a.type))
        for a in arguments
    }
    return _outputs(session.run(None, feed))
