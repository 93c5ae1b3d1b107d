"""The benchmark library behind `kb-benchmark`.

Every configuration (task x mode x batch size) is measured in the same
process, interleaved in rounds (round r runs every configuration once),
after a warm-up that is reported separately as the first-call time. Each
measurement records wall time and process CPU time, so that a machine
dropping into a one-core mode shows up as a low CPU/wall ratio. Medians
and bests are reported, and ratios between configurations are computed
from medians measured side by side.

Modes:
    eager, graph, xla, auto: `kerasblocks.compile` functions.
    keras: Keras defaults as users write them (`model.predict` on a NumPy
        array for inference; `compile()` with its defaults and `model.fit`
        on NumPy arrays for training).
    keras_tfdata: `model.fit` on a cached, repeated tf.data pipeline (the
        most favourable way to feed `fit`; training only).
    handwritten: a bare `tf.function` (the model call for inference; a
        GradientTape step for training), the floor any wrapper is held to.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.compile import compile_forward, compile_train_step

MODES = (
    "eager",
    "graph",
    "xla",
    "auto",
    "keras",
    "keras_tfdata",
    "handwritten",
)
TASKS = ("inference", "training")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def under_policy(
    make_model: Callable[[], keras.Model], policy: str
) -> Callable[[], keras.Model]:
    """`make_model`, building under the Keras dtype policy `policy`."""

    def make():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return make_model()
        finally:
            keras.config.set_dtype_policy(previous)

    return make


@dataclasses.dataclass
class Measurement:
    """The figures of one configuration."""

    task: str
    mode: str
    batch_size: int
    first_call_s: float = math.nan
    step_ms: list[float] = dataclasses.field(default_factory=list)
    cpu_ratio: list[float] = dataclasses.field(default_factory=list)
    traces: int | None = None
    chosen: str = ""
    error: str = ""
    peak_rss_mb: float = 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.step_ms) if self.step_ms else math.nan

    @property
    def best_ms(self) -> float:
        return min(self.step_ms) if self.step_ms else math.nan

    @property
    def items_per_s(self) -> float:
        return self.batch_size / (self.median_ms / 1e3)

    def as_dict(self, flops_per_item: float | None, peak: float | None):
        result = {
            "task": self.task,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "items_per_s": self.items_per_s,
            "median_ms_per_step": self.median_ms,
            "best_ms_per_step": self.best_ms,
            "first_call_s": self.first_call_s,
            "cpu_wall_ratio": statistics.median(self.cpu_ratio)
            if self.cpu_ratio
            else None,
            "trace_count": self.traces,
            "chosen_mode": self.chosen or None,
            "peak_rss_mb": self.peak_rss_mb or None,
            "samples_ms": self.step_ms,
            "error": self.error or None,
        }
        if flops_per_item and peak and self.step_ms:
            factor = 3.0 if self.task == "training" else 1.0
            achieved = factor * flops_per_item * self.items_per_s
            result["gflops_per_s"] = achieved / 1e9
            result["fraction_of_matmul_peak"] = achieved / peak
        return result


def measure_matmul_peak(size: int = 2048, seconds: float = 1.0) -> float:
    """The fp32 matmul rate this process reaches, in FLOP/s."""
    a = tf.random.stateless_uniform((size, size), seed=(1, 2))
    b = tf.random.stateless_uniform((size, size), seed=(3, 4))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul(a, b).numpy()
        count += 1
    return 2.0 * size**3 * count / (time.perf_counter() - start)


def forward_flops(model: keras.Model, input_shape: tuple) -> float | None:
    """FLOPs of one example's forward pass (TF's profiler), or None."""
    try:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        spec = tf.TensorSpec((1, *input_shape), tf.float32)
        concrete = tf.function(lambda x: model(x, training=False))
        frozen = convert_variables_to_constants_v2(
            concrete.get_concrete_function(spec)
        )
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(
            graph=frozen.graph,
            run_meta=tf.compat.v1.RunMetadata(),
            cmd="op",
            options=options,
        )
        return float(profile.total_float_ops) or None
    except Exception:  # the profiler is best effort
        return None


def _sync(value):
    for t in tf.nest.flatten(value):
        if hasattr(t, "numpy"):
            t.numpy()


class _RssSampler:
    """The process's peak resident memory while a block runs, sampled
    every 5 ms from /proc (0 where /proc is not available). It is the
    whole process's memory, so it includes models built earlier."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = None

    @staticmethod
    def _rss_mb() -> float:
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            return 0.0
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self):
        import threading

        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak_mb = max(self.peak_mb, self._rss_mb())
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())


def _repeat(function, n, *args):
    value = None
    for _ in range(n):
        value = function(*args)
    return value


def _labels(model, batch: int, seed: int):
    classes = model.output_shape[-1]
    return (
        np.random.default_rng(seed)
        .integers(0, classes, (batch,))
        .astype("int32")
    )


class Runner:
    """Builds the step function of one configuration."""

    def __init__(self, make_model: Callable[[], keras.Model], input_shape):
        self.make_model = make_model
        self.input_shape = tuple(input_shape)

    def build(self, task: str, mode: str, batch: int):
        """Returns (run(n), first-call seconds, info) for a configuration;
        run(n) runs n steps as a user of that mode would (one `fit` or
        `predict` call over n batches for "keras") and returns something
        to synchronize on."""
        keras.utils.set_random_seed(0)
        model = self.make_model()
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (batch, *self.input_shape)).astype("float32")
        y = _labels(model, batch, 1)
        loss = keras.losses.SparseCategoricalCrossentropy()
        info: dict[str, Any] = {}
        start = time.perf_counter()
        if task == "inference":
            step = self._inference(model, mode, x, info)
        else:
            step = self._training(model, mode, x, y, loss, info)
        _sync(step(1))
        return step, time.perf_counter() - start, info

    def _inference(self, model, mode, x, info):
        if mode == "keras_tfdata":
            raise ValueError("keras_tfdata is a training mode")
        if mode == "keras":
            return lambda n: model.predict(
                np.concatenate([x] * n), batch_size=len(x), verbose=0
            )
        if mode == "handwritten":
            function = tf.function(lambda t: model(t, training=False))
        else:
            function = compile_forward(
                model, (None, *self.input_shape), mode=mode
            )
            info["compiled"] = function
        tensor = tf.constant(x)
        return lambda n: _repeat(function, n, tensor)

    def _training(self, model, mode, x, y, loss, info):
        optimizer = keras.optimizers.SGD(0.01)
        if mode == "keras":
            # Keras's defaults as a user writes them: compile() defaults,
            # fit() on NumPy arrays.
            model.compile(optimizer=optimizer, loss=loss)
            return lambda n: model.fit(
                np.concatenate([x] * n),
                np.concatenate([y] * n),
                batch_size=len(x),
                epochs=1,
                verbose=0,
            ).history["loss"][-1]
        if mode == "keras_tfdata":
            model.compile(optimizer=optimizer, loss=loss)
            options = tf.data.Options()
            options.autotune.enabled = False
            data = (
                tf.data.Dataset.from_tensors((x, y))
                .repeat()
                .with_options(options)
            )
            return lambda n: model.fit(
                data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False
            ).history["loss"][-1]
        if mode == "handwritten":
            variables = model.trainable_variables
            optimizer.build(variables)

            @tf.function
            def train(a, b):
                with tf.GradientTape() as tape:
                    value = loss(b, model(a, training=True))
                optimizer.apply(tape.gradient(value, variables), variables)
                return value

            tx, ty = tf.constant(x), tf.constant(y)
            return lambda n: _repeat(train, n, tx, ty)
        step = compile_train_step(
            model, optimizer, loss, (None, *self.input_shape), mode=mode
        )
        tx, ty = tf.constant(x), tf.constant(y)
        info["compiled"] = step
        return lambda n: _repeat(lambda a, b: step(a, b)["loss"], n, tx, ty)


def run_benchmark(
    make_model: Callable[[], keras.Model],
    input_shape: tuple,
    *,
    tasks=TASKS,
    modes=("graph", "xla", "auto", "keras"),
    batch_sizes=(32,),
    rounds: int = 5,
    min_seconds: float = 0.5,
    progress: Callable[[str], None] | None = None,
    measure_peak: bool = True,
    reference: tuple[str, Callable[[], keras.Model]] | None = None,
    precisions=("float32",),
) -> dict[str, Any]:
    """Measures every (task, mode, batch) configuration, interleaved.

    Args:
        make_model: returns a fresh model (called once per configuration).
        input_shape: one example's shape.
        tasks, modes, batch_sizes: the grid.
        rounds: timed rounds; each round runs every configuration.
        min_seconds: each timed sample runs enough steps to last this long.
        progress: called with one line per finished step of the plan.
        reference: `(label, factory)` of another model (say
            keras.applications' ResNet50) measured with Keras defaults
            as mode "keras:<label>" in the same rounds.
        precisions: Keras dtype policies to measure side by side; each
            other than float32 shows as mode "<mode>@<policy>".

    Returns:
        A JSON-able dict: machine facts, matmul peak, FLOPs per example,
        one entry per configuration, and speed ratios.
    """
    for mode in modes:
        if mode not in MODES:
            raise ValueError(
                f"Unknown mode {mode!r}. Valid: {', '.join(MODES)}"
            )
    for task in tasks:
        if task not in TASKS:
            raise ValueError(
                f"Unknown task {task!r}. Valid: {', '.join(TASKS)}"
            )
    for batch in batch_sizes:
        if batch < 1:
            raise ValueError(f"Batch sizes must be positive. Received: {batch}")
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ValueError(
                f"Unknown precision {precision!r}. Valid: "
                f"{', '.join(PRECISIONS)}"
            )
    say = progress or (lambda line: None)
    runner = Runner(make_model, input_shape)
    runners = {
        p: Runner(under_policy(make_model, p), input_shape)
        for p in precisions
        if p != "float32"
    }
    say("measuring the matmul peak" if measure_peak else "skipping matmul peak")
    peak = measure_matmul_peak() if measure_peak else None
    flops = forward_flops(make_model(), tuple(input_shape))
    labels = [m for m in modes if "float32" in precisions]
    labels += [f"{m}@{p}" for p in runners for m in modes]
    configs = [(t, m, b) for t in tasks for m in labels for b in batch_sizes]
    if reference is not None:
        label, factory = reference
        other = Runner(factory, input_shape)
        configs += [
            (t, f"keras:{label}", b) for t in tasks for b in batch_sizes
        ]
    built, results = {}, {}
    for index, (task, mode, batch) in enumerate(configs, 1):
        result = Measurement(task, mode, batch)
        results[(task, mode, batch)] = result
        try:
            if mode.startswith("keras:"):
                step, first, info = other.build(task, "keras", batch)
            elif "@" in mode:
                base, precision = mode.split("@")
                step, first, info = runners[precision].build(task, base, batch)
            else:
                step, first, info = runner.build(task, mode, batch)
        except Exception as error:  # reported, not fatal to the others
            result.error = f"{type(error).__name__}: {error}"[:300]
            where = f"[{index}/{len(configs)}] {task} {mode} b{batch}"
            say(f"{where}: {result.error}")
            continue
        result.first_call_s = first
        compiled = info.get("compiled")
        if compiled is not None:
            result.chosen = compiled.mode or ""
        built[(task, mode, batch)] = (step, compiled)
        say(
            f"[{index}/{len(configs)}] warm-up {task} {mode} b{batch}: "
            f"{first:.2f} s"
        )
    calls = {}
    for key, (step, _) in built.items():
        start = time.perf_counter()
        _sync(step(1))
        once = max(time.perf_counter() - start, 1e-6)
        if once < min_seconds:  # per-call overheads: calibrate on more steps
            probe = max(2, min(50, int(min_seconds / once)))
            start = time.perf_counter()
            _sync(step(probe))
            once = max((time.perf_counter() - start) / probe, 1e-6)
        calls[key] = max(1, int(min_seconds / once))
    for round_index in range(rounds):
        for key, (step, _) in built.items():
            n = calls[key]
            result = results[key]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            with _RssSampler() as sampler:
                _sync(step(n))
            wall = time.perf_counter() - wall0
            result.peak_rss_mb = max(result.peak_rss_mb, sampler.peak_mb)
            result.step_ms.append(wall / n * 1e3)
            result.cpu_ratio.append((time.process_time() - cpu0) / wall)
        say(f"round {round_index + 1}/{rounds} done")
    for key, (_, compiled) in built.items():
        if compiled is not None:
            results[key].traces = compiled.trace_count
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    entries = [r.as_dict(flops, peak) for r in results.values()]
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": sys.version.split()[0],
        },
        "matmul_peak_gflops": None if peak is None else peak / 1e9,
        "forward_gflops_per_item": None if flops is None else flops / 1e9,
        "input_shape": list(input_shape),
        "rounds": rounds,
        "peak_rss_mb": peak_rss_mb,
        "results": entries,
        "ratios": ratios(results.values()),
    }


def ratios(results) -> dict[str, float]:
    """Speed of every mode relative to "keras" and "handwritten", and of
    "auto" relative to the faster of graph and XLA (same task, batch)."""
    by_key = {(r.task, r.mode, r.batch_size): r for r in results if r.step_ms}
    out = {}
    bases = {m for (_, m, _) in by_key if m.startswith("keras:")}
    bases |= {"keras", "keras_tfdata", "handwritten"}
    for (task, mode, batch), result in by_key.items():
        for base in sorted(bases):
            other = by_key.get((task, base, batch))
            if other is not None and mode != base:
                out[f"{task}/b{batch}/{mode}_vs_{base}"] = (
                    other.median_ms / result.median_ms
                )
        if "@" in mode:
            plain = by_key.get((task, mode.split("@")[0], batch))
            if plain is not None:
                out[f"{task}/b{batch}/{mode}_vs_float32"] = (
                    plain.median_ms / result.median_ms
                )
        if mode == "auto":
            best = [by_key.get((task, m, batch)) for m in ("graph", "xla")]
            best = [b.median_ms for b in best if b is not None]
            if best:
                out[f"{task}/b{batch}/auto_vs_best_of_graph_xla"] = (
                    min(best) / result.median_ms
                )
    return out


def format_table(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    header = (
        "task",
        "mode",
        "batch",
        "items/s",
        "ms/step",
        "best ms",
        "first s",
        "cpu/wall",
        "traces",
        "%peak",
        "rss MB",
        "note",
    )
    rows = []
    for r in report["results"]:
        rows.append(
            (
                r["task"],
                r["mode"]
                + (
                    f"->{r['chosen_mode']}"
                    if r["chosen_mode"] and r["mode"] == "auto"
                    else ""
                ),
                str(r["batch_size"]),
                f"{r['items_per_s']:.1f}" if not r["error"] else "-",
                f"{r['median_ms_per_step']:.3f}" if not r["error"] else "-",
                f"{r['best_ms_per_step']:.3f}" if not r["error"] else "-",
                f"{r['first_call_s']:.2f}" if not r["error"] else "-",
                f"{r['cpu_wall_ratio']:.2f}" if r["cpu_wall_ratio"] else "-",
                "-" if r["trace_count"] is None else str(r["trace_count"]),
                f"{100 * r['fraction_of_matmul_peak']:.0f}"
                if r.get("fraction_of_matmul_peak")
                else "-",
                f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-",
                (r["error"] or "")[:60],
            )
        )
    widths = [
        max(len(x[i]) for x in [header, *rows]) for i in range(len(header))
    ]
    lines = [
        "  ".join(
            c.ljust(w) for c, w in zip(line, widths, strict=True)
        ).rstrip()
        for line in [header, *rows]
    ]
    if report.get("matmul_peak_gflops"):
        lines.append(f"matmul peak: {report['matmul_peak_gflops']:.1f} GFLOP/s")
    if report.get("forward_gflops_per_item"):
        lines.append(
            f"forward: {report['forward_gflops_per_item']:.4f} GFLOP per item"
        )
    for name, value in sorted(report["ratios"].items()):
        lines.append(f"ratio {name}: {value:.2f}x")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str) -> None:
    with kb.io._atomic.atomic_path(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(report, f, indent=1, default=float)
            f.write("\n")
