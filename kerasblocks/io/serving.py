"""Checking inputs against an exported model's serving signature, in
Python, before they reach a server."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from kerasblocks.io.saved_model import SERVING_FILE, _read_json


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
