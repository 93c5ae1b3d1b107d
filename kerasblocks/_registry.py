"""Serialization registration and the catalogue of public objects.

Every public layer, block, initializer and function of this project is
registered with Keras (so `load_model` needs no `custom_objects`) and
recorded here, so that the conformance suite can check that each one is
tested.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import keras

T = TypeVar("T")

_CATALOGUE: dict[str, object] = {}


def register(
    package: str = "kerasblocks", name: str | None = None
) -> Callable[[T], T]:
    """Registers a class or function for Keras serialization.

    A thin wrapper over `keras.saving.register_keras_serializable` that
    also records the object in the project's catalogue and refuses a name
    that is already taken by another object.

    Args:
        package: the namespace of the registered name (`"package>Name"`).
        name: the name inside the package; defaults to the object's
            `__name__`.

    Returns:
        A decorator that returns the object unchanged.

    Example:

    >>> import keras, kerasblocks
    >>> @kerasblocks.register(package="my_project")
    ... def scaled_relu(x):
    ...     return 2.0 * keras.ops.relu(x)
    >>> keras.saving.get_registered_name(scaled_relu)
    'my_project>scaled_relu'
    """
    if not isinstance(package, str) or not package or ">" in package:
        raise ValueError(
            "package must be a non-empty string without '>'. "
            f"Received: {package=}"
        )

    def decorator(obj: T) -> T:
        key = f"{package}>{name or obj.__name__}"
        existing = keras.saving.get_custom_objects().get(key)
        if existing is not None and _qualname(existing) != _qualname(obj):
            raise ValueError(
                f"The name {key!r} is already registered to "
                f"{_qualname(existing)}; cannot register {_qualname(obj)}."
            )
        # Re-registering the same definition (a re-imported module) is fine.
        keras.saving.get_custom_objects().pop(key, None)
        keras.saving.register_keras_serializable(package=package, name=name)(
            obj
        )
        _CATALOGUE[key] = obj
        return obj

    return decorator


def registered_objects(package: str | None = None) -> dict[str, object]:
    """Returns the objects registered through `register`, by name.

    Args:
        package: only names in this package; all packages when None.
    """
    return {
        key: obj
        for key, obj in sorted(_CATALOGUE.items())
        if package is None or key.split(">", 1)[0] == package
    }


def _qualname(obj: object) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"
