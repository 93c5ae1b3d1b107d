"""Comparing nests of tensors, for the test harness in `testing`.

Seeded random inputs, the largest difference between two nests, shape
nests with dynamic sizes, and an elementwise closeness assertion that
says which output differs and by how much.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


def random_inputs(
    shape_or_spec: Any, *, seed: int = 0, dtype: str = "float32", maxval=None
) -> Any:
    """Seeded random inputs: uniform in [-1, 1) for floats, [0, maxval)
    for integers. `shape_or_spec` may be a nest of shapes."""
    rng = np.random.default_rng(seed)

    def make(shape):
        shape = tuple(2 if d is None else d for d in shape)
        if np.issubdtype(np.dtype(dtype), np.integer):
            return tf.constant(rng.integers(0, maxval or 10, shape), dtype)
        return tf.constant(rng.uniform(-1.0, 1.0, shape), dtype)

    return keras.tree.map_shape_structure(make, shape_or_spec)


def to_numpy(x):
    return keras.tree.map_structure(
        lambda t: np.asarray(keras.ops.convert_to_numpy(t)), x
    )


def max_abs_diff(a, b) -> float:
    pairs = zip(
        keras.tree.flatten(to_numpy(a)),
        keras.tree.flatten(to_numpy(b)),
        strict=True,
    )
    worst = 0.0
    for x, y in pairs:
        if x.shape != y.shape:
            raise AssertionError(f"shape {x.shape} != {y.shape}")
        if x.size:
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            worst = max(worst, float(np.max(diff)))
    return worst


def shapes_match(actual, expected) -> bool:
    """Equal nests of shapes; None in `expected` matches any size (a
    dynamic dimension such as a sequence length)."""

    def is_shape(value):
        return isinstance(value, tuple) and all(
            d is None or isinstance(d, int) for d in value
        )

    if is_shape(actual) and is_shape(expected):
        return len(actual) == len(expected) and all(
            w is None or h == w for h, w in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            shapes_match(actual[k], expected[k]) for k in actual
        )
    if isinstance(actual, (list, tuple)) and isinstance(
        expected, (list, tuple)
    ):
        return len(actual) == len(expected) and all(
            shapes_match(a, e) for a, e in zip(actual, expected, strict=True)
        )
    return False


def assert_close(actual, expected, *, atol: float, rtol: float, what: str):
    """Asserts two nests of tensors are elementwise close; says where."""
    flat_a = keras.tree.flatten(to_numpy(actual))
    flat_e = keras.tree.flatten(to_numpy(expected))
    if len(flat_a) != len(flat_e):
        raise AssertionError(
            f"{what}: {len(flat_a)} outputs, expected {len(flat_e)}"
        )
    for index, (a, e) in enumerate(zip(flat_a, flat_e, strict=True)):
        if a.shape != e.shape:
            raise AssertionError(
                f"{what}: output {index} has shape {a.shape}, "
                f"expected {e.shape}"
            )
        if not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=False):
            worst = float(np.max(np.abs(a.astype(np.float64) - e)))
            raise AssertionError(
                f"{what}: output {index} differs by up to {worst:.3g} "
                f"(atol={atol}, rtol={rtol})"
            )
