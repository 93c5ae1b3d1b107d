"""Argument checks shared by the project's layers, models and data sets."""

from __future__ import annotations

import numbers


def positive_int(name: str, value, *, error: type[Exception] = ValueError):
    """Returns `value` if it is a positive int (a NumPy integer counts,
    a bool does not); else raises `error` naming the argument and what
    was received."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < 1
    ):
        raise error(
            f"{name} must be a positive int. Received: {name}={value!r}"
        )
    return value


def non_negative_int(name: str, value) -> int:
    """Returns `value` if it is an int >= 0 (not a bool); else raises a
    ValueError naming the argument and what was received."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{name} must be a non-negative int. Received: {name}={value!r}"
        )
    return value


def rate(name: str, value) -> float:
    """Returns `value` as a float if it is a number in [0, 1) (not a
    bool); else raises a ValueError naming the argument."""
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"{name} must be in [0, 1). Received: {name}={value!r}"
        )
    return float(value)
