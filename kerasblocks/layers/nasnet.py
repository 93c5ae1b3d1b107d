"""NASNet-A's cells, as keras.applications builds them.

A NASNet is built from two searched cells, `NASNetNormalCell` (keeps the
size) and `NASNetReductionCell` (halves it), whose main operation is
`NASNetSeparableBlock` (in `kerasblocks.layers.nasnet_separable`; still
importable from here). Each cell takes the outputs of the two cells
before it, `x` and `previous`, and returns a new `x`; the next cell's
`previous` is this cell's `x` input.

Before a cell uses `previous`, an "adjust" step gives it `x`'s size and
`filters` channels: `adjust="reduce"` (two offset stride-2 1x1
convolutions, concatenated; when `previous` is twice `x`'s size) or
`adjust="project"` (a 1x1 convolution; when only the channels differ).
`adjust_for` computes the setting keras.applications would choose.
Sublayer names are the weight-file contract.
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks.layers.mobile import stride_two_padding
from kerasblocks.layers.nasnet_separable import (
    NASNetSeparableBlock,
    check_nasnet_arguments,
)

# The name the argument check had here before the block moved out.
_check_common = check_nasnet_arguments

ADJUSTS = (None, "project", "reduce")
# keras.applications' 1x1 convolutions in NASNet.
_CONV_1X1 = {
    "kernel_size": 1,
    "use_bias": False,
    "kernel_initializer": "he_normal",
}


def adjust_for(previous_shape, shape, filters: int) -> str | None:
    """The adjust step keras.applications puts before a cell whose
    inputs have these shapes: "reduce" when the widths differ, else
    "project" when `previous` does not have `filters` channels, else
    None."""
    if previous_shape[2] != shape[2]:
        return "reduce"
    if previous_shape[-1] != filters:
        return "project"
    return None


def _half(size):
    return None if size is None else -(-size // 2)


class _NASNetCell(CapturedConfig, keras.layers.Layer):
    """What both cells share: the adjust step for `previous`, and the
    ReLU, 1x1 convolution (`conv_1`) and batch norm (`bn_1`) that give
    `x` `filters` channels. Subclasses set `_BRANCHES` (name, kernel
    size, stride) and define `_build_branches`, `call` and
    `_output_shape`."""

    _BRANCHES: tuple[tuple[str, int, int], ...] = ()

    def __init__(
        self,
        filters: int,
        *,
        adjust: str | None = None,
        momentum: float = 0.9997,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_nasnet_arguments(filters, 1, momentum, epsilon)
        if adjust not in ADJUSTS:
            raise ValueError(
                f"adjust must be one of {ADJUSTS}. Received: {adjust=}"
            )
        self.filters, self.adjust = filters, adjust
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        if adjust == "reduce":
            self.adjust_conv_1 = self._conv(filters // 2, "adjust_conv_1")
            self.adjust_conv_2 = self._conv(filters // 2, "adjust_conv_2")
        elif adjust == "project":
            self.adjust_conv_projection = self._conv(
                filters, "adjust_conv_projection"
            )
        if adjust is not None:
            self.adjust_bn = self._batch_norm("adjust_bn")
        self.conv_1 = self._conv(filters, "conv_1")
        self.bn_1 = self._batch_norm("bn_1")
        for name, kernel_size, strides in self._BRANCHES:
            block = NASNetSeparableBlock(
                filters,
                kernel_size,
                strides=strides,
                momentum=momentum,
                epsilon=epsilon,
                name=name,
            )
            setattr(self, name, block)

    def _conv(self, filters, name):
        return keras.layers.Conv2D(filters, name=name, **_CONV_1X1)

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name=name
        )

    def _split_shapes(self, input_shape):
        shapes = list(input_shape) if isinstance(input_shape, list) else []
        if len(shapes) != 2 or any(
            len(s) != 4 or s[-1] is None for s in shapes
        ):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' takes [x, previous], "
                "two (batch, height, width, channels) inputs with known "
                f"channels. Received: {input_shape=}"
            )
        return tuple(shapes[0]), tuple(shapes[1])

    def _adjusted_shape(self, shape, previous_shape):
        """`previous`'s shape after the adjust step."""
        if self.adjust is None:
            return previous_shape
        channels = self.filters
        if self.adjust == "reduce":
            channels = 2 * (self.filters // 2)
            size = (_half(previous_shape[1]), _half(previous_shape[2]))
        else:
            size = previous_shape[1:3]
        if size != tuple(shape[1:3]):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' with {self.adjust=} "
                f"cannot match previous={previous_shape} to x={shape}."
            )
        return (previous_shape[0], *size, channels)

    def build(self, input_shape):
        shape, previous_shape = self._split_shapes(input_shape)
        adjusted = self._adjusted_shape(shape, previous_shape)
        if self.adjust == "reduce":
            self.adjust_conv_1.build(previous_shape)
            self.adjust_conv_2.build(previous_shape)
        elif self.adjust == "project":
            self.adjust_conv_projection.build(previous_shape)
        if self.adjust is not None:
            self.adjust_bn.build(adjusted)
        self.conv_1.build(shape)
        hidden = (*shape[:3], self.filters)
        self.bn_1.build(hidden)
        self._build_branches(hidden, adjusted)

    def _adjust_previous(self, previous, training):
        if self.adjust is None:
            return previous
        previous = keras.ops.relu(previous)
        if self.adjust == "project":
            previous = self.adjust_conv_projection(previous)
        else:
            # Every other pixel, from (0, 0) and from (1, 1); the second
            # path is zero-padded at the bottom right to the same size.
            shifted = keras.ops.pad(
                previous[:, 1:, 1:], ((0, 0), (0, 1), (0, 1), (0, 0))
            )
            previous = keras.ops.concatenate(
                [
                    self.adjust_conv_1(previous[:, ::2, ::2]),
                    self.adjust_conv_2(shifted[:, ::2, ::2]),
                ],
                axis=-1,
            )
        return self.adjust_bn(previous, training=training)

    def _run_branch(self, name, inputs, training):
        return getattr(self, name)(inputs, training=training)

    def _hidden(self, x, training):
        return self.bn_1(self.conv_1(keras.ops.relu(x)), training=training)

    def compute_output_shape(self, input_shape):
        shape, _ = self._split_shapes(input_shape)
        return self._output_shape(shape)


def _pool3(x, kind, strides, padding):
    pool = keras.ops.average_pool if kind == "avg" else keras.ops.max_pool
    return pool(x, 3, strides=strides, padding=padding)


@register()
class NASNetNormalCell(_NASNetCell):
    """NASNet-A's normal cell (Zoph et al., 2018, Fig. 4, left).

    With `h` the cell's `x` after ReLU, `conv_1` and `bn_1`, and `p` the
    adjusted `previous`, the output concatenates `p` and five sums:
    `left1(h) + right1(p)`, `left2(p) + right2(p)`, `avg(h) + p`,
    `avg(p) + avg(p)`, `left5(h) + h`; `left*`/`right*` are
    `NASNetSeparableBlock`s (5x5 for `left1` and `left2`, else 3x3),
    `avg` 3x3 average pooling with "same" padding.

    Args:
        filters: channels of every operation; the output has
            `6 * filters`.
        adjust: None, "project" or "reduce" (see `adjust_for`).
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.

    Input: `[x, previous]`. Output: `x`'s size, `6 * filters` channels.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> cell = kerasblocks.layers.NASNetNormalCell(4, adjust="reduce")
    >>> cell([tf.ones((2, 5, 5, 8)), tf.ones((2, 9, 9, 6))]).shape
    TensorShape([2, 5, 5, 24])
    """

    _BRANCHES = (
        ("left1", 5, 1),
        ("right1", 3, 1),
        ("left2", 5, 1),
        ("right2", 3, 1),
        ("left5", 3, 1),
    )

    def _build_branches(self, hidden, adjusted):
        if adjusted[-1] != self.filters:
            raise ValueError(
                f"NASNetNormalCell '{self.name}' needs previous with "
                f"{self.filters} channels after the adjust step; it has "
                f"{adjusted[-1]} ({self.adjust=})."
            )
        for name in ("left1", "left5"):
            getattr(self, name).build(hidden)
        for name in ("right1", "left2", "right2"):
            getattr(self, name).build(adjusted)

    def call(self, inputs, training=None):
        x, previous = inputs
        p = self._adjust_previous(previous, training)
        h = self._hidden(x, training)
        pooled = _pool3(p, "avg", 1, "same")
        run = self._run_branch
        sums = [
            run("left1", h, training) + run("right1", p, training),
            run("left2", p, training) + run("right2", p, training),
            _pool3(h, "avg", 1, "same") + p,
            pooled + pooled,
            run("left5", h, training) + h,
        ]
        return keras.ops.concatenate([p, *sums], axis=-1)

    def _output_shape(self, shape):
        return (*shape[:3], 6 * self.filters)


@register()
class NASNetReductionCell(_NASNetCell):
    """NASNet-A's reduction cell (Zoph et al., 2018, Fig. 4, right).

    With `h` the cell's `x` after ReLU, `conv_1` and `bn_1`, `h3` it
    zero-padded for a 3x3 window at stride 2, and `p` the adjusted
    `previous`: `x1 = left1(h) + right1(p)`, then the output
    concatenates `max(h3) + right2(p)`, `avg(h3) + right3(p)`,
    `avg_same(x1) + max(h3) + right2(p)` and `left5(x1) + max(h3)`.
    `left1` is a 5x5, `right1` and `right2` 7x7, `right3` 5x5 stride-2
    `NASNetSeparableBlock`, `left5` a 3x3 one at stride 1; the pools are
    3x3 at stride 2 ("valid" on `h3`), `avg_same` at stride 1.

    Args:
        filters: channels of every operation; the output has
            `4 * filters`.
        adjust: None, "project" or "reduce" (see `adjust_for`). The
            first cell of a network has no previous cell: it takes
            `[x, x]` with `adjust=None`.
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.

    Input: `[x, previous]`. Output: half `x`'s size (rounded up),
    `4 * filters` channels.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> cell = kerasblocks.layers.NASNetReductionCell(4)
    >>> x = tf.ones((2, 9, 9, 3))
    >>> cell([x, x]).shape
    TensorShape([2, 5, 5, 16])
    """

    _BRANCHES = (
        ("left1", 5, 2),
        ("right1", 7, 2),
        ("right2", 7, 2),
        ("right3", 5, 2),
        ("left5", 3, 1),
    )

    def _build_branches(self, hidden, adjusted):
        self.left1.build(hidden)
        for name in ("right1", "right2", "right3"):
            getattr(self, name).build(adjusted)
        reduced = self.left1.compute_output_shape(hidden)
        self.left5.build(reduced)

    def call(self, inputs, training=None):
        x, previous = inputs
        p = self._adjust_previous(previous, training)
        h = self._hidden(x, training)
        h3 = keras.ops.pad(
            h,
            ((0, 0), *stride_two_padding(h.shape[1], h.shape[2], 3), (0, 0)),
        )
        run, maxed = self._run_branch, _pool3(h3, "max", 2, "valid")
        x1 = run("left1", h, training) + run("right1", p, training)
        x2 = maxed + run("right2", p, training)
        x3 = _pool3(h3, "avg", 2, "valid") + run("right3", p, training)
        x4 = _pool3(x1, "avg", 1, "same") + x2
        x5 = run("left5", x1, training) + maxed
        return keras.ops.concatenate([x2, x3, x4, x5], axis=-1)

    def _output_shape(self, shape):
        return (shape[0], _half(shape[1]), _half(shape[2]), 4 * self.filters)
