"""Converting a Keras model in a child process (LiteRT and ONNX).

The parent writes the model's forward pass as a bare SavedModel (one
`serving_default` signature, named inputs, outputs `output_0`, ...) and
the calibration inputs as an `.npz`, then runs `kerasblocks.io._convert`
in a fresh Python: the TFLite converter keeps memory on every call, and a
child gives it all back when it exits. The result replaces the target
file atomically; a failure leaves the old file and raises one
`ConversionError` naming the op and the layer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks._keras_compat import export_lib
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import ConversionError
from kerasblocks.io.saved_model import _keras_signature, _named_specs

FORMAT_NAMES = {"litert": "LiteRT", "onnx": "ONNX"}
PROGRESS_AFTER = 10.0  # seconds of quiet conversion before a progress line
_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def _forward(model, structure):
    def forward(*tensors):
        inputs = tf.nest.pack_sequence_as(structure, list(tensors))
        outputs = tf.nest.flatten(model(inputs, training=False))
        return {f"output_{i}": o for i, o in enumerate(outputs)}

    return forward


def write_forward(model: keras.Model, directory: str) -> dict:
    """Writes the model's inference pass as a SavedModel at `directory`
    and returns what the child needs to know about its signature."""
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built. It must be built before "
            "export."
        )
    signature = _keras_signature(model, None, None)
    specs, names = _named_specs(model, signature)
    archive = export_lib.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        _forward(model, signature[0]),
        [
            tf.TensorSpec(s.shape, s.dtype, name=n)
            for s, n in zip(specs, names, strict=True)
        ],
    )
    archive.write_out(directory, verbose=False)
    return {
        "input_names": names,
        "float_inputs": all(s.dtype.is_floating for s in specs),
    }


def calibration_arrays(
    calibration: Any, structure: Any, names: list[str]
) -> list[np.ndarray]:
    """The calibration inputs as one array per model input.

    Args:
        calibration: an iterable of input batches (an array, or the
            model's input structure), or a `tf.data.Dataset` of inputs
            or of (inputs, labels).
        structure: the model's input structure (a spec nest).
        names: the flat input names.
    """
    if calibration is None:
        raise ValueError(
            "quantize='int8' needs calibration: an iterable of input "
            "batches or a tf.data.Dataset of inputs or (inputs, labels)."
        )
    if isinstance(calibration, tf.data.Dataset):
        calibration = calibration.as_numpy_iterator()
    columns: list[list[np.ndarray]] = [[] for _ in names]
    for element in calibration:
        flat = tf.nest.flatten(element)
        if len(flat) != len(names) and isinstance(element, (tuple, list)):
            flat = tf.nest.flatten(element[0])  # (inputs, labels[, weights])
        elif isinstance(element, dict) and len(names) > 1:
            flat = tf.nest.flatten(
                tf.nest.pack_sequence_as(structure, [element[n] for n in names])
            )
        if len(flat) != len(names):
            raise ValueError(
                f"A calibration element holds {len(flat)} arrays; the "
                f"model takes {len(names)} inputs ({', '.join(names)})."
            )
        for column, value in zip(columns, flat, strict=True):
            column.append(np.asarray(value))
    if not columns[0]:
        raise ValueError("The calibration data is empty.")
    return [np.concatenate(c, axis=0) for c in columns]


def run_child(
    model: keras.Model,
    path: str | os.PathLike,
    kind: str,
    *,
    quantize: str | None = None,
    calibration: Iterable | tf.data.Dataset | None = None,
    suffix: str,
) -> None:
    """Converts `model` to `kind` ("litert" or "onnx") at `path` in a
    child process, atomically."""
    path = os.fspath(path)
    with tempfile.TemporaryDirectory(prefix="kb-convert-") as work:
        saved = os.path.join(work, "saved_model")
        request = write_forward(model, saved)
        if quantize == "int8":
            arrays = calibration_arrays(
                calibration,
                _keras_signature(model, None, None)[0],
                request["input_names"],
            )
            request["calibration"] = os.path.join(work, "calibration.npz")
            np.savez(
                request["calibration"],
                **{str(i): a for i, a in enumerate(arrays)},
            )
        request.update(
            saved_model=saved,
            format=kind,
            quantize=quantize,
            error=os.path.join(work, "error.txt"),
        )
        with atomic_path(path, suffix=suffix) as temporary:
            request["output"] = temporary
            _run(request, work, model.name, path, kind)


def _run(request: dict, work: str, name: str, path: str, kind: str) -> None:
    request_file = os.path.join(work, "request.json")
    with open(request_file, "w") as f:
        json.dump(request, f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_ROOT, env.get("PYTHONPATH")) if p
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log = os.path.join(work, "child.log")
    started = time.monotonic()
    shown = PROGRESS_AFTER
    with open(log, "wb") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "kerasblocks.io._convert", request_file],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            while child.poll() is None:
                time.sleep(0.2)
                elapsed = time.monotonic() - started
                if elapsed >= shown:
                    print(
                        f"Converting '{name}' to {FORMAT_NAMES[kind]} "
                        f"({request['quantize'] or 'float32'}): "
                        f"{elapsed:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                    shown += PROGRESS_AFTER
        except BaseException:
            child.kill()
            child.wait()
            raise
    if child.returncode == 0:
        return
    if os.path.exists(request["error"]):
        with open(request["error"]) as f:
            problem = f.read().strip()
    else:
        with open(log, errors="replace") as f:
            lines = [x for x in f.read().splitlines() if x.strip()]
        problem = (
            f"the converter process ended with code {child.returncode}"
            + (f": {lines[-1].strip()[:300]}" if lines else "")
        )
    raise ConversionError(path, FORMAT_NAMES[kind], name, problem)
