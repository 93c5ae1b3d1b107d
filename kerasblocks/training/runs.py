"""Reading a run directory back: its settings, model and checkpoints."""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from kerasblocks.compile import compile_forward
from kerasblocks.data import dataset as data_lib
from kerasblocks.training import models, objectives, report
from kerasblocks.training.checkpoints import CheckpointManager
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError


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


def load_run_model(run_dir: str, checkpoint: str = "latest") -> keras.Model:
    """The model of a run, with the weights of a checkpoint.

    The model is rebuilt from the run's `model_config.json` (the data set
    is not read).

    Args:
        run_dir: a kb-train run directory.
        checkpoint: "latest" (newest usable), "best", or a checkpoint
            directory name such as "ckpt-000000100".
    """
    import tensorflow as tf

    read_config(run_dir)
    model = models.model_from_config(run_dir)
    manager = CheckpointManager(os.path.join(run_dir, "checkpoints"))
    if checkpoint == "latest":
        found = manager.latest()
        if found is None:
            raise UserInputError(f"{run_dir}: no checkpoint yet")
        path = found[0]
    else:
        name = manager.best() if checkpoint == "best" else checkpoint
        path = os.path.join(manager.directory, name or "")
        if not name or not os.path.isdir(path):
            raise UserInputError(
                f"{run_dir}: no checkpoint {checkpoint!r}; give --checkpoint="
                "latest, best, or a ckpt-* name under checkpoints/."
            )
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
    pixels: str = "unit",
    eval_view: dict | None = None,
) -> dict:
    """Loss, accuracy and (for classification) the confusion matrix of
    `model` on a split; writes confusion.txt/.png and evaluation.json to
    `out_dir` when given. `pixels` is how the model takes images ("unit"
    or "raw"; a run records it, see `transfer.run_pixels`), and
    `eval_view` the central crop and resize method it is served with
    (`transfer.eval_view`; by default the whole image, bilinear)."""
    shape = models.image_shape(model, dataset)
    pipeline = data_lib.make_pipeline(
        dataset,
        split,
        batch_size,
        image_shape=shape,
        pixels=pixels,
        **(eval_view or {}),
    )
    loss_fn = objectives.build_loss(dataset, models.outputs_logits(model), 0.0)
    forward = compile_forward(model, mode="graph")
    result = objectives.evaluate(model, pipeline, loss_fn, dataset, forward)
    result["examples"] = int(
        dataset.num_val if split == "val" else dataset.num_train
    )
    if dataset.task == "classification":
        # Labels come from the pipeline too: a streaming source has no
        # label array.
        batches = [(np.argmax(forward(x), axis=-1), y) for x, y in pipeline]
        predictions = np.concatenate([p for p, _ in batches])
        labels = np.concatenate([np.asarray(y) for _, y in batches])
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
