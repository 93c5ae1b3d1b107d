"""`Function`: a plain callable as a named, serializable layer.

Only callables that can be named without running code from a file are
serializable: Keras's built-in activations, a fixed table of TensorFlow
element-wise functions, and functions registered with
`kerasblocks.register` or `keras.saving.register_keras_serializable`.
Anything else works in a model but refuses `get_config` with a clear
error, so a file never has to name an arbitrary module attribute.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from kerasblocks._keras_compat import naming
from kerasblocks._registry import register

# TensorFlow functions that are safe to name in a config (pure,
# element-wise or row-wise math). Looked up by name, never imported.
_TF_FUNCTIONS = (
    "tf.identity",
    "tf.nn.elu",
    "tf.nn.gelu",
    "tf.nn.leaky_relu",
    "tf.nn.log_softmax",
    "tf.nn.relu",
    "tf.nn.relu6",
    "tf.nn.selu",
    "tf.nn.sigmoid",
    "tf.nn.silu",
    "tf.nn.softmax",
    "tf.nn.softplus",
    "tf.nn.softsign",
    "tf.nn.tanh",
    "tf.math.abs",
    "tf.math.exp",
    "tf.math.negative",
    "tf.math.sigmoid",
    "tf.math.square",
    "tf.math.tanh",
)


def _tf_function(name: str) -> Callable:
    obj = tf
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


_BY_NAME = {name: _tf_function(name) for name in _TF_FUNCTIONS}
_BY_ID: dict[int, str] = {}
for _name, _fn in _BY_NAME.items():
    _BY_ID.setdefault(id(_fn), _name)


def function_name(fn: Callable) -> str:
    """Returns the name under which `fn` can be saved in a config.

    Raises:
        ValueError: if `fn` is not a built-in activation, a listed
            TensorFlow function or a registered function.
    """
    if id(fn) in _BY_ID:
        return _BY_ID[id(fn)]
    registered = keras.saving.get_registered_name(fn)
    if registered in keras.saving.get_custom_objects():
        return registered
    name = getattr(fn, "__name__", None)
    if isinstance(name, str):
        try:
            if keras.activations.get(name) is fn:
                return name
        except ValueError:
            pass
    raise ValueError(
        f"Cannot serialize the callable {fn!r}: only Keras activations, "
        "listed TensorFlow functions and registered functions can be "
        "saved. Register it with @kerasblocks.register() or wrap it in a "
        "layer."
    )


def function_from_name(name: str) -> Callable:
    """Inverse of `function_name`; never imports a module."""
    if not isinstance(name, str):
        raise ValueError(
            f"A function name must be a string. Received: {name!r}"
        )
    if name in _BY_NAME:
        return _BY_NAME[name]
    if ">" in name:
        fn = keras.saving.get_custom_objects().get(name)
        if fn is not None:
            return fn
        raise ValueError(
            f"The function {name!r} is not registered in this process; "
            "import the module that registers it before loading."
        )
    try:
        return keras.activations.get(name)
    except ValueError:
        raise ValueError(
            f"Unknown function {name!r}: expected a Keras activation name, "
            f"one of {sorted(_BY_NAME)}, or a registered 'package>name'."
        ) from None


@register()
class Function(keras.layers.Layer):
    """Applies a plain callable, such as `tf.nn.relu`, as a layer.

    Args:
        function: a callable `f(x) -> y`, or the name of one (a Keras
            activation such as `"gelu"`, `"tf.nn.relu"`, or a registered
            `"package>name"`).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> layer = kerasblocks.layers.Function(tf.nn.relu)
    >>> layer.name.startswith("relu"), layer.get_config()["function"]
    (True, 'tf.nn.relu')
    >>> layer(tf.constant([-1.0, 2.0])).numpy().tolist()
    [0.0, 2.0]
    """

    def __init__(self, function: Callable | str, **kwargs):
        if isinstance(function, str):
            function = function_from_name(function)
        if not callable(function):
            raise TypeError(
                f"function must be callable or a name. Received: {function!r}"
            )
        if kwargs.get("name") is None:
            base = getattr(function, "__name__", None) or "function"
            kwargs["name"] = naming.auto_name(base)
        super().__init__(**kwargs)
        self.function = function

    def call(self, inputs):
        return self.function(inputs)

    def get_config(self):
        config = super().get_config()
        config["function"] = function_name(self.function)
        return config
