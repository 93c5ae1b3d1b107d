"""kb-train: train any zoo model on a data set; resumable; exports.

    kb-train                                 # LeNet on the bundled digits
    kb-train --model=resnet18 --dataset=cifar10 --data_dir=~/cifar
        --epochs=30 --batch_size=128 --optimizer=momentum
        --learning_rate=0.1 --schedule=cosine --augment

Rerun the same command after a kill, Ctrl-C or a full disk: it resumes
from the last good checkpoint at the exact next batch. A completed run
is not retrained unless --overwrite. One process trains in a run
directory at a time. Exit codes: 0 done; 1 a bug (with its traceback);
2 a bad flag or input, or a run directory in use (one line saying what
to do); 3 non-finite loss; 4 lost a peer worker (multi-worker runs
only); 28 disk full; 130 Ctrl-C (SIGINT); 143 SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys

from absl import flags

from kerasblocks import choices
from tools import _common, _faults

# Exit codes besides 0, 1 (a bug) and 2 (the user's input); a signal's
# is 128 + its number (130 for SIGINT, 143 for SIGTERM).
EXIT_NON_FINITE = 3
EXIT_PEER_LOST = 4
EXIT_DISK_FULL = 28  # errno ENOSPC

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "lenet", "Zoo model name (see kb-inspect --list).")
flags.DEFINE_string(
    "model_overrides",
    "{}",
    "JSON object of model arguments, e.g. '{\"input_shape\": [32, 32, 1]}'.",
)
flags.DEFINE_string("dataset", "digits", _common.DATASET_HELP)
flags.DEFINE_string(
    "data_dir",
    None,
    "Where the data set's files are (data sets read from files only).",
)
flags.DEFINE_integer(
    "epochs", 20, "Epochs (ignored when --steps is given).", lower_bound=1
)
flags.DEFINE_integer(
    "steps", None, "Total training steps (overrides --epochs).", lower_bound=1
)
flags.DEFINE_integer("batch_size", 32, "Global batch size.", lower_bound=1)
flags.DEFINE_enum("optimizer", "adam", choices.OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", 3e-3, "Peak learning rate.")
flags.DEFINE_enum(
    "schedule",
    "constant",
    choices.SCHEDULES,
    "Learning-rate schedule over the run.",
)
flags.DEFINE_float(
    "weight_decay", 0.0, "Decoupled weight decay (0: none).", lower_bound=0.0
)
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing in [0, 1).")
flags.DEFINE_bool("augment", False, "Random flips and shifts of images.")
flags.DEFINE_string(
    "init_from",
    None,
    "Start from weights: imagenet (keras.applications' file, downloaded "
    "into Keras's cache; ZOO_OFFLINE=1 forbids it), a "
    "weights file (keras.applications .h5, .keras, .weights.h5) or "
    "SavedModel of the same architecture, or a kb-train run directory "
    "(its best checkpoint). A pretrained start puts the weights' "
    "preprocessing inside the model; the data are then fed as 0-255 RGB.",
)
flags.DEFINE_bool(
    "init_from_strict",
    True,
    "With --init_from: weights that leave a backbone weight unloaded are "
    "an error (exit 2); false loads what fits and reports the rest.",
)
flags.DEFINE_enum(
    "freeze",
    "none",
    choices.FREEZE,
    "Layers kept fixed: none, backbone (all but the top), all_but_head "
    "(all but the classifier). Frozen BatchNorm runs in inference mode.",
)
flags.DEFINE_integer(
    "unfreeze_at_epoch",
    None,
    "From this epoch (1-based) the whole model trains, at "
    "--finetune_lr_scale times the learning rate.",
    lower_bound=2,
)
flags.DEFINE_float(
    "finetune_lr_scale",
    0.1,
    "Learning-rate factor once --unfreeze_at_epoch is reached.",
    lower_bound=0.0,
)
flags.DEFINE_enum(
    "mixed_precision",
    "none",
    choices.PRECISIONS,
    "Mixed precision compute dtype (variables stay float32).",
)
flags.DEFINE_enum(
    "jit_compile",
    "auto",
    choices.JIT,
    "XLA: auto picks graph or XLA (measured briefly, recorded in the run).",
)
flags.DEFINE_enum(
    "strategy",
    "default",
    choices.STRATEGIES,
    "tf.distribute strategy (multi_worker reads TF_CONFIG).",
)
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and augmentation.")
flags.DEFINE_bool(
    "deterministic", False, "Deterministic ops (bit-identical reruns; slower)."
)
flags.DEFINE_string(
    "out_dir", None, "Run directory (default runs/MODEL-DATASET)."
)
flags.DEFINE_integer(
    "checkpoint_every", 100, "Steps between checkpoints.", lower_bound=1
)
flags.DEFINE_integer(
    "keep_checkpoints", 3, "Newest checkpoints to keep.", lower_bound=1
)
flags.DEFINE_bool("overwrite", False, "Start afresh in an existing run dir.")
flags.DEFINE_bool(
    "wait_for_lock",
    False,
    "If another kb-train is training in --out_dir, wait for it to finish "
    "(default: refuse, exit 2).",
)
flags.DEFINE_bool(
    "allow_flag_changes",
    False,
    "Resume with flags that change what is trained (e.g. "
    "--learning_rate); the change is recorded in flags.json's "
    "flag_history with the step it took effect.",
)
flags.DEFINE_list(
    "formats",
    None,
    f"Export formats: {', '.join(choices.FORMATS)} (default "
    "saved_model,keras). Each export is checked on the validation split "
    "(export/deploy_report.json).",
)
flags.DEFINE_list(
    "export",
    ["saved_model", "keras"],
    "The old name of --formats (tflite: the old name of litert).",
)
_common.define_deploy_flags("the run's own training split")
flags.adopt_module_key_flags(_common)
flags.DEFINE_bool(
    "strict_data",
    False,
    "An unreadable image is an error (default: skipped with a warning).",
)
flags.DEFINE_string(
    "image_size",
    None,
    "SIZE or HEIGHT,WIDTH: the model's input size and what the images of a "
    "folder:, tfrecord: or tfds: source are resized to.",
)
flags.DEFINE_string(
    "cache",
    None,
    "Cache decoded images of a folder:, tfrecord: or tfds: source: "
    "'memory' or a file path prefix (its directory is made). An epoch "
    "then permutes the cache in blocks, so a cached run's batches "
    "differ from an uncached one's.",
)
flags.DEFINE_integer(
    "max_image_pixels",
    choices.MAX_IMAGE_PIXELS,
    _common.MAX_IMAGE_PIXELS_HELP,
    lower_bound=1,
)
flags.DEFINE_enum(
    "channels",
    None,
    ["1", "3"],
    "The channels of a folder:, tfrecord: or tfds: source's images: 1 "
    "(grayscale) or 3 (RGB); images of the other kind are converted, with "
    "one notice. Default: the majority of the images (read from their "
    "headers). With --image_size the model is built for them; a model "
    "whose input is given (--model_overrides, --init_from) must match.",
)


def _overrides():
    try:
        return json.loads(FLAGS.model_overrides)
    except json.JSONDecodeError as error:
        raise _common.UsageError(
            f"--model_overrides is not JSON: {error}"
        ) from None


def _image_size() -> int | list[int] | None:
    """--image_size as `TrainConfig` takes it (and checks it)."""
    if FLAGS.image_size is None:
        return None
    try:
        size = [int(part) for part in FLAGS.image_size.split(",")]
    except ValueError:
        raise _common.UsageError(
            "--image_size must be SIZE or HEIGHT,WIDTH (positive integers). "
            f"Received: {FLAGS.image_size!r}"
        ) from None
    return size[0] if len(size) == 1 else size


def _check_data_flags() -> None:
    """The --dataset form and the flags that apply to it (no TensorFlow)."""
    _common.check_dataset(FLAGS.dataset)
    kind, colon, _ = FLAGS.dataset.partition(":")
    if colon:
        if FLAGS.data_dir and kind != "tfds":
            raise _common.UsageError(
                f"--data_dir does not apply to --dataset={kind}:..., which "
                "names its files itself; drop --data_dir."
            )
        return
    _common.source_limits(FLAGS.dataset)
    for flag in ("image_size", "cache", "strict_data", "channels"):
        if FLAGS[flag].value:
            raise _common.UsageError(
                f"--{flag} applies to the folder:, tfrecord: and tfds: "
                f"sources, not --dataset={FLAGS.dataset}; drop --{flag}."
            )


def config_from_flags():
    """The run's settings from the flags (`validate` checks them)."""
    from kerasblocks.training.config import TrainConfig

    return TrainConfig(
        model=FLAGS.model,
        model_overrides=_overrides(),
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
        init_from=FLAGS.init_from,
        init_from_strict=FLAGS.init_from_strict,
        freeze=FLAGS.freeze,
        unfreeze_at_epoch=FLAGS.unfreeze_at_epoch,
        finetune_lr_scale=FLAGS.finetune_lr_scale,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        strategy=FLAGS.strategy,
        seed=FLAGS.seed,
        deterministic=FLAGS.deterministic,
        out_dir=FLAGS.out_dir or "",
        checkpoint_every=FLAGS.checkpoint_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        overwrite=FLAGS.overwrite,
        export=tuple(FLAGS.formats or FLAGS.export),
        quantize=FLAGS.quantize,
        calibration=FLAGS.calibration,
        calibration_examples=FLAGS.calibration_examples,
        min_agreement=FLAGS.min_agreement,
        image_size=_image_size(),
        cache=FLAGS.cache or None,
        strict_data=FLAGS.strict_data,
        max_image_pixels=FLAGS.max_image_pixels,
        channels=int(FLAGS.channels) if FLAGS.channels else None,
    )


def _train(config) -> int:
    import zoo  # noqa: F401  (registers the models with the trainer)
    from kerasblocks.training import trainer

    try:
        result = trainer.train(
            config,
            hooks=_faults.fault_hooks(),
            collective_timeout=float(
                os.environ.get("KB_COLLECTIVE_TIMEOUT", "45")
            ),
            wait_for_lock=FLAGS.wait_for_lock,
            allow_flag_changes=FLAGS.allow_flag_changes,
        )
    except trainer.NonFiniteLossError as error:
        print(f"kb-train: error: {error}", file=sys.stderr)
        return EXIT_NON_FINITE
    except trainer.PeerLostError as error:
        print(f"kb-train: error: {error}", file=sys.stderr)
        return EXIT_PEER_LOST
    except trainer.DiskFullError as error:
        print(f"kb-train: error: {error}", file=sys.stderr)
        return EXIT_DISK_FULL
    except trainer.Interrupted as error:
        print(f"kb-train: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        # A second Ctrl-C, which does not wait for the step to end.
        print(
            "kb-train: interrupted; rerun the same command to resume from "
            "the last checkpoint",
            file=sys.stderr,
        )
        return _common.EXIT_SIGINT
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
    config = None

    def check():
        # The checks that need no TensorFlow: the flags' own, then every
        # setting's, once, in TrainConfig.validate.
        nonlocal config
        _check_data_flags()
        _common.check_deploy_flags(FLAGS)
        if FLAGS.formats is not None and FLAGS["export"].present:
            raise _common.UsageError(
                "--export is the old name of --formats; give only --formats"
            )
        config = config_from_flags().validate()

    return _common.run_main(
        "kb-train", lambda: _train(config), check, argv=argv
    )


def run():
    _common.run_app(main, "kb-train", __name__)


if __name__ == "__main__":
    run()
