"""The graph functions of an export: our `serving_default` (named
inputs checked first, named outputs) and `validate`."""

from __future__ import annotations

import tensorflow as tf


def input_names(model, count: int) -> list[str]:
    try:
        names = [t.name.split(":")[0] for t in model.inputs]
    except (AttributeError, ValueError, TypeError):
        names = []
    if len(names) != count or len(set(names)) != count:
        names = (
            ["inputs"] if count == 1 else [f"inputs_{i}" for i in range(count)]
        )
    return [n.replace("/", "_") for n in names]


def _output_names(model, count: int) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != count or len(set(names)) != count:
        names = (
            ["outputs"]
            if count == 1
            else [f"outputs_{i}" for i in range(count)]
        )
    return names


def _checks(name: str, x, spec: tf.TensorSpec, finite: bool):
    """Graph assertions on one input, each naming the input and spec."""
    expected = [d if d is not None else -1 for d in spec.shape.as_list()]
    described = (
        f"input '{name}' expects shape {tuple(spec.shape.as_list())} "
        f"dtype {spec.dtype.name}"
    )
    # The signature's static shape would let Grappler fold these checks
    # away; an unknown-shape view of the input keeps them at run time.
    x = tf.raw_ops.PlaceholderWithDefault(input=x, shape=None)
    shape = tf.shape(x)
    checks = [
        tf.debugging.assert_equal(
            tf.rank(x), len(expected), message=f"{described}: wrong rank"
        )
    ]
    with tf.control_dependencies(checks):
        padded = tf.concat(
            [
                shape,
                tf.ones(
                    [tf.maximum(len(expected) - tf.size(shape), 0)], tf.int32
                ),
            ],
            0,
        )[: len(expected)]
        known = [i for i, d in enumerate(expected) if d >= 0]
        if known:
            checks.append(
                tf.debugging.assert_equal(
                    tf.gather(padded, known),
                    tf.constant([expected[i] for i in known], tf.int32),
                    message=f"{described}: wrong shape",
                )
            )
        checks.append(
            tf.debugging.assert_greater(
                padded[0], 0, message=f"{described}: empty batch"
            )
        )
        if finite and spec.dtype.is_floating:
            checks.append(
                tf.debugging.assert_equal(
                    tf.reduce_all(tf.math.is_finite(x)),
                    True,
                    message=f"{described}: non-finite values",
                )
            )
    return checks


def serving_functions(model, signature, specs, names, output_names, forward):
    """Our `serving_default` (named inputs, checked first, named outputs)
    and `validate` endpoints; `serve` calls `forward`, the model's traced
    inference function (Keras's `serve` endpoint), so the model is traced
    once for all of them. Nothing runs the model here; the output names
    are recorded into `output_names` when `serve` is traced."""

    def serve(*tensors):
        checks = []
        for name, x, spec in zip(names, tensors, specs, strict=True):
            checks += _checks(name, x, spec, finite=False)
        with tf.control_dependencies(checks):
            tensors = [
                tf.ensure_shape(tf.identity(x), s.shape)
                for x, s in zip(tensors, specs, strict=True)
            ]
        arguments = tf.nest.pack_sequence_as(signature, tensors)
        flat = tf.nest.flatten(forward(*arguments))
        output_names[:] = _output_names(model, len(flat))
        return dict(zip(output_names, flat, strict=True))

    def validate(*tensors):
        checks = []
        for name, x, spec in zip(names, tensors, specs, strict=True):
            checks += _checks(name, x, spec, finite=True)
        with tf.control_dependencies(checks):
            return {"valid": tf.constant(True)}

    return serve, validate
