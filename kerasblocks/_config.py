"""`CapturedConfig`: a config made of the constructor's own arguments.

Keras can only produce a config automatically when every constructor
argument is a plain Python value. This mixin records the arguments a
class was constructed with (defaults included, layers and callables
serialized, `*args` kept in order) and rebuilds the object by calling
the constructor with them again. `kerasblocks.Block` and the zoo's model
classes use it, so that their config *is* their constructor call.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

import keras

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


def _varargs_name(cls) -> str | None:
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return name
    return None


def _keras_activation_name(value: Any) -> str | None:
    """The name of one of Keras's own activation functions, else None."""
    name = getattr(value, "__name__", None)
    if not isinstance(name, str) or isinstance(value, type):
        return None
    try:
        return name if keras.activations.get(name) is value else None
    except (ValueError, TypeError):
        return None


def _serialize(value: Any) -> Any:
    # Keras's own activations go by name, as Keras's layers write them:
    # serialize_keras_object would record them as functions of
    # "builtins", which safe loading must refuse.
    if callable(value) and (name := _keras_activation_name(value)):
        return name
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


@contextlib.contextmanager
def _global_policy(dtype: Any):
    """Makes `dtype` (a policy config or name) the global policy while
    a mixed-precision object is constructed."""
    policy = keras.dtype_policies.get(dtype) if dtype is not None else None
    if policy is None or policy.compute_dtype == policy.variable_dtype:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class CapturedConfig:
    """Mixin for Keras layers/models: `get_config` returns the arguments
    the object was constructed with; `from_config` constructs it again.

    Put it before the Keras base class: `class M(CapturedConfig,
    keras.Model)`. Arguments must be JSON-able values, Keras objects or
    registered callables, or lists/dicts of them.
    """

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

    def _base_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Merges base-layer arguments (name, dtype, trainable) that
        `from_config` could not pass to a constructor lacking them."""
        pending = self.__dict__.pop("_kerasblocks_pending", None)
        return {**pending, **kwargs} if pending else kwargs

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
        # Sublayers are made in the constructor and take the global dtype
        # policy; a model saved under mixed precision must come back so.
        with _global_policy(base.get("dtype")):
            instance.__init__(*args, **kwargs)
        return instance
