"""Reading a run directory back: its settings, model and checkpoints."""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np

from kerasblocks.compile import compile_forward
from kerasblocks.data import dataset as data_lib
from kerasblocks.training import models, objectives, report
from kerasblocks.training import record as record_lib
from kerasblocks.training.checkpoints import CheckpointManager
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError
from kerasblocks.training.record import RunRecord


def read_config(run_dir: str) -> TrainConfig:
    """The settings a run was started with (its flags.json)."""
    path = os.path.join(run_dir, "flags.json")
    if not os.path.exists(path):
        raise UserInputError(
            f"{run_dir}: not a run directory (no flags.json); give a run "
            "directory written by kb-train or a saved model file."
        )
    try:
        with open(path) as f:
            return TrainConfig.from_dict(json.load(f))
    except (ValueError, TypeError) as error:
        raise UserInputError(f"{path} is unreadable ({error}).") from None


@dataclasses.dataclass(frozen=True)
class Run:
    """A run read back: its settings, its record and its model.

    Attributes:
        config: the settings it was started with (flags.json).
        record: its `model_config.json` (`RunRecord`).
        model: its model, with the weights of one checkpoint.
        checkpoint: the path of that checkpoint.
    """

    config: TrainConfig
    record: RunRecord
    model: keras.Model
    checkpoint: str


def open_run(run_dir: str, checkpoint: str = "latest") -> Run:
    """A run's settings, record and model (with a checkpoint's weights),
    each file read once. The model is rebuilt from the record (the data
    set is not read).

    Args:
        run_dir: a kb-train run directory.
        checkpoint: "latest" (newest usable), "best", or a checkpoint
            directory name such as "ckpt-000000100".
    """
    import tensorflow as tf

    config = read_config(run_dir)
    record = RunRecord.read(run_dir)
    model = record.build_model(os.path.join(run_dir, record_lib.FILE))
    manager = CheckpointManager(os.path.join(run_dir, "checkpoints"))
    path = manager.find(checkpoint)
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf.train.Checkpoint(model=model, step=counter).read(
        os.path.join(path, "ckpt")
    ).expect_partial()
    return Run(config, record, model, path)


def load_run_model(run_dir: str, checkpoint: str = "latest") -> keras.Model:
    """The model of a run, with the weights of a checkpoint (see
    `open_run`)."""
    return open_run(run_dir, checkpoint).model


def evaluate_model(
    model: keras.Model | None,
    dataset: data_lib.Dataset,
    *,
    batch_size: int = 256,
    split: str = "val",
    out_dir: str | None = None,
    pixels: str = "unit",
    eval_view: dict | None = None,
    forward=None,
    from_logits: bool | None = None,
    image_shape=None,
    class_names=None,
) -> dict:
    """Loss, accuracy and, for classification, the confusion matrix and
    each class's precision and recall of a model on a split ("train",
    "val" or "all", both together); writes confusion.txt/.png and
    evaluation.json to `out_dir` when given.

    `pixels` is how the model takes images ("unit" or "raw"; a run
    records it, see `RunRecord.pixels`), and `eval_view` the central
    crop and resize method it is served with (`RunRecord.eval_view`; by
    default the whole image, bilinear). A model of another runtime
    (`kerasblocks.training.inference`) comes as `forward` (a float
    batch to outputs), `from_logits` and `image_shape` instead of
    `model`."""
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be train, val or all. Received: {split}")
    if forward is None:
        forward = compile_forward(model, mode="graph")
        from_logits = models.outputs_logits(model)
    if image_shape is None and model is not None:
        image_shape = models.image_shape(model, dataset)
    loss_fn = objectives.build_loss(dataset, bool(from_logits), 0.0)
    metric = objectives.build_accuracy(dataset)
    classify = dataset.task == "classification"
    total, count, predictions, labels = 0.0, 0, [], []
    splits = ("train", "val") if split == "all" else (split,)
    for part in splits:
        pipeline = data_lib.make_pipeline(
            dataset,
            part,
            batch_size,
            image_shape=image_shape,
            pixels=pixels,
            **(eval_view or {}),
        )
        for x, y in pipeline:
            outputs = forward(x)
            losses = loss_fn(y, outputs)
            total += float(np.sum(np.asarray(losses, np.float64)))
            count += int(np.shape(losses)[0])
            metric.update_state(y, outputs)
            if classify:
                # Labels come from the pipeline too: a streaming source
                # has no label array.
                predictions.append(np.argmax(outputs, axis=-1))
                labels.append(np.asarray(y))
    result = {
        "loss": total / max(count, 1),
        metric.name: float(metric.result()),
    }
    result["examples"] = sum(
        int(dataset.num_val if part == "val" else dataset.num_train)
        for part in splits
    )
    if classify:
        result.update(
            report.classification_report(
                np.concatenate(labels),
                np.concatenate(predictions),
                dataset.num_classes,
                class_names,
            )
        )
        if out_dir:
            matrix = np.array(result["confusion_matrix"])
            names = result["class_names"]
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "confusion.txt"), "w") as f:
                f.write(report.format_confusion(matrix, names) + "\n")
            report.plot_confusion(
                matrix, os.path.join(out_dir, "confusion.png"), names
            )
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "evaluation.json"), "w") as f:
            json.dump(result, f, indent=1)
    return result
