"""TF Serving's warm-up requests for a SavedModel, and its version layout.

TF Serving loads `<base>/<version>/saved_model.pb` and, before it
answers, replays the `PredictionLog` records of
`<version>/assets.extra/tf_serving_warmup_requests` so that the first
client does not pay for graph building. The records are written with
`tensorflow-serving-api`'s own protos (the `serving` extra); without
that package the file is skipped with one line.
"""

from __future__ import annotations

import math
import os
import re
import sys

import numpy as np
import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def next_version(base: str | os.PathLike) -> int:
    """The next TF Serving version number under `base`: one more than
    the largest numbered directory there (1 for none).

    Example:

    >>> import os, tempfile
    >>> base = tempfile.mkdtemp()
    >>> next_version(base)
    1
    >>> os.makedirs(os.path.join(base, "7"))
    >>> next_version(base)
    8
    """
    try:
        entries = os.listdir(base)
    except FileNotFoundError:
        return 1
    numbers = [
        int(e)
        for e in entries
        if re.fullmatch(r"\d+", e) and os.path.isdir(os.path.join(base, e))
    ]
    return max(numbers, default=0) + 1


def warmup_inputs(
    specs: dict[str, tf.TensorSpec], max_pixels: int | None = None
) -> dict[str, np.ndarray]:
    """One request's inputs for a signature: batch 1, every unknown
    dimension 1 (images 1 pixel would be resized; a uint8 image signature
    gets a mid-grey 32x32 image instead, smaller when the signature's
    `max_pixels` would refuse that)."""
    side = min(32, math.isqrt(max_pixels)) if max_pixels else 32
    inputs = {}
    for name, spec in specs.items():
        shape = [1 if d is None else d for d in spec.shape.as_list()]
        if spec.dtype == tf.uint8 and len(shape) == 4:
            shape = [1, *(side if d is None else d for d in spec.shape[1:3])]
            shape.append(spec.shape[3] or 3)
            inputs[name] = np.full(shape, 128, np.uint8)
        else:
            inputs[name] = np.zeros(shape, spec.dtype.as_numpy_dtype)
    return inputs


def write_warmup_requests(
    directory: str | os.PathLike,
    inputs: dict[str, np.ndarray],
    *,
    signature_name: str = "serving_default",
    model_name: str = "model",
) -> str | None:
    """Writes `assets.extra/tf_serving_warmup_requests` under a SavedModel
    `directory`: one `PredictionLog` whose request calls `signature_name`
    with `inputs`. Returns the file's path, or None (with one line on
    stderr) when `tensorflow-serving-api` is not installed.
    """
    try:
        from tensorflow_serving.apis import (
            predict_pb2,
            prediction_log_pb2,
        )
    except ImportError:
        print(
            "kerasblocks: tensorflow-serving-api is not installed; the "
            "SavedModel has no TF Serving warm-up requests (pip install "
            "'kerasblocks[serving]').",
            file=sys.stderr,
        )
        return None
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    path = os.path.join(os.fspath(directory), WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(log.SerializeToString())
    return path
