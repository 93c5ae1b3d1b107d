"""kb-evaluate: loss, accuracy and a confusion matrix on a data set.

kb-evaluate --run_dir=runs/lenet-digits            # latest checkpoint
kb-evaluate --model_path=model.keras --dataset=digits
"""

from __future__ import annotations

from absl import flags

from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A kb-train run directory.")
flags.DEFINE_string(
    "model_path", None, "A saved model (.keras, .h5, SavedModel directory)."
)
flags.DEFINE_string(
    "checkpoint", "latest", "With --run_dir: latest, best, or a ckpt-* name."
)
flags.DEFINE_string(
    "dataset",
    None,
    "Default: the run's; required with --model_path. " + _common.DATASET_HELP,
)
flags.DEFINE_string("data_dir", None, "Where the data set's files are.")
flags.DEFINE_bool(
    "strict_data",
    False,
    "An unreadable image of a folder:, tfrecord: or tfds: source is an "
    "error (default: skipped with a warning).",
)
flags.DEFINE_integer(
    "max_image_pixels",
    _common.MAX_IMAGE_PIXELS,
    _common.MAX_IMAGE_PIXELS_HELP,
    lower_bound=1,
)
flags.DEFINE_enum("split", "val", ["val", "train"], "Which split.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_string(
    "out_dir",
    None,
    "Where confusion.txt/.png and evaluation.json go "
    "(default: RUN_DIR/evaluation).",
)


def _check() -> None:
    if bool(FLAGS.run_dir) == bool(FLAGS.model_path):
        raise _common.UsageError(
            "give exactly one of --run_dir and --model_path"
        )
    if FLAGS.batch_size < 1:
        raise _common.UsageError(
            f"--batch_size must be positive: {FLAGS.batch_size}"
        )
    if FLAGS.model_path and not FLAGS.dataset:
        raise _common.UsageError("--dataset is required with --model_path")
    if FLAGS.dataset:
        _common.check_dataset(FLAGS.dataset)


def _evaluate() -> int:
    import os

    import zoo  # noqa: F401  (registers the zoo's classes)
    from kerasblocks import io as kb_io
    from kerasblocks.data import dataset as data_lib
    from kerasblocks.training import report, runs, transfer

    if FLAGS.run_dir:
        config = runs.read_config(FLAGS.run_dir)
        model = runs.load_run_model(FLAGS.run_dir, FLAGS.checkpoint)
        pixels = transfer.run_pixels(FLAGS.run_dir)
        view = transfer.eval_view(transfer.read_record(FLAGS.run_dir))
        name = FLAGS.dataset or config.dataset
        data_dir = FLAGS.data_dir or config.data_dir
        limit = config.max_image_pixels
        out_dir = FLAGS.out_dir or os.path.join(FLAGS.run_dir, "evaluation")
    else:
        model = kb_io.load_model(FLAGS.model_path, compile=False)
        name, data_dir, out_dir = FLAGS.dataset, FLAGS.data_dir, FLAGS.out_dir
        pixels, view, limit = "unit", None, None
    kind, colon, _ = name.partition(":")
    if colon and kind in data_lib.list_sources():
        if FLAGS.data_dir and kind != "tfds":
            raise _common.UsageError(
                f"--data_dir does not apply to --dataset={kind}:..., which "
                "names its files itself; drop --data_dir."
            )
        dataset = data_lib.load_dataset(
            name,
            data_dir,
            strict=FLAGS.strict_data,
            **_common.source_limits(name, limit),
        )
    elif FLAGS.strict_data:
        raise _common.UsageError(
            "--strict_data applies to the folder:, tfrecord: and tfds: "
            f"sources, not --dataset={name}; drop --strict_data."
        )
    else:
        _common.source_limits(name)
        dataset = data_lib.load_dataset(name, data_dir)
    result = runs.evaluate_model(
        model,
        dataset,
        batch_size=FLAGS.batch_size,
        split=FLAGS.split,
        out_dir=out_dir,
        pixels=pixels,
        eval_view=view,
    )
    metrics = {k: v for k, v in result.items() if isinstance(v, float)}
    print(
        f"{name} {FLAGS.split} ({result['examples']} examples): "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    )
    if "confusion_matrix" in result:
        import numpy as np

        print(report.format_confusion(np.array(result["confusion_matrix"])))
    if out_dir:
        print(f"wrote {out_dir}")
    return 0


def main(argv):
    if len(argv) > 1:
        return _common.fail(
            "kb-evaluate",
            _common.UsageError(f"unexpected arguments: {argv[1:]}"),
        )
    return _common.run_main("kb-evaluate", _evaluate, _check)


def run():
    _common.run_app(main, "kb-evaluate", __name__)


if __name__ == "__main__":
    run()
