"""Inception-ResNet-v2's blocks, as keras.applications builds them.

`InceptionResNetBlock` runs a few branches of `ConvBN` units, projects
their concatenation back to the input's width with a 1x1 convolution
(with bias, no batch norm), scales it and adds it to the input (the
paper's Figures 16, 17 and 19: the 35x35 "block35", 17x17 "block17" and
8x8 "block8"). `InceptionResNetReduction` is the 17x17 -> 8x8 grid
reduction (the paper's Figure 18). Sublayer names are the weight-file
contract.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from kerasblocks._registry import register
from kerasblocks.layers.inception import BranchMix

# Per block type, the branches as (filters, kernel_size) units.
BRANCHES = {
    "block35": (
        ((32, 1),),
        ((32, 1), (32, 3)),
        ((32, 1), (48, 3), (64, 3)),
    ),
    "block17": (
        ((192, 1),),
        ((128, 1), (160, (1, 7)), (192, (7, 1))),
    ),
    "block8": (
        ((192, 1),),
        ((192, 1), (224, (1, 3)), (256, (3, 1))),
    ),
}


@register()
class InceptionResNetBlock(BranchMix):
    """An Inception-ResNet-v2 residual block: `act(x + scale * conv(mix))`.

    Branch `i`'s units are named `branch{i}_{j}` (see `BRANCHES`); `conv`
    is a 1x1 convolution with bias to the input's channels. The paper
    scales the residual down (0.17, 0.1 and 0.2 for the three block
    types) to keep training of the wide network stable.

    Args:
        block_type: "block35", "block17" or "block8".
        scale: factor of the residual branch.
        activation: applied after the addition (None for none; the last
            block of the network has none).

    Output shape: the input shape.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InceptionResNetBlock("block35", scale=0.17)
    >>> block(tf.ones((1, 5, 5, 16))).shape
    TensorShape([1, 5, 5, 16])
    >>> tuple(block.conv.kernel.shape)
    (1, 1, 128, 16)
    """

    def __init__(
        self,
        block_type: str,
        *,
        scale: float,
        activation: str | Callable | None = "relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if block_type not in BRANCHES:
            raise ValueError(
                f"block_type must be one of {sorted(BRANCHES)}. Received: "
                f"{block_type=}"
            )
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ValueError(f"scale must be a number. Received: {scale=}")
        self.block_type = block_type
        self.scale = float(scale)
        self.activation = activation
        self._activation = keras.activations.get(activation)
        for i, branch in enumerate(BRANCHES[block_type]):
            names = []
            for j, (filters, kernel_size) in enumerate(branch):
                names.append(f"branch{i}_{j}")
                self._unit(names[-1], filters, kernel_size)
            self._branch(*names)
        # Its filters are the input's channels, known in `build`.
        self.conv = keras.layers.Conv2D(1, 1, name="conv")

    def build(self, input_shape):
        super().build(input_shape)
        self.conv.filters = int(input_shape[-1])
        self.conv.build(self._mix_shape(input_shape))

    def call(self, inputs, training=None):
        residual = self.conv(self._mix(inputs, training))
        return self._activation(inputs + self.scale * residual)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register()
class InceptionResNetReduction(BranchMix):
    """Inception-ResNet-v2's 17x17 -> 8x8 grid reduction (`mixed_7a`).

    Branches: `branch0_0` (256, 1x1) and `branch0_1` (384, 3x3, stride
    2); `branch1_0` (256, 1x1) and `branch1_1` (288, 3x3, stride 2);
    `branch2_0` (256, 1x1), `branch2_1` (288, 3x3) and `branch2_2` (320,
    3x3, stride 2); a 3x3 max pool of stride 2. Strided layers are
    unpadded.

    Output shape: `(batch, (height - 1) // 2, (width - 1) // 2,
    992 + channels)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InceptionResNetReduction()
    >>> block(tf.ones((1, 7, 7, 16))).shape
    TensorShape([1, 3, 3, 1008])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        reduce = {"strides": 2, "padding": "valid"}
        self._unit("branch0_0", 256)
        self._unit("branch0_1", 384, 3, **reduce)
        self._unit("branch1_0", 256)
        self._unit("branch1_1", 288, 3, **reduce)
        self._unit("branch2_0", 256)
        self._unit("branch2_1", 288, 3)
        self._unit("branch2_2", 320, 3, **reduce)
        self._pool("max", strides=2)
        self._branch("branch0_0", "branch0_1")
        self._branch("branch1_0", "branch1_1")
        self._branch("branch2_0", "branch2_1", "branch2_2")
        self._branch("pool")
