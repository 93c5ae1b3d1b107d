"""Reading a run directory back: its settings, model and checkpoints."""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from kerasblocks.training import data as data_lib
from kerasblocks.training import report
from kerasblocks.training.checkpoints import CheckpointManager
from kerasblocks.training.config import TrainConfig


def read_config(run_dir: str) -> TrainConfig:
    path = os.path.join(run_dir, "flags.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{run_dir}: not a run directory (no flags.json); give a run "
            "directory written by kb-train or a saved model file."
        )
    with open(path) as f:
        return TrainConfig.from_dict(json.load(f))


def load_run_model(run_dir: str, checkpoint: str = "latest") -> keras.Model:
    """The model of a run, with the weights of a checkpoint.

    Args:
        run_dir: a kb-train run directory.
        checkpoint: "latest" (newest usable), "best", or a checkpoint
            directory name such as "ckpt-000000100".
    """
    import tensorflow as tf

    from kerasblocks.training import trainer

    config = read_config(run_dir)
    dataset = data_lib.load_dataset(config.dataset, config.data_dir)
    model = trainer.create_model(config, dataset)
    manager = CheckpointManager(os.path.join(run_dir, "checkpoints"))
    if checkpoint == "latest":
        found = manager.latest()
        if found is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoint yet")
        path = found[0]
    else:
        name = manager.best() if checkpoint == "best" else checkpoint
        path = os.path.join(manager.directory, name or "")
        if not name or not os.path.isdir(path):
            raise FileNotFoundError(f"{run_dir}: no checkpoint {checkpoint!r}")
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)
    tf.train.Checkpoint(model=model, step=counter).read(
        os.path.join(path, "ckpt")
    ).expect_partial()
    return model


def evaluate_model(
    model: keras.Model,
    dataset: data_lib.Dataset,
    *,
    batch_size: int = 256,
    split: str = "val",
    out_dir: str | None = None,
) -> dict:
    """Loss, accuracy and (for classification) the confusion matrix of
    `model` on a split; writes confusion.txt/.png and evaluation.json to
    `out_dir` when given."""
    from kerasblocks.training import trainer

    shape = trainer._image_shape(model, dataset)
    pipeline = data_lib.make_pipeline(
        dataset, split, batch_size, image_shape=shape
    )
    loss_fn = trainer.build_loss(dataset, trainer.outputs_logits(model), 0.0)
    result = trainer.evaluate(model, pipeline, loss_fn, dataset)
    result["examples"] = int(
        len(dataset.y_val if split == "val" else dataset.y_train)
    )
    if dataset.task == "classification":
        predictions = np.concatenate(
            [np.argmax(model(x, training=False), axis=-1) for x, _ in pipeline]
        )
        labels = dataset.y_val if split == "val" else dataset.y_train
        matrix = report.confusion_matrix(
            labels, predictions, dataset.num_classes
        )
        result["confusion_matrix"] = matrix.tolist()
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "confusion.txt"), "w") as f:
                f.write(report.format_confusion(matrix) + "\n")
            report.plot_confusion(
                matrix, os.path.join(out_dir, "confusion.png")
            )
    if out_dir:
        with open(os.path.join(out_dir, "evaluation.json"), "w") as f:
            json.dump(result, f, indent=1)
    return result
