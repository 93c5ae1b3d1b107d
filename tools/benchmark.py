r"""kb-benchmark: speed of eager, graph, XLA, auto and Keras defaults.

    kb-benchmark --model=resnet50 --input_size=224 --batch_sizes=32 \
        --tasks=inference --modes=graph,xla,auto,keras --out=bench.json
    kb-benchmark --mlp=784,256,10 --batch_sizes=256 --tasks=training \
        --modes=graph,xla,auto,keras,handwritten
    kb-benchmark --model=resnet50 --input_size=224 --modes=graph \
        --precision=float32,mixed_bfloat16,mixed_float16

All configurations are measured in one process, interleaved in rounds,
so the printed ratios are valid on a noisy machine; the JSON keeps every
sample. See tools/benchmarking.py for what each mode means.
"""

from __future__ import annotations

import sys

from absl import flags

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
    if len(argv) > 1:
        return _common.fail(
            "kb-benchmark",
            _common.UsageError(f"unexpected arguments: {argv[1:]}"),
        )
    return _common.run_main("kb-benchmark", _benchmark)


def run():
    _common.run_app(main, "kb-benchmark", __name__)


if __name__ == "__main__":
    run()
