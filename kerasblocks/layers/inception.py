"""Inception-v3's blocks, as keras.applications builds them.

Every convolution of Inception-v3 (and of Inception-ResNet-v2) is a
`ConvBN` unit: a convolution without bias, batch norm without scale and
ReLU. The modules run a few branches of such units in parallel and
concatenate them on the channel axis:

- `InceptionA` (the 35x35 grid; keras.applications' `mixed0`-`mixed2`):
  1x1, 5x5, double 3x3 and average-pool branches;
- `InceptionB` (the 35x35 -> 17x17 grid reduction, `mixed3`): a strided
  3x3, a strided double 3x3 and a max pool;
- `InceptionC` (17x17, `mixed4`-`mixed7`): 7x7 convolutions factorized
  into 1x7 and 7x1;
- `InceptionD` (17x17 -> 8x8, `mixed8`);
- `InceptionE` (8x8, `mixed9`-`mixed10`): 3x3 convolutions expanded
  into parallel 1x3 and 3x1 outputs.

Sublayer names (`branch1x1`, `branch5x5_1`, ...) follow the module's
branches and are the weight-file contract.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.layers._checks import check_image_input

_PADDINGS = ("same", "valid")


def _kernel_pair(kernel_size) -> tuple[int, int]:
    if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
        return (_positive_int("kernel_size", kernel_size),) * 2
    if isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 2:
        return tuple(_positive_int("kernel_size", k) for k in kernel_size)
    raise ValueError(
        "kernel_size must be a positive int or a pair of them. Received: "
        f"{kernel_size=}"
    )


def _positive_ints(name, values, length) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or len(values) != length:
        raise ValueError(
            f"{name} must be {length} positive ints. Received: "
            f"{name}={values!r}"
        )
    return tuple(_positive_int(name, v) for v in values)


@register()
class ConvBN(CapturedConfig, keras.layers.Layer):
    """Convolution (no bias), batch norm (no scale), ReLU.

    ReLU commutes with a positive per-channel scale, which the next
    convolution can absorb; so, as in the paper's implementation, the
    batch norm learns only a shift (`beta`).

    Args:
        filters: output channels.
        kernel_size: an int, or `(rows, cols)` for the factorized 1xn and
            nx1 convolutions.
        strides: convolution stride.
        padding: "same" or "valid".

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> unit = kerasblocks.layers.ConvBN(8, (1, 7), name="u")
    >>> unit(tf.ones((2, 9, 9, 4))).shape
    TensorShape([2, 9, 9, 8])
    >>> [v.path for v in unit.weights]
    ['u/conv/kernel', 'u/bn/beta', 'u/bn/moving_mean', 'u/bn/moving_variance']
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int] = 1,
        *,
        strides: int = 1,
        padding: str = "same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.kernel_size = _kernel_pair(kernel_size)
        self.strides = _positive_int("strides", strides)
        if padding not in _PADDINGS:
            raise ValueError(
                f"padding must be one of {_PADDINGS}. Received: {padding=}"
            )
        self.padding = padding
        self.conv = keras.layers.Conv2D(
            filters,
            self.kernel_size,
            strides=strides,
            padding=padding,
            use_bias=False,
            name="conv",
        )
        self.bn = keras.layers.BatchNormalization(scale=False, name="bn")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return keras.ops.relu(self.bn(self.conv(inputs), training=training))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


class BranchMix(CapturedConfig, keras.layers.Layer):
    """Parallel branches of sublayers, concatenated on the channel axis.

    A subclass creates its sublayers with `self._unit(...)` and
    `self._pool(...)` in the order keras.applications creates them, and
    lists its branches with `self._branch(...)`. A branch is a sequence
    of sublayer names; a tuple of names inside it is a split: each runs
    on the same input and their outputs are concatenated.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._plan: list[tuple] = []

    def _unit(self, name, filters, kernel_size=1, strides=1, padding="same"):
        unit = ConvBN(
            filters, kernel_size, strides=strides, padding=padding, name=name
        )
        setattr(self, name, unit)
        return unit

    def _pool(self, kind, strides=1, name="pool"):
        pool_type = (
            keras.layers.AveragePooling2D
            if kind == "avg"
            else keras.layers.MaxPooling2D
        )
        padding = "same" if strides == 1 else "valid"
        setattr(
            self,
            name,
            pool_type(3, strides=strides, padding=padding, name=name),
        )

    def _branch(self, *steps):
        self._plan.append(tuple(steps))

    def _walk(self, shape, step, build):
        names = step if isinstance(step, tuple) else (step,)
        shapes = []
        for name in names:
            layer = getattr(self, name)
            if build and not layer.built:
                layer.build(shape)
            shapes.append(tuple(layer.compute_output_shape(shape)))
        return (*shapes[0][:-1], sum(s[-1] for s in shapes))

    def _mix_shape(self, input_shape, build=False):
        outputs = []
        for steps in self._plan:
            shape = tuple(input_shape)
            for step in steps:
                shape = self._walk(shape, step, build)
            outputs.append(shape)
        return (*outputs[0][:-1], sum(s[-1] for s in outputs))

    def build(self, input_shape):
        check_image_input(self, input_shape)
        self._mix_shape(input_shape, build=True)

    def _apply(self, name, x, training):
        layer = getattr(self, name)
        if isinstance(layer, ConvBN):
            return layer(x, training=training)
        return layer(x)

    def _mix(self, inputs, training):
        outputs = []
        for steps in self._plan:
            x = inputs
            for step in steps:
                if isinstance(step, tuple):
                    x = keras.ops.concatenate(
                        [self._apply(n, x, training) for n in step], axis=-1
                    )
                else:
                    x = self._apply(step, x, training)
            outputs.append(x)
        return keras.ops.concatenate(outputs, axis=-1)

    def call(self, inputs, training=None):
        return self._mix(inputs, training)

    def compute_output_shape(self, input_shape):
        return self._mix_shape(input_shape)


@register()
class InceptionA(BranchMix):
    """Inception-v3's 35x35 module (the paper's Figure 5).

    Branches: `branch1x1` (`filters_1x1`); `branch5x5_1` (48, 1x1) and
    `branch5x5_2` (64, 5x5); `branch3x3dbl_1` (64, 1x1),
    `branch3x3dbl_2` and `branch3x3dbl_3` (96, 3x3 each); a 3x3 average
    pool of stride 1 and `branch_pool` (`pool_filters`, 1x1).
    Inception-ResNet-v2's `mixed_5b` is this module with
    `filters_1x1=96`.

    Args:
        pool_filters: channels of the pooling branch.
        filters_1x1: channels of the 1x1 branch.

    Output shape: `(batch, height, width, filters_1x1 + 160 +
    pool_filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InceptionA(32)
    >>> block(tf.ones((1, 5, 5, 16))).shape
    TensorShape([1, 5, 5, 256])
    """

    def __init__(self, pool_filters: int, *, filters_1x1: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.pool_filters = _positive_int("pool_filters", pool_filters)
        self.filters_1x1 = _positive_int("filters_1x1", filters_1x1)
        self._unit("branch1x1", filters_1x1)
        self._unit("branch5x5_1", 48)
        self._unit("branch5x5_2", 64, 5)
        self._unit("branch3x3dbl_1", 64)
        self._unit("branch3x3dbl_2", 96, 3)
        self._unit("branch3x3dbl_3", 96, 3)
        self._pool("avg")
        self._unit("branch_pool", pool_filters)
        self._branch("branch1x1")
        self._branch("branch5x5_1", "branch5x5_2")
        self._branch("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")
        self._branch("pool", "branch_pool")


@register()
class InceptionB(BranchMix):
    """A grid reduction: strided 3x3, strided double 3x3 and max pool.

    Branches: `branch3x3` (`filters`, 3x3, stride 2); `branch3x3dbl_1`
    (1x1), `branch3x3dbl_2` (3x3) and `branch3x3dbl_3` (3x3, stride 2)
    with `double_filters` channels; a 3x3 max pool of stride 2. Strided
    convolutions and the pool are unpadded. Inception-v3's `mixed3` uses
    the defaults; Inception-ResNet-v2's `mixed_6a` (the Inception-v4
    paper's Reduction-A) has `double_filters=(256, 256, 384)`.

    Args:
        filters: channels of the single 3x3 branch.
        double_filters: channels of the three units of the double 3x3
            branch.

    Output shape: `(batch, (height - 1) // 2, (width - 1) // 2,
    filters + double_filters[2] + channels)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InceptionB(8, double_filters=(4, 4, 8))
    >>> block(tf.ones((1, 7, 7, 16))).shape
    TensorShape([1, 3, 3, 32])
    """

    def __init__(
        self,
        filters: int = 384,
        *,
        double_filters: Sequence[int] = (64, 96, 96),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.double_filters = _positive_ints(
            "double_filters", double_filters, 3
        )
        first, second, third = self.double_filters
        self._unit("branch3x3", filters, 3, strides=2, padding="valid")
        self._unit("branch3x3dbl_1", first)
        self._unit("branch3x3dbl_2", second, 3)
        self._unit("branch3x3dbl_3", third, 3, strides=2, padding="valid")
        self._pool("max", strides=2)
        self._branch("branch3x3")
        self._branch("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")
        self._branch("pool")


@register()
class InceptionC(BranchMix):
    """Inception-v3's 17x17 module with factorized 7x7 convolutions
    (the paper's Figure 6).

    Branches: `branch1x1` (192); `branch7x7_1` (1x1), `branch7x7_2`
    (1x7) and `branch7x7_3` (192, 7x1); `branch7x7dbl_1` (1x1), then
    7x1, 1x7, 7x1 and `branch7x7dbl_5` (192, 1x7); a 3x3 average pool
    of stride 1 and `branch_pool` (192, 1x1). The inner units have
    `filters_7x7` channels.

    Args:
        filters_7x7: channels inside the factorized branches (128, 160,
            160 and 192 in `mixed4` to `mixed7`).

    Output shape: `(batch, height, width, 768)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InceptionC(8)
    >>> block(tf.ones((1, 5, 5, 16))).shape
    TensorShape([1, 5, 5, 768])
    """

    def __init__(self, filters_7x7: int, **kwargs):
        super().__init__(**kwargs)
        self.filters_7x7 = _positive_int("filters_7x7", filters_7x7)
        inner = filters_7x7
        self._unit("branch1x1", 192)
        self._unit("branch7x7_1", inner)
        self._unit("branch7x7_2", inner, (1, 7))
        self._unit("branch7x7_3", 192, (7, 1))
        self._unit("branch7x7dbl_1", inner)
        self._unit("branch7x7dbl_2", inner, (7, 1))
        self._unit("branch7x7dbl_3", inner, (1, 7))
        self._unit("branch7x7dbl_4", inner, (7, 1))
        self._unit("branch7x7dbl_5", 192, (1, 7))
        self._pool("avg")
        self._unit("branch_pool", 192)
        self._branch("branch1x1")
        self._branch("branch7x7_1", "branch7x7_2", "branch7x7_3")
        self._branch(*(f"branch7x7dbl_{i}" for i in range(1, 6)))
        self._branch("pool", "branch_pool")


@register()
class InceptionD(BranchMix):
    """Inception-v3's 17x17 -> 8x8 grid reduction (`mixed8`).

    Branches: `branch3x3_1` (192, 1x1) and `branch3x3_2` (320, 3x3,
    stride 2); `branch7x7x3_1` (1x1), `branch7x7x3_2` (1x7),
    `branch7x7x3_3` (7x1) and `branch7x7x3_4` (3x3, stride 2), all 192;
    a 3x3 max pool of stride 2. Strided layers are unpadded.

    Output shape: `(batch, (height - 1) // 2, (width - 1) // 2,
    512 + channels)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InceptionD()
    >>> block(tf.ones((1, 7, 7, 16))).shape
    TensorShape([1, 3, 3, 528])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._unit("branch3x3_1", 192)
        self._unit("branch3x3_2", 320, 3, strides=2, padding="valid")
        self._unit("branch7x7x3_1", 192)
        self._unit("branch7x7x3_2", 192, (1, 7))
        self._unit("branch7x7x3_3", 192, (7, 1))
        self._unit("branch7x7x3_4", 192, 3, strides=2, padding="valid")
        self._pool("max", strides=2)
        self._branch("branch3x3_1", "branch3x3_2")
        self._branch(*(f"branch7x7x3_{i}" for i in range(1, 5)))
        self._branch("pool")


@register()
class InceptionE(BranchMix):
    """Inception-v3's 8x8 module with expanded filter banks (the paper's
    Figure 7).

    Branches: `branch1x1` (320); `branch3x3_1` (384, 1x1) split into
    `branch3x3_2a` (1x3) and `branch3x3_2b` (3x1); `branch3x3dbl_1`
    (448, 1x1) and `branch3x3dbl_2` (384, 3x3) split into
    `branch3x3dbl_3a` (1x3) and `branch3x3dbl_3b` (3x1), all 384; a 3x3
    average pool of stride 1 and `branch_pool` (192, 1x1).

    Output shape: `(batch, height, width, 2048)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InceptionE()
    >>> block(tf.ones((1, 3, 3, 16))).shape
    TensorShape([1, 3, 3, 2048])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._unit("branch1x1", 320)
        self._unit("branch3x3_1", 384)
        self._unit("branch3x3_2a", 384, (1, 3))
        self._unit("branch3x3_2b", 384, (3, 1))
        self._unit("branch3x3dbl_1", 448)
        self._unit("branch3x3dbl_2", 384, 3)
        self._unit("branch3x3dbl_3a", 384, (1, 3))
        self._unit("branch3x3dbl_3b", 384, (3, 1))
        self._pool("avg")
        self._unit("branch_pool", 192)
        self._branch("branch1x1")
        self._branch("branch3x3_1", ("branch3x3_2a", "branch3x3_2b"))
        self._branch(
            "branch3x3dbl_1",
            "branch3x3dbl_2",
            ("branch3x3dbl_3a", "branch3x3dbl_3b"),
        )
        self._branch("pool", "branch_pool")
