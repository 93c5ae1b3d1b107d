"""kb-inspect: a zoo model's summary, parameter table and layer shapes.

python -m tools.inspect --model=resnet18
python -m tools.inspect --model=lenet --model_overrides='{"num_classes": 3}'
"""

from __future__ import annotations

from absl import flags

from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Zoo model name (zoo.list_models()).")
flags.DEFINE_string("model_overrides", "{}", "JSON object of model arguments.")
flags.DEFINE_bool("list", False, "List the registered model names and exit.")


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


def main(argv):
    if len(argv) > 1:
        return _common.fail(
            "kb-inspect",
            _common.UsageError(f"unexpected arguments: {argv[1:]}"),
        )
    return _common.run_main("kb-inspect", _inspect)


def run():
    _common.run_app(main, "kb-inspect", __name__)


if __name__ == "__main__":
    run()
