"""kb-inspect: a zoo model's summary, parameter table and layer shapes.

python -m tools.inspect --model=resnet18
python -m tools.inspect --model=lenet --model_overrides='{"num_classes": 3}'
python -m tools.inspect --list --markdown --readme=README.md
"""

from __future__ import annotations

from absl import flags

from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Zoo model name (zoo.list_models()).")
flags.DEFINE_string("model_overrides", "{}", "JSON object of model arguments.")
flags.DEFINE_bool("list", False, "List the registered model names and exit.")
flags.DEFINE_bool(
    "markdown",
    False,
    "With --list: a Markdown table of every model (name, family, task, "
    "parameters at the defaults, pretrained weights, summary).",
)
flags.DEFINE_string(
    "param_counts",
    None,
    "With --markdown: a JSON file of known parameter counts by model name "
    "(e.g. tests/goldens/param_counts.json); models missing from it are "
    "built to count them.",
)
flags.DEFINE_string(
    "readme",
    None,
    "With --markdown: rewrite the table between the model-table marker "
    "comments of this file instead of printing it.",
)


def layer_shapes(model) -> list[tuple[str, str, str]]:
    """(layer name, class, output shape) of each top-level layer."""
    rows = []
    for layer in model.layers:
        try:
            shape = str(layer.output.shape)
        except (AttributeError, ValueError):
            shape = "?"
        rows.append((layer.name, type(layer).__name__, shape))
    return rows


def _inspect() -> int:
    import json

    import kerasblocks as kb
    import zoo

    if FLAGS.list:
        if FLAGS.markdown:
            return _markdown(zoo)
        for name in zoo.list_models():
            print(f"{name:24} {zoo.get_model_entry(name).summary}")
        return 0
    if not FLAGS.model:
        raise _common.UsageError("--model is required (or --list)")
    try:
        overrides = json.loads(FLAGS.model_overrides)
    except json.JSONDecodeError as error:
        raise _common.UsageError(
            f"--model_overrides is not JSON: {error}"
        ) from None
    model = _common.create_zoo_model(FLAGS.model, overrides)
    model.summary(line_length=100)
    print()
    print(kb.params.parameter_table(model))
    print()
    rows = layer_shapes(model)
    width = max(len(r[0]) for r in rows)
    kind = max(len(r[1]) for r in rows)
    print(f"{'layer':{width}}  {'class':{kind}}  output shape")
    for name, cls, shape in rows:
        print(f"{name:{width}}  {cls:{kind}}  {shape}")
    return 0


def _markdown(zoo) -> int:
    import json

    from zoo import _table

    counts = {}
    if FLAGS.param_counts:
        with open(FLAGS.param_counts, encoding="utf-8") as f:
            counts = json.load(f)
    table = zoo.model_table(counts)
    if not FLAGS.readme:
        print(table, end="")
        return 0
    with open(FLAGS.readme, encoding="utf-8") as f:
        text = f.read()
    try:
        updated = _table.with_table(text, table)
    except ValueError as error:
        raise ValueError(f"{FLAGS.readme}: {error}") from None
    with open(FLAGS.readme, "w", encoding="utf-8") as f:
        f.write(updated)
    print(
        f"kb-inspect: wrote the table of {len(zoo.list_models())} models "
        f"to {FLAGS.readme}"
    )
    return 0


def _check() -> None:
    if not FLAGS.list and not FLAGS.model:
        raise _common.UsageError("--model is required (or --list)")


def main(argv):
    return _common.run_main("kb-inspect", _inspect, _check, argv=argv)


def run():
    _common.run_app(main, "kb-inspect", __name__)


if __name__ == "__main__":
    run()
