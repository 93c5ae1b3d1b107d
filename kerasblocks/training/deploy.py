"""A run's exports for deployment, each checked in its own runtime.

`export_checked` writes the formats a run asks for under
`OUT_DIR/export/`:

- `saved_model/<N>/`: TF Serving's layout, N one more than the last
  export of the run, with warm-up requests for `serving_default`;
- `model.keras`, `model.h5`: the Keras model;
- `model.tflite` (LiteRT, float or quantized) and `model.onnx`;

then runs each on the validation split and writes `deploy_report.json`:
per format the file and its size, the largest absolute difference from
the Keras model, the top-1 agreement with it and, for int8, the accuracy
of both. A quantized LiteRT file whose agreement is below
`min_agreement` is not kept (the report is); `export_checked` then
raises `AgreementError` after writing the report.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks import io as kb_io
from kerasblocks._keras_compat import flatten_layers
from kerasblocks.choices import FORMAT_ALIASES as ALIASES
from kerasblocks.choices import FORMATS, QUANTIZE
from kerasblocks.io import _atomic, serving_warmup
from kerasblocks.training.errors import UserInputError

FILE_NAMES = {
    "keras": "model.keras",
    "h5": "model.h5",
    "litert": "model.tflite",
    "onnx": "model.onnx",
}
REPORT_FILE = "deploy_report.json"
# Files that record an image model's convention inside (a SavedModel's
# serving.json has it from export_saved_model; .h5 has no place for it).
_CARRIES_METADATA = ("keras", "litert", "onnx")
MAX_CHECK_EXAMPLES = 2000  # of the validation split, for the report


class AgreementError(UserInputError):
    """A quantized export disagrees with the Keras model too often."""


@dataclasses.dataclass
class DeployOptions:
    """How to quantize and check the deployment formats.

    Args:
        quantize: the LiteRT file's quantization (QUANTIZE).
        min_agreement: the least top-1 agreement with the Keras model a
            quantized LiteRT file must reach on the validation split.
        calibration: for int8: batches of inputs or (inputs, labels).
    """

    quantize: str = "none"
    min_agreement: float = 0.98
    calibration: Iterable | tf.data.Dataset | None = None

    def __post_init__(self):
        if self.quantize not in QUANTIZE:
            raise UserInputError(
                f"--quantize takes {', '.join(QUANTIZE)}. Received: "
                f"{self.quantize!r}"
            )
        if not 0 <= self.min_agreement <= 1:
            raise UserInputError(
                "--min_agreement must be in [0, 1]. Received: "
                f"{self.min_agreement}"
            )


def canonical_formats(formats: Iterable[str]) -> list[str]:
    """Formats with the old `tflite` name mapped to `litert`."""
    names = [ALIASES.get(f, f) for f in formats]
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise UserInputError(
            f"unknown formats {unknown}; valid: {', '.join(FORMATS)}"
        )
    return list(dict.fromkeys(names))


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(root, f))
            for root, _, files in os.walk(path)
            for f in files
        )
    return os.path.getsize(path)


def _first(outputs) -> np.ndarray:
    if isinstance(outputs, dict):
        outputs = outputs[sorted(outputs)[0]]
    elif isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return np.asarray(outputs, dtype=np.float32)


def _runner(kind: str, path: str, image_serving) -> Any:
    """A function from an input batch to the format's first output."""
    if kind == "saved_model":
        loaded = tf.saved_model.load(path)
        key = "serving_default" if image_serving is None else "serving_float"
        serve = loaded.signatures[key]
        names = list(serve.structured_input_signature[1])

        def run(x):
            flat = x if isinstance(x, (list, tuple)) else [x]
            values = (
                x
                if isinstance(x, dict)
                else dict(zip(names, flat, strict=True))
            )
            outputs = serve(**{k: tf.constant(v) for k, v in values.items()})
            return _first(outputs.get("predictions", outputs))

        run.keep = loaded  # the signature needs its object alive
        return run
    if kind in ("keras", "h5"):
        model = kb_io.load_model(path, compile=False)
        return lambda x: _first(model(x, training=False))
    if kind == "litert":
        return lambda x: _first(kb_io.run_litert(path, x))
    return lambda x: _first(kb_io.run_onnx(path, x))


def _check(run, batches, reference, labels, with_accuracy) -> dict:
    outputs = np.concatenate([run(x) for x in batches])
    report = {"max_abs_diff": float(np.abs(outputs - reference).max())}
    if reference.ndim == 2 and reference.shape[-1] > 1:
        report["top1_agreement"] = float(
            np.mean(outputs.argmax(-1) == reference.argmax(-1))
        )
        if with_accuracy and labels is not None:
            report["accuracy"] = float(np.mean(outputs.argmax(-1) == labels))
            report["keras_accuracy"] = float(
                np.mean(reference.argmax(-1) == labels)
            )
    return report


def _validation(model, validation) -> tuple[list, np.ndarray, Any]:
    """Up to MAX_CHECK_EXAMPLES validation inputs (as batches), Keras's
    outputs on them, and their labels (None without)."""
    batches, labels, count = [], [], 0
    for element in validation:
        x, y = (
            (element[0], element[1]) if len(element) >= 2 else (element, None)
        )
        x = tf.nest.map_structure(np.asarray, x)
        batches.append(x)
        if y is not None:
            labels.append(np.asarray(y).reshape(-1))
        count += len(tf.nest.flatten(x)[0])
        if count >= MAX_CHECK_EXAMPLES:
            break
    forward = tf.function(lambda x: model(x, training=False))
    reference = np.concatenate([_first(forward(x)) for x in batches])
    return batches, reference, (np.concatenate(labels) if labels else None)


def has_depthwise(model: keras.Model) -> bool:
    return any(
        isinstance(layer, keras.layers.DepthwiseConv2D)
        or type(layer).__name__ == "DepthwiseConv2D"
        for layer in flatten_layers(model)
    )


def _speed(run, forward, x, rounds: int = 7) -> tuple[float, float]:
    """Median ms per call of `run` and `forward` on one batch, alternated
    (the first call of each, warm-up, excluded)."""
    run(x), forward(x)
    times: dict[str, list[float]] = {"run": [], "tf": []}
    for _ in range(rounds):
        for key, fn in (("run", run), ("tf", forward)):
            started = time.perf_counter()
            fn(x)
            times[key].append((time.perf_counter() - started) * 1e3)
    return statistics.median(times["run"]), statistics.median(times["tf"])


def _saved_model(model, export_dir, image_serving) -> str:
    base = os.path.join(export_dir, "saved_model")
    if os.path.isfile(os.path.join(base, "saved_model.pb")):
        raise UserInputError(
            f"{base} is an unversioned SavedModel of an earlier release; "
            "move it away (TF Serving loads saved_model/<N>/)."
        )
    path = os.path.join(base, str(serving_warmup.next_version(base)))
    kb_io.export_saved_model(
        model, path, image_serving=image_serving, warmup=True
    )
    return path


def export_path(run_dir: str, kind: str) -> str:
    """The path of a run's export of `kind` (a format of `FORMATS`, or
    its old name): the one place that knows the layout under
    `RUN/export/`. A versioned SavedModel (`export/saved_model/<N>/`)
    gives its highest version.

    Example:

    >>> export_path("runs/a", "keras")
    'runs/a/export/model.keras'
    """
    kind = ALIASES.get(kind, kind)
    if kind != "saved_model":
        return os.path.join(run_dir, "export", FILE_NAMES[kind])
    path = os.path.join(run_dir, "export", "saved_model")
    versions = os.listdir(path) if os.path.isdir(path) else []
    versions = [v for v in versions if v.isdigit()]
    return os.path.join(path, max(versions, key=int)) if versions else path


def export_checked(
    model: keras.Model,
    out_dir: str,
    formats: Iterable[str],
    *,
    image_serving=None,
    validation: Iterable | None = None,
    options: DeployOptions | None = None,
) -> dict[str, str]:
    """Writes `formats` under `out_dir/export`, checks each on
    `validation` ((inputs, labels) batches) and writes the report.

    Returns the written paths by format. Raises `AgreementError` (after
    the report is written) when a quantized LiteRT file was refused.
    """
    options = options or DeployOptions()
    formats = canonical_formats(formats)
    export_dir = os.path.join(out_dir, "export")
    os.makedirs(export_dir, exist_ok=True)
    checked = validation is not None
    batches, reference, labels = (
        _validation(model, validation) if checked else ([], None, None)
    )
    written = {}
    report = {
        "quantize": options.quantize,
        "formats": _earlier_entries(export_dir, out_dir),
    }
    if checked:
        report["examples"] = int(len(reference))
    refused = None
    for kind in formats:
        quantize = options.quantize if kind == "litert" else "none"
        if kind == "saved_model":
            path = _saved_model(model, export_dir, image_serving)
        else:
            path = os.path.join(export_dir, FILE_NAMES[kind])
        target = path
        if kind == "litert":
            # Checked before it takes the final name: a refused file never
            # sits where a deployment would pick it up.
            target = _atomic.temporary_sibling(path, ".tflite")
        _write_format(model, kind, target, quantize, options, image_serving)
        entry = {"file": os.path.relpath(path, out_dir)}
        try:
            entry["size_bytes"] = _size(target)
            if kind == "litert":
                entry["quantize"] = quantize
            if checked:
                run = _runner(kind, target, image_serving)
                entry.update(
                    _check(run, batches, reference, labels, quantize == "int8")
                )
                if kind == "litert" and quantize == "dynamic_int8":
                    if has_depthwise(model):
                        entry["speed"] = _depthwise_warning(
                            run, model, batches[0]
                        )
            refusal = _refusal(kind, quantize, entry, options.min_agreement)
            if refusal:
                refused = entry["refused"] = (
                    f"{path}: not written, {refusal}; see "
                    f"{os.path.join(export_dir, REPORT_FILE)}"
                )
                if os.path.exists(path):
                    os.remove(path)  # a stale file must not pass for it
                continue
            if target != path:
                os.replace(target, path)
            written[kind] = path
        finally:
            if target != path and os.path.exists(target):
                os.remove(target)
            report["formats"][kind] = entry
    with _atomic.atomic_path(os.path.join(export_dir, REPORT_FILE)) as tmp:
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)
    if refused:
        raise AgreementError(refused)
    return written


def _earlier_entries(export_dir: str, out_dir: str) -> dict[str, dict]:
    """The entries of an earlier report whose files are still there.

    `kb-export --formats=litert` after kb-train keeps the SavedModel's
    entry: the report describes every file in `export/`, not only the
    last call's.
    """
    try:
        with open(os.path.join(export_dir, REPORT_FILE)) as f:
            earlier = json.load(f)["formats"]
        return {
            kind: entry
            for kind, entry in earlier.items()
            if "refused" not in entry
            and os.path.exists(os.path.join(out_dir, entry["file"]))
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # none, or not ours: this call's entries stand alone


def _write_format(model, kind, target, quantize, options, image_serving):
    """Writes `model` as `kind` at `target` (a SavedModel is written
    where its version is chosen), with the image metadata the format
    carries."""
    if kind == "litert":
        kb_io.export_litert(
            model,
            target,
            quantize=None if quantize == "none" else quantize,
            calibration=options.calibration if quantize == "int8" else None,
        )
    elif kind == "onnx":
        kb_io.export_onnx(model, target)
    elif kind in ("keras", "h5"):
        kb_io.save_model(model, target)
    if image_serving is not None and kind in _CARRIES_METADATA:
        kb_io.write_image_metadata(
            target, kb_io.ImageMetadata.for_model(model, image_serving)
        )


def _refusal(kind, quantize, entry, min_agreement) -> str | None:
    """Why a quantized LiteRT file is refused (its agreement with the
    Keras model is below `min_agreement`), or None."""
    agreement = entry.get("top1_agreement")
    if (
        kind != "litert"
        or quantize == "none"
        or agreement is None
        or not agreement < min_agreement
    ):
        return None
    return (
        f"{quantize} LiteRT agrees with the Keras model on {agreement:.4f} "
        f"of the validation split, below --min_agreement={min_agreement}"
    )


def _depthwise_warning(run, model, x) -> dict:
    forward = tf.function(lambda x: model(x, training=False))
    one = tf.nest.map_structure(lambda a: a[:1], x)
    litert_ms, tf_ms = _speed(run, forward, one)
    print(
        f"warning: dynamic_int8 on a depthwise network: LiteRT takes "
        f"{litert_ms:.2f} ms per image, TF float32 {tf_ms:.2f} ms "
        f"({tf_ms / litert_ms:.2f}x); --quantize=int8 (calibrated) is the "
        "fast choice on CPU.",
        file=sys.stderr,
    )
    return {"litert_ms_per_image": litert_ms, "tf_ms_per_image": tf_ms}


def run_data(
    dataset,
    *,
    image_shape: tuple | None = None,
    pixels: str = "unit",
    view: dict | None = None,
    calibration: str | None = None,
    data_dir: str | None = None,
    calibration_examples: int = 256,
    quantize: str = "none",
) -> tuple[Any, Any]:
    """The validation batches and (for int8) the calibration batches of a
    model, seen as the model sees them: `image_shape` (the (height,
    width, channels) it takes, for image data), `pixels` and `view`.

    `calibration` is a --dataset form; by default the run's own training
    split.
    """
    from kerasblocks.data import dataset as data_lib

    if dataset is None:
        return None, None
    view = view or {}
    validation = None
    if dataset.num_val:
        validation = data_lib.make_pipeline(
            dataset, "val", 64, image_shape=image_shape, pixels=pixels, **view
        )
    if quantize != "int8":
        return validation, None
    source = dataset
    if calibration:
        source = data_lib.load_dataset(calibration, data_dir)
    pipeline = data_lib.make_pipeline(
        source, "train", 32, image_shape=image_shape, pixels=pixels, **view
    )
    return validation, pipeline.unbatch().take(calibration_examples).batch(32)


def export_run(config, dataset, start) -> dict[str, str]:
    """A finished run's exports (`config.export`), checked on its
    validation split and quantized as `config` says. `start` (the run's
    `transfer.Start`) holds the trained model and says how it sees
    images and is served."""
    validation, calibration = run_data(
        dataset,
        image_shape=start.image_shape,
        pixels=start.pixels,
        view=start.eval_view,
        calibration=config.calibration,
        data_dir=config.data_dir,
        calibration_examples=config.calibration_examples,
        quantize=config.quantize,
    )
    return export_checked(
        start.model,
        config.out_dir,
        config.export,
        image_serving=start.serving,
        validation=validation,
        options=DeployOptions(
            config.quantize, config.min_agreement, calibration
        ),
    )
