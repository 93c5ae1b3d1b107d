"""Deprecated names for the LiteRT export, kept for one release.

`export_tflite` and `run_tflite` are `kerasblocks.io.export_litert` and
`kerasblocks.io.run_litert` under their old names and calling
conventions; they run with `ai-edge-litert`, not the deprecated
`tf.lite.Interpreter`. Use the new names.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from kerasblocks.io.litert import export_litert, run_litert


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    input_spec: Any = None,
    *,
    optimize: bool = False,
) -> None:
    """Deprecated: `export_litert(model, path)`; `optimize=True` is
    `quantize="dynamic_int8"`. `input_spec` must be None (the file takes
    the model's own input shapes).

    Example:

    >>> import os, tempfile, numpy as np, keras, kerasblocks
    >>> inputs = keras.Input((4,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.tflite")
    >>> kerasblocks.io.export_tflite(model, path)
    >>> kerasblocks.io.run_tflite(path, np.ones((3, 4), "float32")).shape
    (3, 2)
    """
    if input_spec is not None:
        raise ValueError(
            "export_tflite no longer takes input_spec; the file takes the "
            "model's input shapes with a dynamic batch. Use "
            "kerasblocks.io.export_litert."
        )
    export_litert(model, path, quantize="dynamic_int8" if optimize else None)


def run_tflite(path: str | os.PathLike, *inputs: np.ndarray):
    """Deprecated: `run_litert(path, list(inputs))` (inputs in the
    model's order)."""
    return run_litert(path, list(inputs))
