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
import warnings

import keras
import tensorflow as tf

from kerasblocks import _keras_compat
from kerasblocks._config import CapturedConfig


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


class Block(CapturedConfig, keras.Model):
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

    def __init__(self, **kwargs):
        super().__init__(**self._base_kwargs(kwargs))

    def build(self, input_shape):
        """Creates every variable by running `call` on a symbolic input."""
        inputs = keras.tree.map_shape_structure(
            lambda shape: keras.KerasTensor(shape, dtype=self.input_dtype),
            input_shape,
        )
        try:
            _keras_compat.backend.compute_output_spec(self.call, inputs)
        except Exception as error:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' could not be built "
                f"for input shape {input_shape}: {error}"
            ) from error
