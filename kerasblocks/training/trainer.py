"""The resumable trainer behind `kb-train`.

`train(config)` checks everything it can before it writes anything (the
flags, the run directory, the data, the model), then trains a compiled
step under the chosen tf.distribute strategy with atomic checkpoints
every `checkpoint_every` steps. Run again with the same settings after a
kill, it resumes from the last good checkpoint at the exact next batch
(the data order depends only on the seed and the epoch), so a
deterministic run ends with the same weights as an uninterrupted one. A
non-finite loss stops the run with `NonFiniteLossError` before anything
non-finite is saved.

The run directory is locked for the whole run (a second process on it
gets `RunLockedError`, or waits); SIGINT and SIGTERM stop it after a
step, checkpointed (`Interrupted`); a full disk is `DiskFullError`,
with every checkpoint written before intact.

The pieces live by concern: `rundir` (what a start may do with the
directory), `models` and `objectives` (what is built), `strategies`,
`loop` (the epochs) and `progress` (what is shown and logged).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import keras
import tensorflow as tf

from kerasblocks.compile import compile_train_step
from kerasblocks.data import dataset as data_lib
from kerasblocks.training import (
    deploy,
    jit,
    objectives,
    strategies,
    transfer,
)
from kerasblocks.training.checkpoints import CheckpointManager
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import (
    DiskFullError,
    NonFiniteLossError,
    PeerLostError,
    RunDirectoryError,
    UserInputError,
    disk_full_path,
)
from kerasblocks.training.interrupts import Interrupted, InterruptFlag
from kerasblocks.training.lock import RunLockedError
from kerasblocks.training.loop import Hooks, Loop, Parts, Plan, TrainState
from kerasblocks.training.progress import Progress
from kerasblocks.training.rundir import COMPLETED, RunDirectory

__all__ = [
    "DiskFullError",
    "Hooks",
    "Interrupted",
    "NonFiniteLossError",
    "PeerLostError",
    "RunDirectoryError",
    "RunLockedError",
    "RunResult",
    "train",
]


@dataclasses.dataclass
class RunResult:
    out_dir: str
    completed: bool
    resumed_from: int | None
    steps: int
    history: list[dict]
    skipped: bool = False


def source_kind(name: str) -> str | None:
    """`KIND` of a source form `KIND:WHERE`, or None for a data set name."""
    kind, colon, _ = name.partition(":")
    return kind if colon and kind in data_lib.list_sources() else None


def source_options(config: TrainConfig) -> dict:
    """The options of the run's data set, refusing those that do not
    apply to it (a one-line `UserInputError`)."""
    kind = source_kind(config.dataset)
    if kind is None:
        limit = config.max_image_pixels
        for flag, value in (
            ("image_size", config.image_size),
            ("cache", config.cache),
            ("strict_data", config.strict_data),
            ("max_image_pixels", limit != TrainConfig.max_image_pixels),
            ("channels", config.channels),
        ):
            if value:
                raise UserInputError(
                    f"--{flag} applies to the folder:, tfrecord: and tfds: "
                    f"sources, not --dataset={config.dataset}; drop "
                    f"--{flag}."
                )
        if config.data_dir and not data_lib.reads_files(config.dataset):
            raise UserInputError(
                f"--data_dir does not apply to --dataset={config.dataset}, "
                "which is made in memory; drop --data_dir."
            )
        return {}
    if config.data_dir and kind != "tfds":
        raise UserInputError(
            f"--data_dir does not apply to --dataset={kind}:..., which names "
            "its files itself; drop --data_dir."
        )
    options = {
        "strict": config.strict_data,
        "max_pixels": config.max_image_pixels,
    }
    if config.channels is not None:
        options["channels"] = config.channels
    classes = config.model_overrides.get("num_classes")
    if kind == "tfrecord" and isinstance(classes, int):
        # The model's classes are the class list its labels must fit.
        options["num_classes"] = classes
    if config.image_size is not None:
        options["image_size"] = tuple(config.image_size)
    if config.cache:
        options["cache"] = config.cache
    return options


def load_data(config: TrainConfig, replicas: int) -> data_lib.Dataset:
    """The run's data set, checked against the flags."""
    options = source_options(config)
    dataset = data_lib.load_dataset(config.dataset, config.data_dir, **options)
    if config.batch_size % replicas:
        raise UserInputError(
            f"--batch_size={config.batch_size} must be divisible by the "
            f"{replicas} replicas."
        )
    if config.augment and not dataset.is_image:
        raise UserInputError(
            f"--augment applies to image data sets; {config.dataset} holds "
            "none. Drop --augment."
        )
    if config.label_smoothing and dataset.task != "classification":
        raise UserInputError(
            "--label_smoothing applies to classification; "
            f"{config.dataset} is {dataset.task}. Drop --label_smoothing."
        )
    classes = config.model_overrides.get("num_classes")
    if (
        isinstance(classes, int)
        and dataset.task == "classification"
        and dataset.num_classes
        and dataset.num_classes > classes
    ):
        raise UserInputError(
            f"{config.dataset} has labels up to {dataset.num_classes - 1}, "
            f"outside the model's num_classes={classes}; raise num_classes "
            "in --model_overrides or fix the labels."
        )
    examples = dataset.num_train
    if config.batch_size > examples:
        raise UserInputError(
            f"--batch_size={config.batch_size} is larger than the training "
            f"split of {config.dataset} ({examples} examples); use "
            f"--batch_size={examples} or less."
        )
    return dataset


def build(
    config: TrainConfig,
    strategy: tf.distribute.Strategy,
    recorded_mode: dict | None = None,
) -> Parts:
    """Everything a run trains with, each piece built once: the data
    (checked against the flags), the plan, the start
    (`transfer.start_model`: the model and how it sees data), the loss,
    metric, optimizers and the compiled step (under the strategy).

    Args:
        config: the run's (validated) settings.
        strategy: the tf.distribute strategy.
        recorded_mode: the run directory's `compile.json`, if any.
    """
    dataset = load_data(config, strategy.num_replicas_in_sync)
    steps_per_epoch = dataset.num_train // config.batch_size
    plan = Plan(
        steps_per_epoch, config.steps or config.epochs * steps_per_epoch
    )
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        start = transfer.start_model(config, dataset)
        loss_fn = objectives.build_loss(
            dataset, start.from_logits, config.label_smoothing
        )
        accuracy = objectives.build_accuracy(dataset)
        optimizer, finetune = objectives.build_optimizers(config, plan)
        mode, why = jit.plan_mode(
            config,
            recorded_mode,
            start.model,
            plan.total_steps,
            strategy.num_replicas_in_sync,
        )
        step = compile_train_step(
            start.model,
            optimizer,
            loss_fn,
            mode=mode,
            strategy=strategy,
            metrics=[accuracy],
        )
    return Parts(start, step, loss_fn, accuracy, dataset, plan, why, finetune)


def train(
    config: TrainConfig,
    *,
    hooks: Hooks | None = None,
    collective_timeout: float = 45.0,
    stream=None,
    wait_for_lock: bool = False,
    allow_flag_changes: bool = False,
) -> RunResult:
    """Trains (or resumes, or skips a completed run) per `config`.

    Args:
        config: the run's settings.
        hooks: calls into the run (tests inject faults through these).
        collective_timeout: seconds a multi-worker collective waits.
        stream: where progress goes (stdout by default).
        wait_for_lock: wait for another process training in the run
            directory to finish, instead of refusing.
        allow_flag_changes: resume with settings that change what is
            trained (recorded in flags.json with the step they took
            effect).

    Raises:
        UserInputError: a flag, file or data set that cannot work;
            nothing was written.
        RunLockedError: another process trains in the run directory.
        NonFiniteLossError: the loss diverged; the last good checkpoint
            is kept.
        Interrupted: SIGINT or SIGTERM; the step reached is checkpointed.
        DiskFullError: the disk filled; what was written before is
            intact.
        PeerLostError: a multi-worker run lost a peer.
    """
    config = config.validate()
    strategy = strategies.build_strategy(
        config.strategy, collective_timeout=collective_timeout
    )
    chief = strategies.is_chief(strategy)
    run_dir = RunDirectory(config, chief)
    # A worker stopping alone would leave its peers waiting in their
    # collectives: under several workers, signals keep their effect.
    interrupt = (
        contextlib.nullcontext()
        if strategies.is_multi_worker(strategy)
        else InterruptFlag()
    )
    with run_dir.lock(wait=wait_for_lock, stream=stream), interrupt as flag:
        return _train_locked(
            config,
            strategy,
            run_dir,
            hooks or Hooks(),
            stream,
            allow_flag_changes,
            flag,
        )


def _train_locked(
    config, strategy, run_dir, hooks, stream, allow_flag_changes, interrupt
) -> RunResult:
    if run_dir.is_completed():
        print(
            f"{config.out_dir} is already completed; pass --overwrite to "
            "train again.",
            file=stream,
        )
        return RunResult(config.out_dir, True, None, 0, [], skipped=True)
    run_dir.check(allow_flag_changes)
    parts = build(config, strategy, run_dir.read(jit.RECORD))
    for line in (parts.start.line, parts.start.adapted):
        if line:
            print(line, file=stream)
    plan, step = parts.plan, parts.train_step
    try:
        run_dir.start(parts.start.record)
        manager = CheckpointManager(
            run_dir.file("checkpoints"),
            keep=config.keep_checkpoints,
            is_chief=run_dir.chief,
        )
        found = manager.latest()
        progress = Progress(run_dir, plan.epochs, plan.steps_per_epoch, stream)
        record_mode = functools.partial(run_dir.write, jit.RECORD)
        if step.mode is not None and run_dir.read(jit.RECORD) is None:
            record_mode({"mode": step.mode, "reason": parts.mode_reason})
        if step.mode is not None and config.jit_compile == "auto":
            progress.say(f"jit_compile=auto: {step.mode} ({parts.mode_reason})")
        loop = Loop(
            config, parts, strategy, manager, progress, hooks, record_mode
        )
        loop.interrupt = interrupt
        state = TrainState() if found is None else loop.resume(*found)
        if found is not None:
            run_dir.record_resume(state.step)
        resumed_from = None if found is None else state.step
        state = loop.run(state)
        progress.close()
        if hooks.on_finish:
            hooks.on_finish(parts.model, strategy)
        if run_dir.chief:
            exports = deploy.export_run(config, parts.dataset, parts.start)
            run_dir.write(
                COMPLETED,
                {
                    "steps": state.step,
                    "history": state.history,
                    "exports": exports,
                },
            )
        return RunResult(
            config.out_dir, True, resumed_from, state.step, state.history
        )
    except BaseException as error:
        run_dir.abandon()
        if isinstance(
            error, strategies.PEER_ERRORS
        ) and strategies.is_multi_worker(strategy):
            message = strategies.describe_peer_failure(error)
            raise PeerLostError(message) from error
        path = disk_full_path(error)
        if path is not None:
            raise DiskFullError.of_checkpoint(
                path or config.out_dir,
                parts.model,
                (parts.train_step.optimizer, parts.finetune_optimizer),
            ) from None
        raise
