"""What a run optimizes and reports: optimizer, loss, metric, evaluation."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import tensorflow as tf

from kerasblocks.compile import compile_forward
from kerasblocks.data import dataset as data_lib
from kerasblocks.training.config import TrainConfig

_OPTIMIZERS = {
    "sgd": lambda rate, decay: keras.optimizers.SGD(rate, weight_decay=decay),
    "momentum": lambda rate, decay: keras.optimizers.SGD(
        rate, momentum=0.9, nesterov=True, weight_decay=decay
    ),
    "adam": lambda rate, decay: keras.optimizers.Adam(rate, weight_decay=decay),
    # AdamW's own default decay (4e-3) would apply when given None;
    # 0.0 means none, as the flag says.
    "adamw": lambda rate, decay: keras.optimizers.AdamW(
        rate, weight_decay=decay or 0.0
    ),
    "rmsprop": lambda rate, decay: keras.optimizers.RMSprop(
        rate, weight_decay=decay
    ),
}


def learning_rate(config: TrainConfig, total_steps: int) -> Any:
    """The rate, or the schedule over `total_steps`, of `--schedule`."""
    rate = config.learning_rate
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, total_steps)
    if config.schedule == "warmup_cosine":
        warmup = max(1, total_steps // 20)
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            max(1, total_steps - warmup),
            warmup_target=rate,
            warmup_steps=warmup,
        )
    if config.schedule == "step":
        boundaries = [int(total_steps * 0.5), int(total_steps * 0.75)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [rate, rate * 0.1, rate * 0.01]
        )
    return rate


def build_optimizer(config: TrainConfig, total_steps: int):
    """The `--optimizer` with exactly the `--weight_decay` given."""
    decay = config.weight_decay or None
    return _OPTIMIZERS[config.optimizer](
        learning_rate(config, total_steps), decay
    )


def build_optimizers(config: TrainConfig, plan) -> tuple[Any, Any]:
    """The run's optimizer and, with `--unfreeze_at_epoch`, the one of
    the epochs after it (its own slots, the rate scaled by
    `--finetune_lr_scale`, its schedule over the steps left); else
    None. `plan` is the run's `loop.Plan`."""
    optimizer = build_optimizer(config, plan.total_steps)
    if config.unfreeze_at_epoch is None:
        return optimizer, None
    frozen = (config.unfreeze_at_epoch - 1) * plan.steps_per_epoch
    scaled = dataclasses.replace(
        config, learning_rate=config.learning_rate * config.finetune_lr_scale
    )
    return optimizer, build_optimizer(scaled, max(1, plan.total_steps - frozen))


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


def build_accuracy(dataset: data_lib.Dataset) -> keras.metrics.Metric:
    """Accuracy, or mean absolute error for regression."""
    if dataset.task == "regression":
        return keras.metrics.MeanAbsoluteError(name="mae")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def evaluate(
    model: keras.Model,
    pipeline,
    loss_fn,
    dataset: data_lib.Dataset,
    forward=None,
) -> dict[str, float]:
    """Mean loss and accuracy (or MAE) of `model` over a pipeline.

    Args:
        forward: the compiled forward pass to use; by default one is
            compiled (graph mode, dynamic batch).
    """
    metric = build_accuracy(dataset)
    forward = forward or compile_forward(model, mode="graph")
    total, count = 0.0, 0
    for x, y in pipeline:
        prediction = forward(x)
        losses = loss_fn(y, prediction)
        total += float(tf.reduce_sum(tf.cast(losses, tf.float32)))
        count += int(tf.shape(losses)[0])
        metric.update_state(y, prediction)
    return {"loss": total / max(count, 1), metric.name: float(metric.result())}
