"""The training loop: epochs of compiled steps, checkpoints, evaluation.

`TrainState` is everything a checkpoint needs to resume at the exact
next batch (its `state.json`); `Loop.run` advances it to the planned
step count.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks.compile import compile_train_step
from kerasblocks.data import dataset as data_lib
from kerasblocks.training import objectives, transfer
from kerasblocks.training.checkpoints import CheckpointManager
from kerasblocks.training.errors import NonFiniteLossError
from kerasblocks.training.interrupts import Interrupted, InterruptFlag
from kerasblocks.training.progress import Progress


@dataclasses.dataclass
class TrainState:
    """Where a run is; saved with every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    history: list[dict] = dataclasses.field(default_factory=list)
    best: float | None = None
    loss_sum: float = 0.0
    batches_in_epoch: int = 0
    epoch_start_step: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Plan:
    """How long the run is."""

    steps_per_epoch: int
    total_steps: int

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)


@dataclasses.dataclass
class Hooks:
    """Calls into a run, for tests and tools (fault injection, checks).

    Attributes:
        after_step: called with the step number after every step.
        on_finish: called with the model and strategy when training is
            done, before the exports.
    """

    after_step: Callable[[int], None] | None = None
    on_finish: Callable[[keras.Model, tf.distribute.Strategy], None] | None = (
        None
    )


@dataclasses.dataclass
class Parts:
    """The built pieces of a run: its start (the model and how it sees
    data, `transfer.Start`) and what trains it."""

    start: transfer.Start
    train_step: Any  # a kerasblocks.compile CompiledTrainStep
    loss_fn: Callable
    accuracy: keras.metrics.Metric
    dataset: data_lib.Dataset
    plan: Plan
    mode_reason: str = ""
    # The optimizer of the epochs after --unfreeze_at_epoch (its own
    # slots, its rate scaled), in every checkpoint from the start.
    finetune_optimizer: Any = None

    @property
    def model(self) -> keras.Model:
        return self.start.model

    @property
    def image_shape(self) -> tuple | None:
        return self.start.image_shape


def _all_finite(model: keras.Model) -> bool:
    for variable in model.weights:
        value = np.asarray(variable.numpy())
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return False
    return True


class Loop:
    """Trains `parts` from `state` to `plan.total_steps`."""

    def __init__(
        self,
        config,
        parts: Parts,
        strategy: tf.distribute.Strategy,
        manager: CheckpointManager,
        progress: Progress,
        hooks: Hooks,
        record_mode: Callable[[dict], None],
    ):
        self.config, self.parts, self.strategy = config, parts, strategy
        self.plan, self.manager, self.progress = parts.plan, manager, progress
        self.hooks = hooks
        self.record_mode = record_mode
        # Set by the trainer: SIGINT/SIGTERM stop the run after a step.
        self.interrupt: InterruptFlag | None = None
        self.saved_step: int | None = None
        self.counter = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.objects = {
            "model": parts.model,
            "optimizer": parts.train_step.optimizer,
            "step": self.counter,
            # The epoch's running accuracy, so a resumed epoch reports
            # the same figures as an uninterrupted one.
            "metric": [v.value for v in parts.accuracy.variables],
        }
        if parts.finetune_optimizer is not None:
            self.objects["finetune_optimizer"] = parts.finetune_optimizer
        self.freeze = parts.start.freeze.at(0)
        self.val_pipeline = data_lib.make_pipeline(
            parts.dataset,
            "val",
            config.batch_size,
            image_shape=parts.image_shape,
            pixels=parts.start.pixels,
            **parts.start.eval_view,
        )

    def enter_epoch(self, epoch: int) -> bool:
        """Applies the freeze mode of 0-based `epoch`; True when that
        unfroze the model. Unfreezing makes new variables trainable, so
        the step is rebuilt around the fine-tuning optimizer (whose
        slots then cover them)."""
        mode = self.parts.start.freeze.at(epoch)
        if mode == self.freeze:
            return False
        parts, step = self.parts, self.parts.train_step
        transfer.apply_freeze(parts.model, mode)
        self.freeze = mode
        with self.strategy.scope():
            parts.train_step = compile_train_step(
                parts.model,
                parts.finetune_optimizer,
                parts.loss_fn,
                mode=step.choice.mode if step.choice is not None else step.mode,
                strategy=self.strategy,
                metrics=[parts.accuracy],
            )
        return True

    def say_unfrozen(self, epoch: int) -> None:
        self.progress.say(
            f"epoch {epoch + 1}: the whole model trains from here, at "
            f"{self.config.finetune_lr_scale:g} x the learning rate"
        )

    def restore(self, path: str, state: dict) -> TrainState:
        self.manager.restore(path, self.objects)
        restored = TrainState.from_dict(state)
        self.saved_step = restored.step
        return restored

    def resume(self, path: str, saved: dict) -> TrainState:
        """Restores the checkpoint at `path` (whose state.json holds
        `saved`) into the frozen part and optimizer of its epoch, and
        says so."""
        config, parts = self.config, self.parts
        # The frozen part follows from the epoch, and decides which
        # optimizer state the checkpoint restores into.
        if self.enter_epoch(int(saved.get("epoch", 0))):
            self.say_unfrozen(int(saved.get("epoch", 0)))
        state = self.restore(path, saved)
        if config.schedule == "constant":
            # The restored optimizer carries the old rate; a resumed run
            # may lower it (after a non-finite loss, say).
            rate = config.learning_rate
            if parts.train_step.optimizer is parts.finetune_optimizer:
                rate *= config.finetune_lr_scale
            parts.train_step.optimizer.learning_rate = rate
        self.progress.say(
            f"resuming from {os.path.basename(path)} (step {state.step})"
        )
        return state

    def save(self, state: TrainState, is_best: bool = False) -> None:
        if not _all_finite(self.parts.model):
            raise NonFiniteLossError(
                f"non-finite weights at epoch {state.epoch + 1} step "
                f"{state.step}; not saving."
            )
        self.counter.assign(state.step)
        self.manager.save(state.step, self.objects, state.to_dict(), is_best)
        self.saved_step = state.step

    def _ends_epoch(self, state: TrainState) -> bool:
        return (
            state.batch >= self.plan.steps_per_epoch
            or state.step >= self.plan.total_steps
        )

    def _interrupted(self) -> bool:
        return self.interrupt is not None and self.interrupt.signum is not None

    def _stop(self, state: TrainState) -> None:
        """Checkpoints the step reached (unless it is) and stops."""
        if self.saved_step != state.step and state.step > 0:
            self.save(state)
        raise Interrupted(state.step, self.interrupt.signum)

    def run(self, state: TrainState) -> TrainState:
        """Trains to the planned step count.

        Raises:
            Interrupted: a signal asked to stop; the step reached is
                checkpointed.
        """
        if self._interrupted():  # before anything was trained
            raise Interrupted(state.step, self.interrupt.signum)
        while state.step < self.plan.total_steps:
            seen, seconds = self._train_epoch(state)
            if self._ends_epoch(state):
                self._end_epoch(state, seen, seconds)
            if self._interrupted():
                self._stop(state)
        return state

    def _train_epoch(self, state: TrainState) -> tuple[int, float]:
        config, parts = self.config, self.parts
        if state.batch == 0:
            parts.accuracy.reset_state()
            state.loss_sum, state.batches_in_epoch = 0.0, 0
            state.epoch_start_step = state.step
        iterator = iter(self._distributed_pipeline(state))
        self.progress.start_epoch(state.epoch, state.batch)
        started, seen = time.perf_counter(), 0
        while (
            state.batch < self.plan.steps_per_epoch
            and state.step < self.plan.total_steps
        ):
            try:
                results = self._step(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                self._end_short_epoch(state)
                break
            state.step += 1
            state.batch += 1
            seen += config.batch_size
            if not math.isfinite(results["loss"]):
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {state.epoch + 1} step "
                    f"{state.step} (loss={results['loss']}); the last good "
                    "checkpoint is kept. Resume with a lower "
                    "--learning_rate and --allow_flag_changes."
                )
            state.loss_sum += results["loss"]
            state.batches_in_epoch += 1
            if self.hooks.after_step:
                self.hooks.after_step(state.step)
            self.progress.step(state.step, state.batch, results)
            # An epoch's last step is checkpointed by `_end_epoch`, with
            # the epoch's results: a step is never checkpointed twice.
            if state.step % config.checkpoint_every == 0 and not (
                self._ends_epoch(state)
            ):
                self.save(state)
            if self._interrupted():
                break
        return seen, time.perf_counter() - started

    @property
    def workers(self) -> int:
        """The strategy's worker count (only the multi-worker strategies
        know theirs)."""
        return getattr(self.strategy.extended, "_num_workers", 1)

    def _end_short_epoch(self, state: TrainState) -> None:
        """The epoch's data ran out before its last batch (an image that
        failed to decode was dropped in the pipeline). Alone, says so and
        moves the step counter to the epoch's planned end, so the schedule
        and the epoch count stay as planned; one of several workers
        raises `DataError` instead."""
        planned = self.plan.steps_per_epoch
        if self.workers > 1:
            # The other workers' steps would pair with this one's next
            # epoch in their collectives: stop (they stop at the
            # collective timeout, as for a lost worker); a rerun opens
            # and checks the data again, and resumes.
            raise data_lib.DataError(
                f"epoch {state.epoch + 1}: this worker's share ended after "
                f"{state.batch} of {planned} batches (an example could not "
                "be decoded); rerun to check the data again and resume."
            )
        warnings.warn(
            f"epoch {state.epoch + 1} ended after {state.batch} of "
            f"{planned} batches: some examples could not be decoded and "
            "were dropped; check the data (kb-prepare finds them).",
            stacklevel=2,
        )
        skipped = min(planned - state.batch, self.plan.total_steps - state.step)
        state.step += skipped
        state.batch += skipped

    def _distributed_pipeline(self, state: TrainState):
        """The epoch's batches from `state.batch` on, under the strategy.

        With several workers of one replica each, every worker builds its
        own pipeline over its shard of the epoch's order (so it decodes
        only its share); the workers' batches `k` together are the global
        batch `k`. Otherwise the global batches are split across replicas.
        """
        config, parts = self.config, self.parts
        pipeline = functools.partial(
            data_lib.make_pipeline,
            parts.dataset,
            "train",
            image_shape=parts.image_shape,
            shuffle_seed=config.seed,
            epoch=state.epoch,
            augment=config.augment,
            drop_remainder=True,
            start_batch=state.batch,
            pixels=parts.start.pixels,
        )
        workers = self.workers
        if workers > 1 and workers == self.strategy.num_replicas_in_sync:

            def per_worker(context: tf.distribute.InputContext):
                return pipeline(
                    context.get_per_replica_batch_size(config.batch_size),
                    shard=(
                        context.num_input_pipelines,
                        context.input_pipeline_id,
                    ),
                )

            return self.strategy.distribute_datasets_from_function(per_worker)
        return self.strategy.experimental_distribute_dataset(
            pipeline(config.batch_size)
        )

    def _step(self, iterator) -> dict[str, float]:
        """One step; the first one says (and records) the compile mode."""
        step = self.parts.train_step
        if step.choice is not None:
            return step.run(iterator, 1)
        self.progress.say(
            "jit_compile=auto: timing graph against XLA on the first batch "
            "(compiles the step twice)..."
        )
        results = step.run(iterator, 1)
        self.progress.say(f"jit_compile=auto: {step.choice}")
        self.record_mode({"mode": step.choice.mode, "reason": str(step.choice)})
        return results

    def _end_epoch(self, state: TrainState, seen: int, seconds: float) -> None:
        parts = self.parts
        name = parts.accuracy.name
        evaluation = objectives.evaluate(
            parts.model, self.val_pipeline, parts.loss_fn, parts.dataset
        )
        record = {
            "epoch": state.epoch + 1,
            "step": state.step,
            "train_loss": state.loss_sum / max(state.batches_in_epoch, 1),
            f"train_{name}": float(parts.accuracy.result()),
            "val_loss": evaluation["loss"],
            f"val_{name}": evaluation[name],
            "examples_per_s": seen / max(seconds, 1e-9),
        }
        state.history.append(record)
        key = (
            "val_loss" if parts.dataset.task == "regression" else f"val_{name}"
        )
        lower_is_better = key == "val_loss"
        better = state.best is None or (
            record[key] < state.best
            if lower_is_better
            else record[key] > state.best
        )
        if better:
            state.best = record[key]
        state.epoch += 1
        state.batch = 0
        # Before the save, so that a checkpoint holds the optimizer state
        # of the epoch it resumes in.
        unfrozen = self.enter_epoch(state.epoch)
        self.save(state, is_best=better)
        self.progress.end_epoch(record, state.history, state.best)
        if unfrozen and state.step < self.plan.total_steps:
            self.say_unfrozen(state.epoch)
