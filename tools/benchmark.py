r"""kb-benchmark: speed of eager, graph, XLA, auto and Keras defaults.

    kb-benchmark --model=resnet50 --input_size=224 --batch_sizes=32 \
        --tasks=inference --modes=graph,xla,auto,keras --out=bench.json
    kb-benchmark --mlp=784,256,10 --batch_sizes=256 --tasks=training \
        --modes=graph,xla,auto,keras,handwritten
    kb-benchmark --model=resnet50 --input_size=224 --modes=graph \
        --precision=float32,mixed_bfloat16,mixed_float16
    kb-benchmark --model=resnet18 --input_size=96 --dataset=folder:DIR \
        --batch_sizes=32 --modes=graph
    kb-benchmark --model=mobilenetv2 --input_size=224 --batch_sizes=1 \
        --runtimes=tf,litert,litert_int8,onnxruntime

With --runtimes, what is measured is inference in each deployment
runtime against TF's compiled forward (`tf.function`, float32) on the
same random-weight model: LiteRT float32 and full-integer int8 (through
`kerasblocks.io.export_litert`), onnxruntime (`export_onnx`); see
tools/_benchmark_runtimes.py.

With --dataset, what is measured is the input pipeline of that data set
against the train step: the pipeline alone (images decoded, resized and
augmented per second), the step alone on one cached batch, and the two
end to end (kerasblocks.data.throughput).

All configurations are measured in one process, interleaved in rounds,
so the printed ratios are valid on a noisy machine; the JSON keeps every
sample. See tools/benchmarking.py for what each mode means.
"""

from __future__ import annotations

import sys
import time

from absl import flags

from kerasblocks import choices
from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A zoo model name (see zoo.list_models()).")
flags.DEFINE_string(
    "saved_model", None, "A saved model (.keras or .h5) instead of --model."
)
flags.DEFINE_list(
    "mlp",
    None,
    "Layer widths of a plain MLP instead of --model, e.g. 784,256,10.",
)
flags.DEFINE_integer(
    "input_size",
    None,
    "Image height and width (zoo models); default: the model's.",
)
flags.DEFINE_list("batch_sizes", ["32"], "Batch sizes to measure.")
flags.DEFINE_list(
    "modes",
    ["graph", "xla", "auto", "keras"],
    "Modes: eager, graph, xla, auto, keras (fit/predict defaults on "
    "NumPy), keras_tfdata (fit on tf.data), "
    "handwritten (a bare tf.function).",
)
flags.DEFINE_list("tasks", ["inference", "training"], "inference, training.")
flags.DEFINE_list(
    "precision",
    ["float32"],
    "Keras dtype policies measured side by side: float32, mixed_bfloat16, "
    "mixed_float16 (e.g. --precision=float32,mixed_bfloat16).",
)
flags.DEFINE_integer(
    "rounds", 5, "Timed rounds (each runs every configuration)."
)
flags.DEFINE_float("min_seconds", 0.5, "Minimum duration of one timed sample.")
flags.DEFINE_string("out", None, "Write the JSON report here.")
flags.DEFINE_bool("peak", True, "Measure the fp32 matmul peak in the same run.")
flags.DEFINE_string(
    "reference",
    None,
    "A keras.applications model (e.g. ResNet50, weights=None) measured with "
    "Keras defaults in the same rounds, as mode keras:NAME.",
)
flags.DEFINE_string(
    "dataset",
    None,
    "Measure this data set's input pipeline against the train step of "
    "--model (first of --batch_sizes and --modes). " + _common.DATASET_HELP,
)
flags.DEFINE_string("data_dir", None, "Where the --dataset's files are.")
flags.DEFINE_integer(
    "max_image_pixels",
    choices.MAX_IMAGE_PIXELS,
    _common.MAX_IMAGE_PIXELS_HELP,
    lower_bound=1,
)
flags.DEFINE_list(
    "runtimes",
    None,
    "Measure inference in these runtimes instead of --modes: tf (the "
    "compiled forward, the reference), litert, litert_int8, onnxruntime.",
)
flags.DEFINE_bool("augment", True, "With --dataset: augment the images.")
flags.DEFINE_string(
    "cache", None, "With --dataset: cache decoded images (memory or a path)."
)


def _factory():
    import keras

    import kerasblocks as kb
    import zoo

    given = [n for n in ("model", "saved_model", "mlp") if FLAGS[n].value]
    if len(given) != 1:
        raise _common.UsageError(
            "give exactly one of --model, --saved_model, --mlp"
        )
    if FLAGS.mlp:
        widths = [int(w) for w in FLAGS.mlp]
        if len(widths) < 2 or min(widths) < 1:
            raise _common.UsageError(
                f"--mlp needs two or more positive widths: {widths}"
            )

        def make():
            layers = [keras.Input((widths[0],))]
            layers += [
                keras.layers.Dense(w, activation="relu") for w in widths[1:-1]
            ]
            layers.append(keras.layers.Dense(widths[-1], activation="softmax"))
            return keras.Sequential(layers, name="mlp")

        return make, (widths[0],)
    if FLAGS.saved_model:
        path = FLAGS.saved_model
        model = kb.io.load_model(path, compile=False)
        return (
            lambda: kb.io.load_model(path, compile=False)
        ), model.input_shape[1:]
    overrides = {}
    if FLAGS.input_size:
        channels = _common.create_zoo_model(FLAGS.model, {}).input_shape[-1]
        overrides["input_shape"] = (
            FLAGS.input_size,
            FLAGS.input_size,
            channels,
        )
    model = _common.create_zoo_model(FLAGS.model, overrides)
    return (
        lambda: zoo.create_model(FLAGS.model, **overrides)
    ), model.input_shape[1:]


def _reference(input_shape):
    if not FLAGS.reference:
        return None
    import keras

    constructor = getattr(keras.applications, FLAGS.reference, None)
    if constructor is None:
        raise _common.UsageError(
            f"--reference: keras.applications has no {FLAGS.reference!r}"
        )
    return FLAGS.reference, lambda: constructor(
        weights=None, input_shape=tuple(input_shape)
    )


def _data_benchmark(batch_size: int, mode: str) -> int:
    """Pipeline alone, step alone and end to end on --dataset."""
    import os

    import keras

    from kerasblocks.compile import compile_train_step
    from kerasblocks.data import dataset as data_lib
    from kerasblocks.data import throughput
    from kerasblocks.training import models, objectives

    if not FLAGS.model:
        raise _common.UsageError("--dataset needs --model")
    if mode not in ("graph", "xla"):
        raise _common.UsageError(
            f"--dataset measures one compiled step: --modes=graph or xla, "
            f"not {mode}"
        )
    dataset, opened, is_source = _open_dataset(data_lib)
    model = _data_model(dataset)
    shape = models.image_shape(model, dataset)
    step = compile_train_step(
        model,
        keras.optimizers.SGD(0.01, momentum=0.9),
        objectives.build_loss(dataset, models.outputs_logits(model), 0.0),
        mode=mode,
    )

    def pipeline():
        return data_lib.make_pipeline(
            dataset,
            "train",
            batch_size,
            image_shape=shape,
            shuffle_seed=0,
            augment=FLAGS.augment,
            drop_remainder=True,
            repeat=True,
        )

    batches = max(4, min(40, dataset.num_train // batch_size))
    report = throughput.measure_data_throughput(
        pipeline, step, batches=batches, rounds=FLAGS.rounds
    )
    if is_source:  # the user's files: opening them checks them
        throughput.add_opening_cost(
            report,
            dataset.num_train + dataset.num_val,
            opened,
            dataset.num_train,
        )
    report["setup"] = {
        "model": FLAGS.model,
        "dataset": FLAGS.dataset,
        "image_shape": list(shape),
        "batch_size": batch_size,
        "mode": mode,
        "augment": FLAGS.augment,
        "batches_per_measurement": batches,
        "load_average": list(os.getloadavg()),
    }
    print(
        f"{FLAGS.model} on {FLAGS.dataset} at {shape}, batch {batch_size}, "
        f"{mode}; images/s (load average {os.getloadavg()[0]:.1f}):"
    )
    print(throughput.format_throughput(report))
    _write_out(report)
    return 0


def _open_dataset(data_lib):
    """--dataset opened with the flags' options: (the data set, seconds
    the opening took, whether it is the user's files)."""
    kind, colon, _ = FLAGS.dataset.partition(":")
    options = {}
    is_source = bool(colon) and kind in data_lib.list_sources()
    if is_source:
        if FLAGS.input_size:
            options["image_size"] = FLAGS.input_size
        if FLAGS.cache:
            options["cache"] = FLAGS.cache
    options.update(_common.source_limits(FLAGS.dataset))
    opened = time.perf_counter()
    dataset = _common.load_image_classification(
        FLAGS.dataset, FLAGS.data_dir, **options
    )
    return dataset, time.perf_counter() - opened, is_source


def _data_model(dataset):
    """--model for `dataset`'s classes and images (at --input_size)."""
    overrides = {"num_classes": dataset.num_classes}
    overrides.update(dataset.info.get("model_overrides", {}))
    if FLAGS.input_size and "input_shape" not in overrides:
        channels = _common.create_zoo_model(FLAGS.model, {}).input_shape[-1]
        overrides["input_shape"] = (
            FLAGS.input_size,
            FLAGS.input_size,
            channels,
        )
    return _common.create_zoo_model(FLAGS.model, overrides)


def _write_out(report: dict) -> None:
    """Writes `report` as JSON to --out, if given."""
    import json

    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {FLAGS.out}")


def _runtimes_benchmark(batch_sizes: list[int]) -> int:
    from tools import _benchmark_runtimes as runtimes

    chosen = list(dict.fromkeys(["tf", *FLAGS.runtimes]))
    unknown = [r for r in chosen if r not in runtimes.RUNTIMES]
    if unknown:
        raise _common.UsageError(
            f"--runtimes: unknown {unknown}; valid: "
            f"{', '.join(runtimes.RUNTIMES)}"
        )
    make, input_shape = _factory()
    report = runtimes.run_runtimes(
        make,
        input_shape,
        runtimes=chosen,
        batch_sizes=batch_sizes,
        rounds=FLAGS.rounds,
        min_seconds=FLAGS.min_seconds,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(runtimes.format_runtimes(report))
    _write_out(report)
    return 0


def _benchmark() -> int:
    from tools import benchmarking

    try:
        batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    except ValueError:
        raise _common.UsageError(
            f"--batch_sizes takes integers: {FLAGS.batch_sizes}"
        ) from None
    for name, given, valid in (
        ("modes", FLAGS.modes, benchmarking.MODES),
        ("tasks", FLAGS.tasks, benchmarking.TASKS),
        ("precision", FLAGS.precision, benchmarking.PRECISIONS),
    ):
        unknown = [v for v in given if v not in valid]
        if unknown:
            raise _common.UsageError(
                f"--{name}: unknown {unknown}; valid: {', '.join(valid)}"
            )
    if min(batch_sizes) < 1:
        raise _common.UsageError(
            f"--batch_sizes must be positive: {batch_sizes}"
        )
    if FLAGS.dataset:
        return _data_benchmark(batch_sizes[0], FLAGS.modes[0])
    if FLAGS.runtimes:
        return _runtimes_benchmark(batch_sizes)
    make, input_shape = _factory()
    report = benchmarking.run_benchmark(
        make,
        input_shape,
        tasks=FLAGS.tasks,
        modes=FLAGS.modes,
        batch_sizes=batch_sizes,
        rounds=FLAGS.rounds,
        min_seconds=FLAGS.min_seconds,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        measure_peak=FLAGS.peak,
        reference=_reference(input_shape),
        precisions=FLAGS.precision,
    )
    print(benchmarking.format_table(report))
    if FLAGS.out:
        benchmarking.write_json(report, FLAGS.out)
        print(f"wrote {FLAGS.out}")
    return 0


def main(argv):
    def check():
        if FLAGS.dataset:
            _common.check_dataset(FLAGS.dataset)

    return _common.run_main("kb-benchmark", _benchmark, check, argv=argv)


def run():
    _common.run_app(main, "kb-benchmark", __name__)


if __name__ == "__main__":
    run()
