"""kb-evaluate: loss, accuracy, a confusion matrix and each class's
precision and recall on a data set.

kb-evaluate --run_dir=runs/lenet-digits            # latest checkpoint
kb-evaluate --model_path=model.keras --dataset=digits
kb-evaluate --model_path=RUN/export/model.tflite --dataset=folder:photos

--model_path takes any export (.keras, .h5, SavedModel, .tflite, .onnx),
run in its own runtime with the image convention it records (pixels
0-255 or [0, 1], central crop, resize method, class names), as the run
evaluates it; a file that records none is taken as [0, 1] pixels, said
in one line (--pixels overrides).
"""

from __future__ import annotations

import os

from absl import flags

from kerasblocks import choices
from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A kb-train run directory.")
flags.DEFINE_string(
    "model_path",
    None,
    "A saved model or export: .keras, .h5, SavedModel directory, .tflite, "
    ".onnx.",
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
    choices.MAX_IMAGE_PIXELS,
    _common.MAX_IMAGE_PIXELS_HELP,
    lower_bound=1,
)
flags.DEFINE_enum(
    "split", "val", ["val", "train", "all"], "Which split (all: both)."
)
flags.DEFINE_enum(
    "pixels",
    None,
    ["unit", "raw"],
    "With --model_path of an image model: how it takes images, unit "
    "([0, 1]) or raw (0-255), overriding what the file records.",
)
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
    if FLAGS.pixels and not FLAGS.model_path:
        raise _common.UsageError(
            "--pixels applies to --model_path; a run records its own."
        )
    if FLAGS.model_path and not os.path.exists(FLAGS.model_path):
        raise _common.UsageError(f"--model_path={FLAGS.model_path}: not found")


def _evaluate() -> int:
    import zoo  # noqa: F401  (registers the zoo's classes)
    from kerasblocks.data import dataset as data_lib
    from kerasblocks.training import report, runs

    options = {}
    if FLAGS.run_dir:
        run = runs.open_run(FLAGS.run_dir, FLAGS.checkpoint)
        config, model, record = run.config, run.model, run.record
        options.update(
            pixels=record.pixels,
            eval_view=record.eval_view,
            class_names=record.class_names,
        )
        name = FLAGS.dataset or config.dataset
        data_dir = FLAGS.data_dir or config.data_dir
        limit = config.max_image_pixels
        out_dir = FLAGS.out_dir or os.path.join(FLAGS.run_dir, "evaluation")
    else:
        name, data_dir, out_dir = FLAGS.dataset, FLAGS.data_dir, FLAGS.out_dir
        limit = None
        model, options = _open_model()
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
    if model is None and not (
        dataset.is_image and dataset.task == "classification"
    ):
        raise _common.UsageError(
            f"--model_path={FLAGS.model_path}: a {options['kind']} file is "
            "evaluated on image classification data only"
        )
    options.pop("kind", None)
    if options.get("class_names") is None:
        from kerasblocks.training.transfer import class_names

        options["class_names"] = class_names(dataset)
    result = runs.evaluate_model(
        model,
        dataset,
        batch_size=FLAGS.batch_size,
        split=FLAGS.split,
        out_dir=out_dir,
        **options,
    )
    metrics = {k: v for k, v in result.items() if isinstance(v, float)}
    print(
        f"{name} {FLAGS.split} ({result['examples']} examples): "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    )
    if "confusion_matrix" in result:
        import numpy as np

        matrix = np.array(result["confusion_matrix"])
        print(report.format_confusion(matrix, result["class_names"]))
        print(report.format_per_class(result["per_class"]))
    if out_dir:
        print(f"wrote {out_dir}")
    return 0


def _open_model():
    """A --model_path as a Keras model (a non-image model) or as a
    `Predictor` with its recorded image convention; returns the model
    (None for another runtime) and `evaluate_model`'s options."""
    from kerasblocks import io as kb_io
    from kerasblocks.io.image_metadata import model_format
    from kerasblocks.training import inference
    from kerasblocks.training.errors import UserInputError

    path = FLAGS.model_path
    kind = model_format(path)
    try:
        predictor = inference.open_model(path, pixels=FLAGS.pixels)
    except UserInputError:
        if kind not in ("keras", "h5", "saved_model"):
            raise
        # Not an image classifier: evaluated as the Keras model it is.
        return kb_io.load_model(path, compile=False), {}
    if predictor.assumed:
        print(predictor.assumed)
    serving = predictor.metadata.serving

    def forward(x):
        return predictor.probabilities(predictor.model_input(x))

    options = {
        "kind": kind,
        "forward": forward,
        "from_logits": False,
        "image_shape": (*serving.image_size, serving.channels),
        "pixels": "unit" if serving.preprocessing == "unit" else "raw",
        "eval_view": {
            "crop_fraction": serving.crop_fraction,
            "interpolation": serving.interpolation,
        },
        "class_names": predictor.class_names,
    }
    return None, options


def main(argv):
    return _common.run_main("kb-evaluate", _evaluate, _check, argv=argv)


def run():
    _common.run_app(main, "kb-evaluate", __name__)


if __name__ == "__main__":
    run()
