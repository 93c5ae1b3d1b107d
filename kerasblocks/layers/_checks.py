"""Input checks that are clear errors eagerly and assertions in graphs.

Eagerly (and whenever a graph knows the answer statically) a failed check
raises a ValueError with the given message. Inside a graph whose shapes or
values are only known at run time it becomes a `tf.debugging.Assert` op
carrying the same message (an `InvalidArgumentError` when it fails);
callers make their outputs depend on the returned ops. XLA compiles
assertions to nothing, so under `jit_compile=True` only the static checks
remain.

`check_image_input` and `known_last_dim` check the input shape a layer
is built for, with the ValueError every layer of this package gives.
"""

from __future__ import annotations

import tensorflow as tf


def require(condition, message: str, data=()) -> list:
    """Checks a boolean scalar; returns the assertion ops to depend on.

    `data` (tensors) is printed after the message by a failing run-time
    assertion.

    Raises:
        ValueError: the condition is false and known now.
    """
    if isinstance(condition, bool):
        static = condition
    elif tf.executing_eagerly():
        static = bool(condition)
    else:
        static = tf.get_static_value(condition)
    if static is not None:
        if not bool(static):
            raise ValueError(message)
        return []
    return [tf.debugging.Assert(condition, [message, *data])]


def check_image_input(layer, input_shape) -> int:
    """The channels of a `(batch, height, width, channels)` input shape;
    a ValueError naming `layer` for any other shape."""
    if len(input_shape) != 4 or input_shape[-1] is None:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' takes (batch, height, "
            "width, channels) inputs with known channels. Received: "
            f"{input_shape=}"
        )
    return int(input_shape[-1])


def known_last_dim(what: str, input_shape) -> int:
    """The last dimension of `input_shape`; a ValueError naming `what`
    when it is unknown."""
    if input_shape[-1] is None:
        raise ValueError(
            f"{what} needs a known last dimension. Received: {input_shape=}"
        )
    return input_shape[-1]


def with_checks(tensor, checks: list):
    """`tensor`, computed after the assertion ops in `checks`."""
    if not checks:
        return tensor
    with tf.control_dependencies(checks):
        return tf.identity(tensor)


def check_shape(tensor, expected, name: str, *, allow_one=()) -> list:
    """Checks that `tensor` has the rank and sizes of `expected`.

    Args:
        tensor: the tensor to check.
        expected: one entry per axis: an int, a scalar tensor (a size
            known only at run time) or None (any size).
        name: the argument's name, for the message.
        allow_one: axes that may also have size 1 (broadcast).

    Returns:
        Assertion ops for the sizes only known at run time.
    """
    expected = list(expected)
    shown = tuple(
        e if isinstance(e, int) or e is None else "?" for e in expected
    )
    received = tuple(tensor.shape.as_list())
    message = f"{name} must have shape {shown}. Received: shape={received}"
    if tensor.shape.rank != len(expected):
        raise ValueError(message)
    checks = []
    dynamic = tf.shape(tensor)
    for axis, want in enumerate(expected):
        if want is None:
            continue
        have = tensor.shape[axis]
        want_static = want if isinstance(want, int) else None
        if want_static is None and not tf.is_tensor(want):
            continue
        if want_static is None:
            want_static = tf.get_static_value(want)
        if have is not None and want_static is not None:
            if have != want_static and not (axis in allow_one and have == 1):
                raise ValueError(message)
            continue
        size = dynamic[axis] if have is None else have
        condition = tf.equal(size, want)
        if axis in allow_one:
            condition = tf.logical_or(condition, tf.equal(size, 1))
        checks += require(condition, message + "; at run time", data=[dynamic])
    return checks


def checked(tensor, expected, name: str, checks: list, allow_one=()):
    """`tensor` after its `check_shape` ops, which are also added to
    `checks`, so that no op using it runs before them."""
    new = check_shape(tensor, expected, name, allow_one=allow_one)
    checks += new
    return with_checks(tensor, new)


def dim(x, axis: int):
    """The size of `x` along `axis`: an int when known statically, else
    a scalar tensor."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]
