"""What a run shows and logs as it goes: a progress bar on a terminal,
one summary line per epoch, TensorBoard scalars, metrics.json and the
curves."""

from __future__ import annotations

import os
import sys

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from kerasblocks.training import report
from kerasblocks.training.rundir import RunDirectory


def _scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar, without needing the tensorboard package
    (tf.summary.scalar does): the event carries the scalars plugin's
    metadata, which is what TensorBoard reads."""
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name="scalars"
        )
    )
    tf.summary.write(
        tag,
        tf.constant(value, tf.float32),
        step=step,
        metadata=metadata.SerializeToString(),
    )


class Progress:
    """The run's narrative.

    Args:
        run_dir: where TensorBoard logs, metrics.json and curves.png go
            (written by the chief only).
        epochs: epochs planned.
        steps_per_epoch: batches per epoch.
        stream: where the lines go; the bar is drawn only on a terminal.
    """

    def __init__(
        self,
        run_dir: RunDirectory,
        epochs: int,
        steps_per_epoch: int,
        stream=None,
    ):
        self.run_dir = run_dir
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.bar: keras.utils.Progbar | None = None
        self._last: tuple | None = None
        self.writer = (
            tf.summary.create_file_writer(run_dir.file("tensorboard"))
            if run_dir.chief
            else tf.summary.create_noop_writer()
        )

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def start_epoch(self, epoch: int, batch: int) -> None:
        if self.interactive:
            self.say(f"Epoch {epoch + 1}/{self.epochs}")
            self.bar = keras.utils.Progbar(
                self.steps_per_epoch, stateful_metrics=["accuracy", "mae"]
            )
            self.bar.update(batch)

    def step(self, step: int, batch: int, results: dict[str, float]) -> None:
        if self.bar is not None:
            self._last = (batch, list(results.items()))
            self.bar.update(*self._last)
        if step % 10 == 0:
            with self.writer.as_default():
                _scalar("train/loss", results["loss"], step)

    def end_epoch(self, record: dict, history: list, best: float) -> None:
        """Shows and logs one finished epoch."""
        if self.bar is not None and self._last:
            # Ends the bar's line (a short last epoch stops before its
            # target, and updates are throttled).
            self.bar.update(*self._last, finalize=True)
        self.bar, self._last = None, None
        figures = {
            k: v for k, v in record.items() if k not in ("epoch", "step")
        }
        with self.writer.as_default():
            for key, value in figures.items():
                _scalar(f"epoch/{key}", value, record["epoch"])
        self.writer.flush()
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in figures.items() if k != "examples_per_s"
        )
        self.say(
            f"epoch {record['epoch']}/{self.epochs} (step {record['step']}): "
            f"{shown}, {figures['examples_per_s']:.0f} ex/s"
        )
        if self.run_dir.chief:
            self.run_dir.write(
                "metrics.json", {"history": history, "best": best}
            )
            report.plot_curves(
                history, os.path.join(self.run_dir.path, "curves.png")
            )

    def close(self) -> None:
        self.writer.flush()
