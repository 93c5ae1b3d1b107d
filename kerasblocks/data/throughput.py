"""Is the input pipeline what limits training? Three rates, side by side.

`measure_data_throughput` measures, in one process and interleaved in
rounds (round r runs each measurement once, after a warm-up reported
apart):

- `pipeline`: the input pipeline alone (images decoded, resized and
  augmented per second);
- `step`: the train step alone, fed one cached batch over and over;
- `end_to_end`: the train step fed by the pipeline.

Each records wall time and process CPU time, so a machine dropping into
the 2-core one-idle-core mode (DESIGN.md) shows as a low CPU/wall ratio.
The bars of issue 13: `end_to_end >= 0.9 x step` and `pipeline >= 2 x
step`. `kb-benchmark --dataset=...` is meant to call this and print
`format_throughput`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

KINDS = ("pipeline", "step", "end_to_end")


def _timed(body: Callable[[], int]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    images = body()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "images": images,
        "seconds": wall,
        "images_per_s": images / wall if wall else float("inf"),
        "cpu_per_wall": cpu / wall if wall else 0.0,
    }


def measure_data_throughput(
    make_pipeline: Callable[[], tf.data.Dataset],
    step: Callable[[Any, Any], Any],
    *,
    batches: int = 20,
    rounds: int = 3,
) -> dict[str, Any]:
    """Images per second of the pipeline, the step, and both together.

    Args:
        make_pipeline: returns a fresh pipeline of `(images, labels)`
            batches with at least `batches` batches (a repeated one is
            fine).
        step: one training step on a batch, returning once it is done
            (a `kerasblocks.compile` train step does).
        batches: batches per measurement.
        rounds: measurements of each kind, interleaved.

    Returns:
        For each of `KINDS`: the `warmup` measurement and, over the
        rounds, `median` and `best` images/s and the median `cpu_per_wall`;
        and `ratios`: `end_to_end/step` and `pipeline/step` (medians).

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> data = tf.data.Dataset.from_tensors(
    ...     (tf.zeros([4, 8]), tf.zeros([4]))).repeat()
    >>> report = measure_data_throughput(
    ...     lambda: data, lambda x, y: None, batches=2, rounds=1)
    >>> sorted(report), report["pipeline"]["warmup"]["images"]
    (['end_to_end', 'pipeline', 'ratios', 'step'], 8)
    """
    if batches < 1 or rounds < 1:
        raise ValueError(
            f"batches and rounds must be positive. Received: {batches=}, "
            f"{rounds=}"
        )
    x, y = next(iter(make_pipeline()))

    def pipeline_alone():
        images = 0
        for images_batch, _ in make_pipeline().take(batches):
            images += int(images_batch.shape[0])
        return images

    def step_alone():
        for _ in range(batches):
            step(x, y)
        return batches * int(x.shape[0])

    def end_to_end():
        images = 0
        for images_batch, labels in make_pipeline().take(batches):
            step(images_batch, labels)
            images += int(images_batch.shape[0])
        return images

    bodies = {
        "pipeline": pipeline_alone,
        "step": step_alone,
        "end_to_end": end_to_end,
    }
    report = {kind: {"warmup": _timed(body)} for kind, body in bodies.items()}
    runs = {kind: [] for kind in KINDS}
    for _ in range(rounds):
        for kind, body in bodies.items():
            runs[kind].append(_timed(body))
    for kind, measured in runs.items():
        rates = [m["images_per_s"] for m in measured]
        report[kind].update(
            median=statistics.median(rates),
            best=max(rates),
            cpu_per_wall=statistics.median(m["cpu_per_wall"] for m in measured),
        )
    step_rate = report["step"]["median"]
    report["ratios"] = {
        "end_to_end/step": report["end_to_end"]["median"] / step_rate,
        "pipeline/step": report["pipeline"]["median"] / step_rate,
    }
    return report


def add_opening_cost(
    report: dict[str, Any], images: int, seconds: float, num_train: int
) -> dict[str, Any]:
    """Adds what opening the data set cost (a `folder:` source decodes
    every image once then) to a `measure_data_throughput` report:
    `open` (images checked, seconds, images/s) and the ratio
    `open/epoch`, that time as a fraction of one training epoch at the
    measured end-to-end rate.

    Example:

    >>> report = {"end_to_end": {"median": 100.0}, "ratios": {}}
    >>> add_opening_cost(report, 1000, 0.5, 800)["ratios"]
    {'open/epoch': 0.0625}
    """
    report["open"] = {
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds if seconds else float("inf"),
    }
    epoch_seconds = num_train / report["end_to_end"]["median"]
    report["ratios"]["open/epoch"] = seconds / epoch_seconds
    return report


def format_throughput(report: dict[str, Any]) -> str:
    """The report as a small table plus the two ratios."""
    lines = [f"{'':12s} {'median':>10s} {'best':>10s} {'cpu/wall':>9s}"]
    for kind in KINDS:
        row = report[kind]
        lines.append(
            f"{kind:12s} {row['median']:10.1f} {row['best']:10.1f} "
            f"{row['cpu_per_wall']:9.2f}"
        )
    if "open" in report:
        opened = report["open"]
        lines.append(
            f"open: {opened['images']} images checked in "
            f"{opened['seconds']:.2f} s ({opened['images_per_s']:.0f}/s)"
        )
    lines += [f"{k} = {v:.3g}" for k, v in report["ratios"].items()]
    return "\n".join(lines)
