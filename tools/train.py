"""kb-train: train any zoo model on a data set; resumable; exports.

    kb-train                                   # LeNet on the bundled digits
    kb-train --model=resnet18 --dataset=cifar10 --data_dir=~/cifar \
        --epochs=30 --batch_size=128 --optimizer=momentum \
        --learning_rate=0.1 --schedule=cosine --augment

Rerun the same command after a kill: it resumes from the last good
checkpoint at the exact next batch. A completed run is not retrained
unless --overwrite. Exit codes: 0 done, 2 bad flag or input, 3
non-finite loss, 4 lost a peer worker or a collective timed out.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags  # noqa: E402

from kerasblocks.training import config as config_lib  # noqa: E402
from tools import _common  # noqa: F401  (quiets TensorFlow first)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "lenet", "Zoo model name (zoo.list_models()).")
flags.DEFINE_string(
    "model_overrides",
    "{}",
    "JSON object of model arguments, e.g. '{\"input_shape\": [32, 32, 1]}'.",
)
flags.DEFINE_string(
    "dataset",
    "digits",
    "Data set name (digits, mnist, "
    "fashion_mnist, cifar10, synthetic, or a sequence task).",
)
flags.DEFINE_string("data_dir", None, "Where the data set's files are.")
flags.DEFINE_integer("epochs", 20, "Epochs (ignored when --steps is given).")
flags.DEFINE_integer(
    "steps", None, "Total training steps (overrides --epochs)."
)
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_enum("optimizer", "adam", config_lib.OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", 3e-3, "Peak learning rate.")
flags.DEFINE_enum(
    "schedule",
    "constant",
    config_lib.SCHEDULES,
    "Learning-rate schedule over the run.",
)
flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.")
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing in [0, 1).")
flags.DEFINE_bool("augment", False, "Random flips and shifts of images.")
flags.DEFINE_enum(
    "mixed_precision",
    "none",
    config_lib.PRECISIONS,
    "Mixed precision compute dtype (variables stay float32).",
)
flags.DEFINE_enum(
    "jit_compile",
    "auto",
    config_lib.JIT,
    "XLA: auto measures graph vs XLA on the first batch.",
)
flags.DEFINE_enum(
    "strategy",
    "default",
    config_lib.STRATEGIES,
    "tf.distribute strategy (multi_worker reads TF_CONFIG).",
)
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and augmentation.")
flags.DEFINE_bool(
    "deterministic", False, "Deterministic ops (bit-identical reruns; slower)."
)
flags.DEFINE_string(
    "out_dir", None, "Run directory (default runs/MODEL-DATASET)."
)
flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", 3, "Newest checkpoints to keep.")
flags.DEFINE_bool("overwrite", False, "Start afresh in an existing run dir.")
flags.DEFINE_list(
    "export",
    ["saved_model", "keras"],
    "Export formats: saved_model, keras, h5, tflite.",
)


def config_from_flags() -> config_lib.TrainConfig:
    try:
        overrides = json.loads(FLAGS.model_overrides)
    except json.JSONDecodeError as error:
        raise _common.UsageError(
            f"--model_overrides is not JSON: {error}"
        ) from None
    return config_lib.TrainConfig(
        model=FLAGS.model,
        model_overrides=overrides,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        epochs=FLAGS.epochs,
        steps=FLAGS.steps,
        batch_size=FLAGS.batch_size,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        schedule=FLAGS.schedule,
        weight_decay=FLAGS.weight_decay,
        label_smoothing=FLAGS.label_smoothing,
        augment=FLAGS.augment,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        strategy=FLAGS.strategy,
        seed=FLAGS.seed,
        deterministic=FLAGS.deterministic,
        out_dir=FLAGS.out_dir or "",
        checkpoint_every=FLAGS.checkpoint_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        overwrite=FLAGS.overwrite,
        export=tuple(FLAGS.export),
    )


def fault_hooks(environ=os.environ):
    """Hooks the fault-tolerance tests set through the environment.

    KB_FAULT_KILL_AT_STEP=N: the process kills itself (SIGKILL, as an
    outage would) after step N. KB_FINAL_WEIGHTS_DIR=D: every worker
    writes its final weights to D/<task>-<index>.weights, so a test (or a
    user) can check that all workers ended identical.
    """
    from kerasblocks.training import strategies
    from kerasblocks.training.loop import Hooks

    hooks = Hooks()
    kill_at = environ.get("KB_FAULT_KILL_AT_STEP")
    if kill_at:
        import signal

        def after_step(step):
            if step == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

        hooks.after_step = after_step
    directory = environ.get("KB_FINAL_WEIGHTS_DIR")
    if directory:

        def on_finish(model, strategy):
            from kerasblocks.io import save_weights

            os.makedirs(directory, exist_ok=True)
            name = f"{strategies.task_name(strategy)}.weights"
            save_weights(model, os.path.join(directory, name))

        hooks.on_finish = on_finish
    return hooks


def _train() -> int:
    import zoo  # noqa: F401  (registers the models with the trainer)
    from kerasblocks.training import trainer
    from kerasblocks.training.checkpoints import NoUsableCheckpointError

    config = config_from_flags()
    try:
        result = trainer.train(
            config,
            hooks=fault_hooks(),
            collective_timeout=float(
                os.environ.get("KB_COLLECTIVE_TIMEOUT", "45")
            ),
        )
    except trainer.NonFiniteLossError as error:
        print(f"kb-train: error: {error}", file=sys.stderr)
        return 3
    except NoUsableCheckpointError as error:
        print(f"kb-train: error: {error}", file=sys.stderr)
        return 2
    except trainer.PeerLostError as error:
        print(f"kb-train: error: {error}", file=sys.stderr)
        return 4
    if not result.skipped:
        last = result.history[-1] if result.history else {}
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in last.items() if k.startswith("val_")
        )
        print(
            f"done: {result.steps} steps; {shown}; outputs in {result.out_dir}"
        )
    return 0


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    return _common.run_main("kb-train", _train)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
