"""`Block`: the base class for composite blocks.

Keras 3 no longer converts a layer's `call` with AutoGraph, so the
chapter's blocks that use Python control flow on tensors (`while
tf.reduce_sum(x) > 1: x /= 2`) fail under `tf.function`, XLA and `fit`
with `OperatorNotAllowedInGraphError`. Keras also cannot produce a config
for a `keras.Model` subclass whose constructor takes layers or variadic
arguments, so such blocks cannot be saved whole. `Block` fixes both:

- `call` is converted with AutoGraph whenever it runs inside a graph, so
  Python `if`/`while` on tensors become `tf.cond`/`tf.while_loop`; eagerly
  it runs as the plain Python it is. Only the body of `call` is converted,
  not the functions it calls (wrap such a helper in `tf.function`).
- The constructor's arguments (defaults included, layers and callables
  serialized, `*args` kept in order) are captured and returned by
  `get_config`; `from_config` calls the constructor with them again.
- `build` creates every variable by running `call` on symbolic inputs, so
  a block reloaded from a file is built before its weights are assigned.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any

import keras
import tensorflow as tf

# Arguments that `keras.layers.Layer.__init__` owns; they are written by
# `Layer.get_config` and never captured twice.
_BASE_ARGUMENTS = ("name", "trainable", "dtype", "activity_regularizer")


class _CapturedArguments:
    """Constructor arguments of a block, kept out of Keras's tracking.

    Deliberately neither a list, dict nor KerasSaveable: Keras's weight
    walker and attribute tracker must not see the layers held here.
    """

    __slots__ = ("varargs_name", "varargs", "kwargs")

    def __init__(self, varargs_name, varargs, kwargs):
        self.varargs_name = varargs_name
        self.varargs = varargs
        self.kwargs = kwargs


def _autograph_call(call):
    """Wraps `call` so that graph tracing runs its AutoGraph conversion."""
    converted = None

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        nonlocal converted
        if tf.executing_eagerly():
            return call(self, *args, **kwargs)
        if converted is None:
            try:
                # Only the body of `call`: converting the functions it calls
                # would reach into Keras's own layer code.
                converted = tf.autograph.to_graph(call, recursive=False)
            except Exception as error:  # source unavailable, e.g. a REPL
                warnings.warn(
                    f"{type(self).__name__}.call could not be converted "
                    f"with AutoGraph ({error}); Python control flow on "
                    "tensors will fail inside tf.function.",
                    stacklevel=2,
                )
                converted = call
        return converted(self, *args, **kwargs)

    wrapper._kerasblocks_autograph = True
    return wrapper


def _varargs_name(cls) -> str | None:
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return name
    return None


def _serialize(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_serialize(v) for v in value]
    if isinstance(value, dict):
        return {k: _serialize(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return keras.saving.serialize_keras_object(value)


def _deserialize(value: Any) -> Any:
    if isinstance(value, list):
        return [_deserialize(v) for v in value]
    if isinstance(value, dict):
        if "class_name" in value and "config" in value:
            return keras.saving.deserialize_keras_object(value)
        return {k: _deserialize(v) for k, v in value.items()}
    return value


class Block(keras.Model):
    """Base class for composite blocks whose config is their constructor.

    Subclass it like `keras.Model`: create sublayers in `__init__`, write
    `call`. The subclass then

    - returns its constructor arguments from `get_config` and is rebuilt
      from them by `from_config`, even when the arguments are layers,
      callables or `*args`, so it saves whole to `.keras` and `.h5`
      (register it with `@kerasblocks.register(package=...)` first);
    - may use Python control flow on tensors in `call`: it is converted
      with AutoGraph whenever it is traced, so it works eagerly, under
      `tf.function`, with `jit_compile=True` and inside `model.fit`;
    - builds all its variables from an input shape (`build`), by running
      `call` on symbolic inputs.

    Blocks whose `call` takes several tensor arguments should override
    `build` (or take one tuple/dict argument).

    Example:

    >>> import keras, tensorflow as tf, kerasblocks
    >>> @kerasblocks.register(package="doctest")
    ... class Halve(kerasblocks.Block):
    ...     def __init__(self, units: int, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.units = units
    ...         self.dense = keras.layers.Dense(units, name="dense")
    ...     def call(self, x):
    ...         x = self.dense(x)
    ...         while tf.reduce_sum(tf.abs(x)) > 1.0:
    ...             x = x / 2.0
    ...         return x
    >>> block = Halve(4)
    >>> y = tf.function(block, jit_compile=True)(tf.ones((2, 3)))
    >>> bool(tf.reduce_sum(tf.abs(y)) <= 1.0)
    True
    >>> block.get_config()["units"]
    4
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("call")
        if call is not None and not getattr(
            call, "_kerasblocks_autograph", False
        ):
            cls.call = _autograph_call(call)

    def __new__(cls, *args, **kwargs):
        instance = super().__new__(cls, *args, **kwargs)
        varargs_name = _varargs_name(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except TypeError:
            bound = None  # `__init__` raises the TypeError itself.
        captured = _CapturedArguments(varargs_name, (), {})
        if bound is not None:
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(arguments)))  # self
            for name, parameter in inspect.signature(
                cls.__init__
            ).parameters.items():
                if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(arguments.pop(name, {}))
            captured.varargs = tuple(arguments.pop(varargs_name, ()))
            captured.kwargs = {
                k: v for k, v in arguments.items() if k not in _BASE_ARGUMENTS
            }
        object.__setattr__(instance, "_kerasblocks_arguments", captured)
        return instance

    def __init__(self, **kwargs):
        pending = self.__dict__.pop("_kerasblocks_pending", None)
        if pending:
            kwargs = {**pending, **kwargs}
        super().__init__(**kwargs)

    def build(self, input_shape):
        """Creates every variable by running `call` on a symbolic input."""
        inputs = keras.tree.map_shape_structure(
            lambda shape: keras.KerasTensor(shape, dtype=self.input_dtype),
            input_shape,
        )
        try:
            keras.src.backend.compute_output_spec(self.call, inputs)
        except Exception as error:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' could not be built "
                f"for input shape {input_shape}: {error}"
            ) from error

    def get_config(self) -> dict[str, Any]:
        config = keras.layers.Layer.get_config(self)
        captured = self._kerasblocks_arguments
        if captured.varargs_name is not None:
            config[captured.varargs_name] = _serialize(list(captured.varargs))
        for key, value in captured.kwargs.items():
            config[key] = _serialize(value)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        config = dict(config)
        parameters = inspect.signature(cls.__init__).parameters
        accepts_any = any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
        )
        base = {k: config.pop(k) for k in _BASE_ARGUMENTS if k in config}
        varargs_name = _varargs_name(cls)
        args = []
        if varargs_name is not None:
            args = _deserialize(config.pop(varargs_name, []))
        kwargs = {k: _deserialize(v) for k, v in config.items()}
        pending = {}
        for key, value in base.items():
            if accepts_any or key in parameters:
                kwargs[key] = value
            else:
                pending[key] = value
        instance = cls.__new__(cls, *args, **kwargs)
        object.__setattr__(instance, "_kerasblocks_pending", pending)
        instance.__init__(*args, **kwargs)
        return instance
