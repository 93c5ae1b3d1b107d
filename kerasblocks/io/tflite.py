"""TFLite export, and running the result for a parity check."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.saved_model import model_spec


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    input_spec: Any = None,
    *,
    optimize: bool = False,
) -> None:
    """Converts `model` to a TFLite flatbuffer at `path` (atomically).

    The batch dimension stays dynamic (resize the interpreter's input to
    the batch you feed). Ops TFLite lacks fall back to TensorFlow ops
    (Flex), which the full `tf.lite.Interpreter` runs.

    Args:
        model: a built Keras model.
        path: the `.tflite` file to write.
        input_spec: input shape(s); None takes them from the model.
        optimize: apply TFLite's default (weight quantizing) optimization;
            outputs then differ slightly.

    Example:

    >>> import os, tempfile, numpy as np, zoo, kerasblocks
    >>> model = zoo.create_model("lenet")
    >>> path = os.path.join(tempfile.mkdtemp(), "lenet.tflite")
    >>> kerasblocks.io.export_tflite(model, path)
    >>> x = np.zeros((2, 28, 28, 1), "float32")
    >>> out = kerasblocks.io.run_tflite(path, x)
    >>> out.shape, bool(np.allclose(out, model(x), atol=1e-5))
    ((2, 10), True)
    """
    spec = model_spec(model, input_spec)
    specs = tf.nest.flatten(spec)

    def forward(*tensors):
        return model(
            tf.nest.pack_sequence_as(spec, list(tensors)), training=False
        )

    function = tf.function(forward, input_signature=specs)
    # Frozen to constants: left as resource variables, the converter keeps
    # READ_VARIABLE ops whose variables the interpreter never initializes.
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    if optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()
    with atomic_path(path, suffix=".tflite") as temporary:
        with open(temporary, "wb") as f:
            f.write(flatbuffer)


def run_tflite(path: str | os.PathLike, *inputs: np.ndarray):
    """Runs a `.tflite` file on NumPy inputs (in signature order) and
    returns its output(s) as NumPy arrays."""
    interpreter = tf.lite.Interpreter(model_path=os.fspath(path))
    details = interpreter.get_input_details()
    if len(details) != len(inputs):
        raise ValueError(
            f"{path} takes {len(details)} inputs. Received {len(inputs)}."
        )
    for detail, value in zip(details, inputs, strict=True):
        interpreter.resize_tensor_input(detail["index"], np.shape(value))
    interpreter.allocate_tensors()
    for detail, value in zip(details, inputs, strict=True):
        interpreter.set_tensor(
            detail["index"], np.asarray(value, dtype=detail["dtype"])
        )
    interpreter.invoke()
    outputs = [
        interpreter.get_tensor(d["index"])
        for d in interpreter.get_output_details()
    ]
    return outputs[0] if len(outputs) == 1 else outputs
