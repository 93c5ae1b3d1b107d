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

from kerasblocks._keras_compat import export_lib, flatten_layers
from kerasblocks.io._atomic import atomic_path, temporary_sibling
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


def write_forward(
    model: keras.Model, directory: str, *, batch_size: int | None = None
) -> dict:
    """Writes the model's inference pass as a SavedModel at `directory`
    and returns what the child needs to know about its signature.

    `batch_size` fixes the signature's batch (None: dynamic)."""
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
            tf.TensorSpec(
                [batch_size, *s.shape[1:]] if s.shape.rank else s.shape,
                s.dtype,
                name=n,
            )
            for s, n in zip(specs, names, strict=True)
        ],
    )
    archive.write_out(directory, verbose=False)
    return {
        "layer_names": [layer.name for layer in flatten_layers(model)],
        "input_names": names,
        "float_inputs": all(s.dtype.is_floating for s in specs),
    }


def litert_batch_size(model: keras.Model) -> int | None:
    """1 for a model with a recurrent layer, else None (dynamic).

    The LiteRT converter lowers a recurrent loop to builtin ops only when
    the loop's state has a static shape: with a dynamic batch it keeps
    `TensorList` ops, which `ai-edge-litert` cannot run. Such a file takes
    one example per call (any sequence length); `run_litert` feeds it a
    batch one example at a time.
    """
    recurrent = any(
        isinstance(layer, keras.layers.RNN) for layer in flatten_layers(model)
    )
    return 1 if recurrent else None


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
    error = convert_many([(model, path, kind, quantize, calibration)])[0]
    if error is not None:
        raise error


def convert_many(jobs: list[tuple]) -> list[ConversionError | None]:
    """Runs several conversions in one child process (one TensorFlow
    import): each job is (model, path, kind, quantize, calibration).

    Jobs of one model share its SavedModel (unless LiteRT needs a fixed
    batch, `litert_batch_size`). Returns one `ConversionError` or None
    per job; each file that converted replaces its path atomically, the
    others are untouched.
    """
    with tempfile.TemporaryDirectory(prefix="kb-convert-") as work:
        requests = []
        saved: dict[tuple, dict] = {}  # (model, batch) -> its SavedModel
        for number, (model, path, kind, quantize, calibration) in enumerate(
            jobs
        ):
            batch = litert_batch_size(model) if kind == "litert" else None
            key = (id(model), batch)
            if key not in saved:
                folder = os.path.join(work, f"saved_{len(saved)}")
                saved[key] = write_forward(model, folder, batch_size=batch)
                saved[key]["saved_model"] = folder
            request = dict(saved[key])
            if quantize == "int8":
                request["calibration"] = os.path.join(work, f"{number}.npz")
                _write_calibration(
                    request["calibration"], model, calibration, request
                )
            path = os.path.abspath(os.fspath(path))
            request.update(
                format=kind,
                quantize=quantize,
                error=os.path.join(work, f"{number}.error"),
                model_name=model.name,
                path=path,
                output=temporary_sibling(path, SUFFIXES[kind]),
            )
            requests.append(request)
        try:
            _run_all(requests, work)
            return [_finish(r) for r in requests]
        finally:
            for request in requests:
                if os.path.exists(request["output"]):
                    os.remove(request["output"])


def _write_calibration(path, model, calibration, request) -> None:
    arrays = calibration_arrays(
        calibration,
        _keras_signature(model, None, None)[0],
        request["input_names"],
    )
    np.savez(path, **{str(i): a for i, a in enumerate(arrays)})


SUFFIXES = {"litert": ".tflite", "onnx": ".onnx"}


def _run_all(requests: list[dict], work: str) -> None:
    """Runs the child on `requests`; after a job that failed (or killed
    its child), a fresh child takes the jobs after it."""
    start = 0
    while start < len(requests):
        code, log = _run(requests[start:], work)
        if code == 0:
            return
        try:
            with open(os.path.join(work, "request.json.progress")) as f:
                stopped = start + int(f.read() or 0)
        except (OSError, ValueError):
            stopped = start
        requests[stopped]["exit"] = (code, log)
        start = stopped + 1


def _finish(request: dict) -> ConversionError | None:
    kind = FORMAT_NAMES[request["format"]]
    if os.path.exists(request["error"]):
        with open(request["error"]) as f:
            problem = f.read().strip()
    elif not os.path.exists(request["output"]):
        code, log = request.get("exit", (None, ""))
        problem = f"the converter process ended with code {code}" + (
            f": {log}" if log else ""
        )
    else:
        with atomic_path(request["path"], SUFFIXES[request["format"]]) as t:
            os.replace(request["output"], t)
        return None
    return ConversionError(
        request["path"], kind, request["model_name"], problem
    )


def _done(request_file: str) -> str:
    try:
        with open(request_file + ".progress") as f:
            return f"{int(f.read() or 0)} of "
    except (OSError, ValueError):
        return "0 of "


def _run(requests: list[dict], work: str) -> tuple[int, str]:
    """Runs the child on `requests`; returns its exit code and the last
    line it printed."""
    request_file = os.path.join(work, "request.json")
    with open(request_file, "w") as f:
        json.dump(requests, f)
    if os.path.exists(request_file + ".progress"):
        os.remove(request_file + ".progress")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_ROOT, env.get("PYTHONPATH")) if p
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log = os.path.join(work, "child.log")
    started = time.monotonic()
    shown = PROGRESS_AFTER
    what = ", ".join(
        f"'{r['model_name']}' to {FORMAT_NAMES[r['format']]} "
        f"({r['quantize'] or 'float32'})"
        for r in requests[:3]
    ) + (f" and {len(requests) - 3} more" if len(requests) > 3 else "")
    with open(log, "wb") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "kerasblocks.io._convert", request_file],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            while child.poll() is None:
                time.sleep(0.1)
                elapsed = time.monotonic() - started
                if elapsed >= shown:
                    print(
                        f"Converting {what}: {_done(request_file)}"
                        f"{len(requests)} done, {elapsed:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                    shown += PROGRESS_AFTER
        except BaseException:
            child.kill()
            child.wait()
            raise
    with open(log, errors="replace") as f:
        lines = [x for x in f.read().splitlines() if x.strip()]
    return child.returncode, lines[-1].strip()[:300] if lines else ""
