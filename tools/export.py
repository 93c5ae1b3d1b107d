"""kb-export: a run (or checkpoint, or saved model) to serving formats.

kb-export --run_dir=runs/lenet-digits --formats=saved_model,litert,onnx
kb-export --run_dir=runs/lenet-digits --formats=litert --quantize=int8
kb-export --model_path=model.keras --formats=saved_model --out_dir=out

For a run of an image classifier, the SavedModel's `serving_default`
takes uint8 images `[batch, height, width, 3]` of any size and
`serving_bytes` encoded JPEG/PNG strings (resized and preprocessed
inside, as the run's model expects); `serving_float` keeps the model's
own float input. A request of more than --max_batch images, or an image
over --max_image_pixels (read from its header), is refused with
InvalidArgument. The SavedModel goes to `export/saved_model/<N>/` (TF
Serving's layout, N one more than the run's last export) with TF
Serving warm-up requests. Every format is run in its own runtime on the
validation split and compared with the Keras model in
`export/deploy_report.json`; a quantized LiteRT file below
--min_agreement is not written (exit 2). A model file of your own gets
those signatures, with the class names of a data set, from `--dataset`
(and `--pixels=raw` when it preprocesses 0-255 pixels itself):

kb-export --model_path=model.keras --dataset=folder:photos --out_dir=out
"""

from __future__ import annotations

import dataclasses
import os

from absl import flags

from kerasblocks import choices
from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "run_dir",
    None,
    "A kb-train run directory (its model is rebuilt from the run, whatever "
    "it trained on). " + _common.DATASET_HELP,
)
flags.DEFINE_string(
    "checkpoint", "latest", "With --run_dir: latest, best, or a ckpt-* name."
)
flags.DEFINE_string("model_path", None, "Or: a saved model to convert.")
flags.DEFINE_string(
    "dataset",
    None,
    "With --model_path of an image classifier: the data set whose class "
    "names the image signatures return (serving_default takes uint8 "
    "images, serving_bytes encoded ones); a run knows its own. "
    + _common.DATASET_HELP,
)
flags.DEFINE_string(
    "data_dir", None, "With --dataset: where its files are (tfds: only)."
)
flags.DEFINE_enum(
    "pixels",
    "unit",
    ["unit", "raw"],
    "With --dataset: how the model takes images: unit ([0, 1], as kb-train "
    "trains from scratch) or raw (0-255, it preprocesses inside).",
)
flags.DEFINE_integer(
    "max_image_pixels",
    choices.MAX_IMAGE_PIXELS,
    "The image signatures' limit (ImageServing's max_pixels): a request "
    "image whose header declares more pixels (height x width) is refused "
    "with InvalidArgument before it is decoded. "
    + _common.MAX_IMAGE_PIXELS_HELP,
    lower_bound=1,
)
flags.DEFINE_integer(
    "max_batch",
    choices.MAX_BATCH,
    "The image signatures' limit (ImageServing's max_batch): a request of "
    "more images is refused with InvalidArgument.",
    lower_bound=1,
)
flags.DEFINE_list(
    "formats",
    ["saved_model", "keras"],
    f"{', '.join(choices.FORMATS)} (tflite: the old name of litert).",
)
_common.define_deploy_flags("the run's own training split, or --dataset's")
flags.adopt_module_key_flags(_common)
flags.DEFINE_string(
    "out_dir", None, "Where exports go (default: RUN_DIR; files under export/)."
)


def _check() -> None:
    if bool(FLAGS.run_dir) == bool(FLAGS.model_path):
        raise _common.UsageError(
            "give exactly one of --run_dir and --model_path"
        )
    unknown = sorted(set(FLAGS.formats) - set(choices.EXPORTS))
    if unknown:
        raise _common.UsageError(
            f"unknown --formats {unknown}; valid: {', '.join(choices.EXPORTS)}"
        )
    if FLAGS.model_path and not FLAGS.out_dir:
        raise _common.UsageError("--out_dir is required with --model_path")
    if FLAGS.run_dir and FLAGS.dataset:
        raise _common.UsageError(
            "--dataset applies to --model_path; a run's export takes its "
            "class names from the run. Drop --dataset."
        )
    if FLAGS.dataset:
        _common.check_dataset(FLAGS.dataset)
    _common.check_deploy_flags(FLAGS)
    if (
        FLAGS.quantize == "int8"
        and FLAGS.model_path
        and not (FLAGS.dataset or FLAGS.calibration)
    ):
        raise _common.UsageError(
            "--quantize=int8 of a --model_path needs --calibration (or "
            "--dataset) to calibrate on"
        )


def _export() -> int:
    import zoo  # noqa: F401  (registers the zoo's classes)
    from kerasblocks import io as kb_io
    from kerasblocks.data import dataset as data_lib
    from kerasblocks.training import deploy, runs, transfer

    serving, dataset, pixels, view = None, None, "unit", {}
    if FLAGS.run_dir:
        run = runs.open_run(FLAGS.run_dir, FLAGS.checkpoint)
        model, config, record = run.model, run.config, run.record
        out_dir = FLAGS.out_dir or FLAGS.run_dir
        # An image classifier's SavedModel takes what clients send: uint8
        # pixels (serving_default) and encoded images (serving_bytes).
        serving = transfer.image_serving(model, record)
        dataset = data_lib.load_dataset(config.dataset, config.data_dir)
        pixels, view = record.pixels, record.eval_view
    else:
        model = kb_io.load_model(FLAGS.model_path, compile=False)
        out_dir = FLAGS.out_dir
        if FLAGS.dataset:
            serving = _image_serving_for(model)
            dataset = _common.load_image_classification(
                FLAGS.dataset, FLAGS.data_dir
            )
            pixels = FLAGS.pixels
        elif FLAGS.calibration:
            dataset = data_lib.load_dataset(FLAGS.calibration)
    if serving is not None:
        serving = dataclasses.replace(
            serving,
            max_pixels=FLAGS.max_image_pixels,
            max_batch=FLAGS.max_batch,
        )
    validation, calibration = deploy.run_data(
        dataset,
        image_shape=_image_shape(model, dataset),
        pixels=pixels,
        view=view,
        calibration=FLAGS.calibration,
        data_dir=FLAGS.data_dir,
        calibration_examples=FLAGS.calibration_examples,
        quantize=FLAGS.quantize,
    )
    if FLAGS.model_path and not FLAGS.dataset:
        validation = None  # --calibration's data are not the model's
    exports = deploy.export_checked(
        model,
        out_dir,
        FLAGS.formats,
        image_serving=serving,
        validation=validation,
        options=deploy.DeployOptions(
            FLAGS.quantize, FLAGS.min_agreement, calibration
        ),
    )
    for kind, path in exports.items():
        print(f"{kind}: {path}")
    print(f"report: {os.path.join(out_dir, 'export', deploy.REPORT_FILE)}")
    return 0


def _image_shape(model, dataset):
    """The (height, width, channels) `model` takes, for image data."""
    from kerasblocks.training import models

    return None if dataset is None else models.image_shape(model, dataset)


def _image_serving_for(model):
    """The image signatures of a user's classifier, with the class names
    of --dataset."""
    from kerasblocks.training import transfer
    from kerasblocks.training.record import RunRecord

    dataset = _common.load_image_classification(
        FLAGS.dataset, FLAGS.data_dir, **_common.source_limits(FLAGS.dataset)
    )
    names = transfer.class_names(dataset)
    record = RunRecord(
        model.name,
        {},
        pixels=FLAGS.pixels,
        class_names=tuple(names) if names else None,
    )
    serving = transfer.image_serving(model, record)
    if serving is None:
        raise _common.UsageError(
            f"{FLAGS.model_path}: not an image classifier (input "
            f"{model.input_shape}, output {model.output_shape}); --dataset "
            "adds image signatures to one."
        )
    classes = model.output_shape[-1]
    if dataset.num_classes != classes:
        raise _common.UsageError(
            f"--dataset={FLAGS.dataset} has {dataset.num_classes} classes; "
            f"the model outputs {classes}."
        )
    return serving


def main(argv):
    return _common.run_main("kb-export", _export, _check, argv=argv)


def run():
    _common.run_app(main, "kb-export", __name__)


if __name__ == "__main__":
    run()
