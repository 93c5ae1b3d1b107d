"""The resumable trainer behind `kb-train`.

`train(config)` builds the model from the zoo, the data pipeline, and a
`kerasblocks.compile` train step under the chosen tf.distribute
strategy, then trains with atomic checkpoints every `checkpoint_every`
steps. Run again with the same settings after a kill, it resumes from
the last good checkpoint at the exact next batch (the data order depends
only on the seed and the epoch), so a deterministic run ends with the
same weights as an uninterrupted one. A non-finite loss stops the run
with `NonFiniteLossError` before anything non-finite is saved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from kerasblocks.compile import compile_train_step
from kerasblocks.io._atomic import atomic_path
from kerasblocks.training import data as data_lib
from kerasblocks.training import report
from kerasblocks.training.checkpoints import CheckpointManager
from kerasblocks.training.config import TrainConfig


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class RunDirectoryError(ValueError):
    """The run directory holds something else than this run."""


@dataclasses.dataclass
class RunResult:
    out_dir: str
    completed: bool
    resumed_from: int | None
    steps: int
    history: list[dict]
    skipped: bool = False


# -- pieces ---------------------------------------------------------------


def build_strategy(name: str) -> tf.distribute.Strategy:
    """A tf.distribute strategy by `--strategy` name."""
    from kerasblocks.devices import strategy

    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "--strategy=multi_worker needs TF_CONFIG describing the "
                "cluster and this worker's task."
            )
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(
                os.environ.get("KB_COLLECTIVE_TIMEOUT", "45")
            ),
        )
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=options
        )
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as error:
            raise ValueError(
                f"--strategy=tpu: no TPU found ({error})"
            ) from None
        return tf.distribute.TPUStrategy(resolver)
    return strategy(name)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def build_optimizer(config: TrainConfig, total_steps: int):
    rate: Any = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, total_steps)
    elif config.schedule == "warmup_cosine":
        warmup = max(1, total_steps // 20)
        rate = keras.optimizers.schedules.CosineDecay(
            0.0,
            max(1, total_steps - warmup),
            warmup_target=config.learning_rate,
            warmup_steps=warmup,
        )
    elif config.schedule == "step":
        boundaries = [int(total_steps * 0.5), int(total_steps * 0.75)]
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [rate, rate * 0.1, rate * 0.01]
        )
    decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, weight_decay=decay)
    if config.optimizer == "momentum":
        return keras.optimizers.SGD(
            rate, momentum=0.9, nesterov=True, weight_decay=decay
        )
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(
            rate, weight_decay=config.weight_decay or 1e-4
        )
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate, weight_decay=decay)
    return keras.optimizers.Adam(rate, weight_decay=decay)


def outputs_logits(model: keras.Model) -> bool:
    """Whether the model ends without a softmax (so it outputs logits)."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return activation not in (
        keras.activations.softmax,
        keras.activations.sigmoid,
    )


def build_loss(dataset: data_lib.Dataset, from_logits: bool, smoothing: float):
    """Per-example loss for the data set's task."""
    if dataset.task == "regression":
        return keras.losses.mean_squared_error
    if dataset.task == "token_classification":
        pad = dataset.pad_id

        def token_loss(y_true, y_pred):
            y_true = tf.cast(y_true, tf.int32)
            per_token = keras.losses.sparse_categorical_crossentropy(
                y_true, y_pred, from_logits=from_logits
            )
            if pad is None:
                return tf.reduce_mean(per_token, axis=-1)
            mask = tf.cast(tf.not_equal(y_true, pad), per_token.dtype)
            return tf.reduce_sum(per_token * mask, -1) / tf.maximum(
                tf.reduce_sum(mask, -1), 1.0
            )

        return token_loss
    classes = dataset.num_classes

    def classification_loss(y_true, y_pred):
        if smoothing:
            targets = tf.one_hot(tf.cast(y_true, tf.int32), classes)
            return keras.losses.categorical_crossentropy(
                targets,
                y_pred,
                from_logits=from_logits,
                label_smoothing=smoothing,
            )
        return keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=from_logits
        )

    return classification_loss


def build_accuracy(dataset: data_lib.Dataset):
    if dataset.task == "regression":
        return keras.metrics.MeanAbsoluteError(name="mae")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def create_model(config: TrainConfig, dataset: data_lib.Dataset) -> keras.Model:
    import zoo

    overrides = dict(dataset.info.get("model_overrides", {}))
    entry = zoo.get_model_entry(config.model)
    if entry.task == "image" and dataset.task == "classification":
        overrides.setdefault("num_classes", dataset.num_classes)
    overrides.update(config.model_overrides)
    previous = keras.config.dtype_policy()
    policy = {
        "none": None,
        "float16": "mixed_float16",
        "bfloat16": "mixed_bfloat16",
    }
    if policy[config.mixed_precision]:
        keras.config.set_dtype_policy(policy[config.mixed_precision])
    try:
        return zoo.create_model(config.model, **overrides)
    finally:
        keras.config.set_dtype_policy(previous)


def _image_shape(model: keras.Model, dataset: data_lib.Dataset):
    if not dataset.is_image:
        return None
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4:
        raise ValueError(
            f"{dataset.name} holds images but the model takes {shape}; "
            "choose an image model."
        )
    return tuple(shape[1:])


# -- the run ----------------------------------------------------------------


class _Progress:
    """One line per update on a terminal (redrawn), else every 10%."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.last_tenth = -1

    def update(self, done: int, text: str) -> None:
        width = 24
        filled = int(width * done / max(self.total, 1))
        bar = (
            "=" * filled
            + (">" if filled < width else "")
            + "." * (width - filled - 1)
        )
        line = f"[{bar}] {done}/{self.total} {text}"
        if self.tty:
            self.stream.write("\r" + line[:160])
            if done >= self.total:
                self.stream.write("\n")
        else:
            tenth = int(10 * done / max(self.total, 1))
            if tenth != self.last_tenth or done >= self.total:
                self.last_tenth = tenth
                self.stream.write(line + "\n")
        self.stream.flush()


def _prepare_directory(config: TrainConfig, chief: bool) -> bool:
    """Returns True if the run already completed (and must not rerun)."""
    out = config.out_dir
    flags_path = os.path.join(out, "flags.json")
    if config.overwrite and os.path.exists(out) and chief:
        looks_like_run = not os.listdir(out) or os.path.exists(flags_path)
        if not looks_like_run:
            raise RunDirectoryError(
                f"{out} exists and is not a run directory; refusing to "
                "overwrite it."
            )
        shutil.rmtree(out)
    if os.path.exists(os.path.join(out, "COMPLETED")):
        return True
    if os.path.exists(flags_path):
        with open(flags_path) as f:
            saved = TrainConfig.from_dict(json.load(f))
        changed = config.differences(saved)
        if changed:
            raise RunDirectoryError(
                f"{out} holds a run with different settings "
                f"({', '.join(changed)}); use another --out_dir, or "
                "--overwrite to start afresh."
            )
    os.makedirs(out, exist_ok=True)
    return False


def _write_json(path: str, value) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(value, f, indent=1, sort_keys=True, default=float)
            f.write("\n")


def _all_finite(model: keras.Model) -> bool:
    for variable in model.weights:
        value = np.asarray(variable.numpy())
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return False
    return True


def describe_peer_failure(error: BaseException) -> str:
    """One line naming the peer a multi-worker run lost (from the error,
    or else every other task of TF_CONFIG)."""
    import re

    text = str(error)
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}")
    me = cluster.get("task", {})
    peers = [
        f"{kind} {index} ({address})"
        for kind, addresses in cluster.get("cluster", {}).items()
        for index, address in enumerate(addresses)
        if not (kind == me.get("type") and index == me.get("index"))
    ]
    named = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text)
    named = [
        p
        for p in peers
        if any(p.startswith(f"{job} {task} ") for job, task in named)
    ]
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    who = ", ".join(named or peers) or "a peer"
    return (
        f"lost contact with {who}: a collective failed or timed out "
        f"({type(error).__name__}: {first})"
    )


def _dump_final_weights(model, strategy) -> None:
    """KB_FINAL_WEIGHTS_DIR=D makes every worker write its final weights
    to D/<task>-<index>.weights, so a multi-worker test (or a user) can
    check that all workers ended identical."""
    directory = os.environ.get("KB_FINAL_WEIGHTS_DIR")
    if not directory:
        return
    from kerasblocks.io import save_weights

    resolver = getattr(strategy, "cluster_resolver", None)
    task = (
        f"{resolver.task_type}-{resolver.task_id}"
        if resolver is not None and resolver.task_type
        else "local-0"
    )
    os.makedirs(directory, exist_ok=True)
    save_weights(model, os.path.join(directory, f"{task}.weights"))


def _fault_injection(step: int) -> None:
    """For the fault-tolerance tests: KB_FAULT_KILL_AT_STEP=N makes the
    process kill itself (SIGKILL, as an outage would) after step N."""
    kill_at = os.environ.get("KB_FAULT_KILL_AT_STEP")
    if kill_at and step == int(kill_at):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


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


def evaluate(
    model, pipeline, loss_fn, dataset, forward=None
) -> dict[str, float]:
    """Mean loss and accuracy (or MAE) of `model` over a pipeline."""
    metric = build_accuracy(dataset)
    forward = forward or tf.function(lambda x: model(x, training=False))
    total, count = 0.0, 0
    for x, y in pipeline:
        prediction = forward(x)
        losses = loss_fn(y, prediction)
        total += float(tf.reduce_sum(losses))
        count += int(tf.shape(losses)[0])
        metric.update_state(y, prediction)
    return {"loss": total / max(count, 1), metric.name: float(metric.result())}


def train(config: TrainConfig, *, stream=sys.stderr) -> RunResult:
    """Trains (or resumes, or skips a completed run) per `config`."""
    config = config.validate()
    strategy = build_strategy(config.strategy)
    chief = is_chief(strategy)
    if _prepare_directory(config, chief):
        print(
            f"{config.out_dir} is already completed; pass --overwrite to "
            "train again.",
            file=stream,
        )
        return RunResult(config.out_dir, True, None, 0, [], skipped=True)
    if chief:
        _write_json(
            os.path.join(config.out_dir, "flags.json"),
            json.loads(config.to_json()),
        )
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    dataset = data_lib.load_dataset(config.dataset, config.data_dir)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"--batch_size={config.batch_size} must be divisible by the "
            f"{replicas} replicas."
        )
    with strategy.scope():
        model = create_model(config, dataset)
        image_shape = _image_shape(model, dataset)
        steps_per_epoch = max(1, len(dataset.y_train) // config.batch_size)
        total_steps = config.steps or config.epochs * steps_per_epoch
        epochs = math.ceil(total_steps / steps_per_epoch)
        optimizer = build_optimizer(config, total_steps)
        from_logits = outputs_logits(model)
        loss_fn = build_loss(dataset, from_logits, config.label_smoothing)
        accuracy = build_accuracy(dataset)
        mode = {"auto": "auto", "true": "xla", "false": "graph"}[
            config.jit_compile
        ]
        if mode == "auto" and replicas > 1:
            mode = "graph"  # "auto" measures on one replica's batch
        step = compile_train_step(
            model,
            optimizer,
            loss_fn,
            mode=mode,
            strategy=strategy,
            metrics=[accuracy],
        )
    if chief:
        _write_json(
            os.path.join(config.out_dir, "model_config.json"),
            {
                "model": config.model,
                "config": keras.saving.serialize_keras_object(model),
            },
        )
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)
    objects = {
        "model": model,
        "optimizer": step.optimizer,
        "step": counter,
        # The epoch's running accuracy, so a resumed epoch reports the
        # same figures as an uninterrupted one.
        "metric": [v.value for v in accuracy.variables],
    }
    manager = CheckpointManager(
        os.path.join(config.out_dir, "checkpoints"),
        keep=config.keep_checkpoints,
        is_chief=chief,
    )
    state = {
        "step": 0,
        "epoch": 0,
        "batch": 0,
        "history": [],
        "best": None,
        "loss_sum": 0.0,
        "batches_in_epoch": 0,
    }
    found = manager.latest()
    resumed_from = None
    if found is not None:
        path, state = found
        manager.restore(path, objects)
        resumed_from = state["step"]
        if config.schedule == "constant":
            # The restored optimizer carries the old rate; a resumed run
            # may lower it (after a non-finite loss, say).
            step.optimizer.learning_rate = config.learning_rate
        print(
            f"resuming from {os.path.basename(path)} (step {resumed_from})",
            file=stream,
        )
    writer = (
        tf.summary.create_file_writer(
            os.path.join(config.out_dir, "tensorboard")
        )
        if chief
        else tf.summary.create_noop_writer()
    )
    progress = _Progress(total_steps, stream)
    val_pipeline = data_lib.make_pipeline(
        dataset, "val", config.batch_size, image_shape=image_shape
    )

    def save(is_best=False):
        if not _all_finite(model):
            raise NonFiniteLossError(
                f"non-finite weights at epoch {state['epoch'] + 1} step "
                f"{state['step']}; not saving."
            )
        counter.assign(state["step"])
        manager.save(state["step"], objects, state, is_best=is_best)

    while state["step"] < total_steps:
        epoch = state["epoch"]
        if state["batch"] == 0:
            accuracy.reset_state()
            state["loss_sum"], state["batches_in_epoch"] = 0.0, 0
            state["epoch_start_step"] = state["step"]
        pipeline = data_lib.make_pipeline(
            dataset,
            "train",
            config.batch_size,
            image_shape=image_shape,
            shuffle_seed=config.seed,
            epoch=epoch,
            augment=config.augment,
            drop_remainder=True,
            start_batch=state["batch"],
        )
        iterator = iter(strategy.experimental_distribute_dataset(pipeline))
        started, seen = time.perf_counter(), 0
        while state["batch"] < steps_per_epoch and state["step"] < total_steps:
            results = step.run(iterator, 1)
            loss = results["loss"]
            state["step"] += 1
            state["batch"] += 1
            seen += config.batch_size
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {epoch + 1} step {state['step']}"
                    f" (loss={loss}); the last good checkpoint is kept."
                )
            state["loss_sum"] += loss
            state["batches_in_epoch"] += 1
            _fault_injection(state["step"])
            rate = seen / max(time.perf_counter() - started, 1e-9)
            progress.update(
                state["step"],
                f"epoch {epoch + 1}/{epochs} loss {loss:.4f} "
                f"{accuracy.name} {results.get(accuracy.name, 0):.3f} "
                f"{rate:.0f} ex/s",
            )
            if state["step"] % 10 == 0:
                with writer.as_default():
                    _scalar("train/loss", loss, state["step"])
            if state["step"] % config.checkpoint_every == 0:
                save()
        if state["batch"] >= steps_per_epoch or state["step"] >= total_steps:
            seconds = time.perf_counter() - started
            evaluation = evaluate(model, val_pipeline, loss_fn, dataset)
            record = {
                "epoch": epoch + 1,
                "step": state["step"],
                "train_loss": state["loss_sum"]
                / max(state["batches_in_epoch"], 1),
                f"train_{accuracy.name}": float(accuracy.result()),
                "val_loss": evaluation["loss"],
                f"val_{accuracy.name}": evaluation[accuracy.name],
                "examples_per_s": seen / max(seconds, 1e-9),
            }
            state["history"].append(record)
            with writer.as_default():
                for key, value in record.items():
                    if key not in ("epoch", "step"):
                        _scalar(f"epoch/{key}", value, record["epoch"])
            key = (
                "val_loss"
                if dataset.task == "regression"
                else f"val_{accuracy.name}"
            )
            better = state["best"] is None or (
                record[key] < state["best"]
                if key == "val_loss"
                else record[key] > state["best"]
            )
            if better:
                state["best"] = record[key]
            state["epoch"] += 1
            state["batch"] = 0
            save(is_best=better)
            if chief:
                _write_json(
                    os.path.join(config.out_dir, "metrics.json"),
                    {"history": state["history"], "best": state["best"]},
                )
                report.plot_curves(
                    state["history"], os.path.join(config.out_dir, "curves.png")
                )
            print(
                f"epoch {record['epoch']}: "
                + ", ".join(
                    f"{k} {v:.4f}"
                    for k, v in record.items()
                    if k not in ("epoch", "step")
                ),
                file=stream,
            )
    writer.flush()
    _dump_final_weights(model, strategy)
    if chief:
        exports = report.export_all(model, config.out_dir, config.export)
        _write_json(
            os.path.join(config.out_dir, "COMPLETED"),
            {
                "steps": state["step"],
                "history": state["history"],
                "exports": exports,
            },
        )
    return RunResult(
        config.out_dir, True, resumed_from, state["step"], state["history"]
    )
