"""Inference runtimes side by side: TF's compiled forward, LiteRT float32
and full-integer int8, onnxruntime (`kb-benchmark --runtimes=...`).

One model (its random weights shared by every runtime), converted once
per runtime; then rounds in which every (runtime, batch) configuration
runs for `min_seconds`, so a noisy machine slows all of them alike and
the ratios stay valid. Each ratio is TF's median time over the runtime's
(above 1: faster than TF). The first call of each is warm-up, reported
apart.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

RUNTIMES = ("tf", "litert", "litert_int8", "onnxruntime")
CALIBRATION_EXAMPLES = 32


def _inputs(input_shape, batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (batch, *input_shape)).astype("float32")


def _litert(path: str, batch: int, x: np.ndarray) -> Callable[[], None]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=os.cpu_count() or 1)
    (detail,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(detail["index"], (batch, *x.shape[1:]))
    interpreter.allocate_tensors()
    scale, zero_point = detail["quantization"]
    if detail["dtype"] == np.int8:
        x = np.clip(np.round(x / scale + zero_point), -128, 127)
    x = x.astype(detail["dtype"])
    output = interpreter.get_output_details()[0]["index"]

    def run():
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        interpreter.get_tensor(output)

    return run


def _onnx(path: str, x: np.ndarray) -> Callable[[], None]:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        path, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: x})


def build(model, input_shape, runtimes, batch_sizes, work: str) -> dict:
    """`{(runtime, batch): run()}` for every configuration."""
    import kerasblocks as kb

    files = {}
    if "litert" in runtimes:
        files["litert"] = os.path.join(work, "float.tflite")
        kb.io.export_litert(model, files["litert"])
    if "litert_int8" in runtimes:
        files["litert_int8"] = os.path.join(work, "int8.tflite")
        calibration = [
            _inputs(input_shape, 1, seed)
            for seed in range(CALIBRATION_EXAMPLES)
        ]
        kb.io.export_litert(
            model,
            files["litert_int8"],
            quantize="int8",
            calibration=calibration,
        )
    if "onnxruntime" in runtimes:
        files["onnxruntime"] = os.path.join(work, "model.onnx")
        kb.io.export_onnx(model, files["onnxruntime"])
    forward = tf.function(lambda x: model(x, training=False))
    runs = {}
    for batch in batch_sizes:
        x = _inputs(input_shape, batch, seed=batch)
        for runtime in runtimes:
            if runtime == "tf":
                tensor = tf.constant(x)
                runs[runtime, batch] = (
                    lambda t=tensor: forward(t).numpy()  # noqa: B023
                )
            elif runtime == "onnxruntime":
                runs[runtime, batch] = _onnx(files[runtime], x)
            else:
                runs[runtime, batch] = _litert(files[runtime], batch, x)
    return runs


def measure(runs: dict, rounds: int, min_seconds: float, progress) -> dict:
    """Seconds per call of each configuration, interleaved in rounds."""
    warmup, samples = {}, {key: [] for key in runs}
    for key, run in runs.items():
        started = time.perf_counter()
        run()
        warmup[key] = time.perf_counter() - started
    for number in range(rounds):
        for key, run in runs.items():
            calls, started = 0, time.perf_counter()
            while True:
                run()
                calls += 1
                elapsed = time.perf_counter() - started
                if elapsed >= min_seconds:
                    break
            samples[key].append(elapsed / calls)
        progress(f"round {number + 1}/{rounds} done")
    return {"warmup": warmup, "samples": samples}


def summarize(measured: dict) -> list[dict]:
    """One result per configuration: median and best ms, images/s and
    the ratio of TF's median time (same batch) to the runtime's."""
    results = []
    for (runtime, batch), times in measured["samples"].items():
        median = statistics.median(times)
        tf_median = statistics.median(measured["samples"]["tf", batch])
        results.append(
            {
                "runtime": runtime,
                "batch_size": batch,
                "median_ms": median * 1e3,
                "best_ms": min(times) * 1e3,
                "images_per_s": batch / median,
                "vs_tf": tf_median / median,
                "warmup_s": measured["warmup"][runtime, batch],
                "samples_s": times,
            }
        )
    return results


def run_runtimes(
    make_model,
    input_shape,
    *,
    runtimes,
    batch_sizes,
    rounds: int = 5,
    min_seconds: float = 0.5,
    progress=print,
) -> dict:
    """Measures every runtime at every batch size; returns the report."""
    model = make_model()
    with tempfile.TemporaryDirectory(prefix="kb-runtimes-") as work:
        progress("converting (LiteRT float32 and int8, ONNX)")
        runs = build(model, input_shape, runtimes, batch_sizes, work)
        measured = measure(runs, rounds, min_seconds, progress)
    results = summarize(measured)
    return {
        "model": model.name,
        "input_shape": list(input_shape),
        "threads": os.cpu_count(),
        "rounds": rounds,
        "load_average": list(os.getloadavg()),
        "results": results,
    }


def format_runtimes(report: dict) -> str:
    lines = [
        f"{report['model']} {tuple(report['input_shape'])}, "
        f"{report['threads']} threads, {report['rounds']} rounds "
        f"(load average {report['load_average'][0]:.1f})",
        f"{'runtime':<13}{'batch':>6}{'median ms':>11}{'best ms':>10}"
        f"{'img/s':>9}{'vs tf':>8}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['runtime']:<13}{r['batch_size']:>6}{r['median_ms']:>11.2f}"
            f"{r['best_ms']:>10.2f}{r['images_per_s']:>9.1f}"
            f"{r['vs_tf']:>7.2f}x"
        )
    return "\n".join(lines)
