"""The benchmark library behind `kb-benchmark`.

Every configuration (task x mode x batch size) is measured in the same
process, interleaved in rounds (round r runs every configuration once),
after a warm-up that is reported separately as the first-call time. Each
measurement records wall time and process CPU time, so that a machine
dropping into a one-core mode shows up as a low CPU/wall ratio. Medians
and bests are reported, and ratios between configurations are computed
from medians measured side by side.

The pieces: `tools._benchmark_runner` builds the step each mode runs
(`Runner`), `tools._benchmark_report` holds the figures (`Measurement`)
and formats the report; this module measures the machine (matmul peak,
FLOPs, memory) and runs the interleaved rounds (`run_benchmark`).

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

import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from tools._benchmark_report import Measurement as Measurement
from tools._benchmark_report import format_table as format_table
from tools._benchmark_report import ratios as ratios
from tools._benchmark_report import write_json as write_json
from tools._benchmark_runner import MODES as MODES
from tools._benchmark_runner import PRECISIONS as PRECISIONS
from tools._benchmark_runner import TASKS as TASKS
from tools._benchmark_runner import Runner as Runner
from tools._benchmark_runner import random_labels as _labels  # noqa: F401
from tools._benchmark_runner import repeat as _repeat  # noqa: F401
from tools._benchmark_runner import sync as _sync
from tools._benchmark_runner import under_policy as under_policy


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
    _check_grid(tasks, modes, batch_sizes, precisions)
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
    other = None
    if reference is not None:
        label, factory = reference
        other = Runner(factory, input_shape)
        configs += [
            (t, f"keras:{label}", b) for t in tasks for b in batch_sizes
        ]

    def build(task, mode, batch):
        if mode.startswith("keras:"):
            return other.build(task, "keras", batch)
        if "@" in mode:
            base, precision = mode.split("@")
            return runners[precision].build(task, base, batch)
        return runner.build(task, mode, batch)

    results, built = _warm_up(configs, build, say)
    calls = {key: _calls(step, min_seconds) for key, (step, _) in built.items()}
    for round_index in range(rounds):
        _measure_round(built, calls, results)
        say(f"round {round_index + 1}/{rounds} done")
    for key, (_, compiled) in built.items():
        if compiled is not None:
            results[key].traces = compiled.trace_count
    return _report(results, input_shape, rounds, flops, peak)


def _check_grid(tasks, modes, batch_sizes, precisions) -> None:
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


def _warm_up(configs, build, say) -> tuple[dict, dict]:
    """Builds each configuration's step (its first call is the warm-up);
    returns {configuration: `Measurement`} and {configuration: (step,
    compiled function or None)} of those that built."""
    built, results = {}, {}
    for index, (task, mode, batch) in enumerate(configs, 1):
        result = Measurement(task, mode, batch)
        results[(task, mode, batch)] = result
        where = f"[{index}/{len(configs)}]"
        try:
            step, first, info = build(task, mode, batch)
        except Exception as error:  # reported, not fatal to the others
            result.error = f"{type(error).__name__}: {error}"[:300]
            say(f"{where} {task} {mode} b{batch}: {result.error}")
            continue
        result.first_call_s = first
        compiled = info.get("compiled")
        if compiled is not None:
            result.chosen = compiled.mode or ""
        built[(task, mode, batch)] = (step, compiled)
        say(f"{where} warm-up {task} {mode} b{batch}: {first:.2f} s")
    return results, built


def _calls(step, min_seconds: float) -> int:
    """Steps per timed sample, so that one lasts about `min_seconds`."""
    start = time.perf_counter()
    _sync(step(1))
    once = max(time.perf_counter() - start, 1e-6)
    if once < min_seconds:  # per-call overheads: calibrate on more steps
        probe = max(2, min(50, int(min_seconds / once)))
        start = time.perf_counter()
        _sync(step(probe))
        once = max((time.perf_counter() - start) / probe, 1e-6)
    return max(1, int(min_seconds / once))


def _measure_round(built, calls, results) -> None:
    """One timed sample of every built configuration: wall time per
    step, CPU/wall ratio and peak memory, added to its `Measurement`."""
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


def _report(results, input_shape, rounds, flops, peak) -> dict[str, Any]:
    """`run_benchmark`'s JSON-able report."""
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
