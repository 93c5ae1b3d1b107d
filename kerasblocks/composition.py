"""Composition: sequences, parallel branches, residual connections, repeats.

These are the chapter's `MySequential` and its relatives. They hold Keras
layers *and* plain callables, keep a layer that appears twice as one
layer (tied parameters) through every save format, and serialize to a
config that names no code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import keras

from kerasblocks import _keras_compat
from kerasblocks._registry import register
from kerasblocks.block import Block
from kerasblocks.layers.function import Function

LayerLike = keras.layers.Layer | Callable


def _as_layer(item: LayerLike, owner: str) -> keras.layers.Layer:
    if isinstance(item, keras.layers.Layer):
        return item
    if callable(item) or isinstance(item, str):
        return Function(item)
    raise TypeError(
        f"{owner} takes Keras layers, callables or function names. "
        f"Received: {item!r} "
        f"of type {type(item).__name__}"
    )


def _as_layers(items: Iterable[LayerLike], owner: str):
    # Converting each distinct callable once keeps `[f, f]` tied too.
    converted: dict[int, keras.layers.Layer] = {}
    layers = []
    for item in items:
        if id(item) not in converted:
            converted[id(item)] = _as_layer(item, owner)
        layers.append(converted[id(item)])
    return layers


def serialize_items(layers: Iterable[keras.layers.Layer]) -> list:
    """Serializes layers in order; a repeated layer becomes a reference.

    A layer that appears a second time is written as `{"shared_with": i}`
    (the index of its first appearance), so that loading rebuilds one
    layer used twice instead of two independent copies.
    """
    first_seen: dict[int, int] = {}
    items = []
    for index, layer in enumerate(layers):
        if id(layer) in first_seen:
            items.append({"shared_with": first_seen[id(layer)]})
        else:
            first_seen[id(layer)] = index
            items.append(keras.saving.serialize_keras_object(layer))
    return items


def deserialize_items(items: list) -> list:
    """Inverse of `serialize_items`."""
    layers = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and set(item) == {"shared_with"}:
            source = item["shared_with"]
            if not isinstance(source, int) or not 0 <= source < index:
                raise ValueError(
                    f"Item {index} refers to item {source}, which does not "
                    "come before it."
                )
            layers.append(layers[source])
        else:
            layers.append(keras.saving.deserialize_keras_object(item))
    return layers


class _Container(Block):
    """Shared config handling for blocks that hold an ordered list."""

    _items_key = "items"

    def _layer_list(self) -> list:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config = keras.layers.Layer.get_config(self)
        config.update(self._extra_config())
        config[self._items_key] = serialize_items(self._layer_list())
        return config

    def _extra_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        config = dict(config)
        items = deserialize_items(config.pop(cls._items_key))
        return cls(*items, **config)

    def __len__(self) -> int:
        return len(self._layer_list())

    def __getitem__(self, index: int) -> keras.layers.Layer:
        return self._layer_list()[index]

    def named_children(self) -> dict[str, keras.layers.Layer]:
        """The distinct children by layer name, in order."""
        children = {}
        for layer in self._layer_list():
            children.setdefault(layer.name, layer)
        return children


@register()
class SequentialBlock(_Container):
    """Applies layers and callables in order (the chapter's MySequential).

    A layer passed twice is one layer used twice: its variables are tied,
    gradients of both uses add up, and the tie survives saving.

    Args:
        *items: Keras layers, plain callables (`tf.nn.relu`,
            `keras.activations.gelu`, registered functions) or their names
            (`"relu"`, `"tf.nn.relu"`).

    Example:

    >>> import keras, tensorflow as tf, kerasblocks
    >>> net = kerasblocks.SequentialBlock(
    ...     keras.layers.Dense(8), tf.nn.relu, keras.layers.Dense(2))
    >>> net(tf.ones((3, 4))).shape
    TensorShape([3, 2])
    >>> [type(layer).__name__ for layer in net]
    ['Dense', 'Function', 'Dense']
    """

    def __init__(self, *items: LayerLike, **kwargs):
        super().__init__(**kwargs)
        self.items = _as_layers(items, "SequentialBlock")

    def _layer_list(self):
        return self.items

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.items:
            x = _call_layer(layer, x, training)
        return x


@register()
class Parallel(_Container):
    """Applies branches to the same input and merges their outputs.

    Args:
        *branches: Keras layers or callables, each applied to the input.
        merge: `"concat"` (along `axis`, default the last), `"add"`, or
            `"stack"` (a new axis at `axis`, default 1).
        axis: the concatenation or stacking axis.

    Example:

    >>> import keras, tensorflow as tf, kerasblocks
    >>> block = kerasblocks.Parallel(
    ...     keras.layers.Dense(3), keras.layers.Dense(5), merge="concat")
    >>> block(tf.ones((2, 4))).shape
    TensorShape([2, 8])
    """

    _items_key = "branches"
    _MERGES = ("concat", "add", "stack")

    def __init__(
        self,
        *branches: LayerLike,
        merge: str = "concat",
        axis: int | None = None,
        **kwargs,
    ):
        if merge not in self._MERGES:
            raise ValueError(
                f"merge must be one of {self._MERGES}. Received: {merge=}"
            )
        if not branches:
            raise ValueError("Parallel needs at least one branch.")
        if axis is not None and not isinstance(axis, int):
            raise ValueError(f"axis must be an int or None. Received: {axis=}")
        super().__init__(**kwargs)
        self.merge = merge
        self.axis = axis
        self.branches = _as_layers(branches, "Parallel")

    def _layer_list(self):
        return self.branches

    def _extra_config(self):
        return {"merge": self.merge, "axis": self.axis}

    def call(self, inputs, training=None):
        outputs = [_call_layer(b, inputs, training) for b in self.branches]
        if self.merge == "add":
            _check_same_shapes(self, outputs)
            total = outputs[0]
            for output in outputs[1:]:
                total = total + output
            return total
        if self.merge == "stack":
            _check_same_shapes(self, outputs)
            axis = 1 if self.axis is None else self.axis
            return keras.ops.stack(outputs, axis=axis)
        axis = -1 if self.axis is None else self.axis
        return keras.ops.concatenate(outputs, axis=axis)


@register()
class Residual(Block):
    """Adds a block's output to its input: `y = block(x) + shortcut(x)`.

    Args:
        block: the residual branch.
        shortcut: applied to the input before the addition (for example a
            strided 1x1 convolution when the branch changes the shape);
            the identity when None.
        activation: applied after the addition (e.g. `"relu"` as in
            ResNet); none when None.

    Example:

    >>> import keras, tensorflow as tf, kerasblocks
    >>> block = kerasblocks.Residual(keras.layers.Dense(4))
    >>> block(tf.ones((2, 4))).shape
    TensorShape([2, 4])
    """

    def __init__(
        self,
        block: LayerLike,
        shortcut: LayerLike | None = None,
        activation: str | Callable | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.block = _as_layer(block, "Residual")
        self.shortcut = (
            None if shortcut is None else _as_layer(shortcut, "Residual")
        )
        self.activation = activation
        self._activation_fn = (
            None if activation is None else keras.activations.get(activation)
        )

    def call(self, inputs, training=None):
        y = _call_layer(self.block, inputs, training)
        skip = inputs
        if self.shortcut is not None:
            skip = _call_layer(self.shortcut, inputs, training)
        if tuple(y.shape[1:]) != tuple(skip.shape[1:]):
            what = "input" if self.shortcut is None else "shortcut output"
            raise ValueError(
                f"Residual '{self.name}': the block's output shape "
                f"{tuple(y.shape)} differs from the {what} shape "
                f"{tuple(skip.shape)}; pass a shortcut that projects the "
                "input (e.g. a 1x1 Conv2D or a Dense layer)."
            )
        y = y + skip
        if self._activation_fn is not None:
            y = self._activation_fn(y)
        return y


def repeat(
    block: keras.layers.Layer, n: int, *, name: str | None = None
) -> SequentialBlock:
    """Returns a SequentialBlock of `n` independent copies of `block`.

    Each copy is built from `block.get_config()`, so the copies share the
    architecture but not the variables (unlike passing one layer `n`
    times, which ties them). The copies are named `{block.name}_{i}`.

    Example:

    >>> import keras, tensorflow as tf, kerasblocks
    >>> stack = kerasblocks.repeat(keras.layers.Dense(4, name="fc"), 3)
    >>> [layer.name for layer in stack]
    ['fc_0', 'fc_1', 'fc_2']
    >>> stack(tf.ones((1, 4))).shape
    TensorShape([1, 4])
    """
    if not isinstance(block, keras.layers.Layer):
        raise TypeError(
            f"repeat takes a Keras layer. Received: {type(block).__name__}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int. Received: {n=}")
    config = block.get_config()
    copies = []
    for index in range(n):
        config_i = dict(config, name=f"{block.name}_{index}")
        copies.append(type(block).from_config(config_i))
    return SequentialBlock(*copies, name=name)


def _call_layer(layer, x, training):
    if _keras_compat.call_has_training_arg(layer):
        return layer(x, training=training)
    return layer(x)


def _check_same_shapes(owner, outputs):
    shapes = {tuple(o.shape[1:]) for o in outputs}
    if len(shapes) > 1:
        raise ValueError(
            f"{type(owner).__name__} '{owner.name}' with merge="
            f"{owner.merge!r} needs branches of one shape. Received: "
            f"{sorted(shapes, key=str)}"
        )
