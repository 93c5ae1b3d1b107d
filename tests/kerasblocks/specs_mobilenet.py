"""Conformance specs for MobileNet's and MobileNetV3's blocks
(`kerasblocks.layers.mobile`, `kerasblocks.layers.mobile_v3`).

`DepthwiseSeparableBlock` is specified at stride 2 on an odd size (its
keras.applications padding) with a depth multiplier; `MobileNetV3Block`
at stride 1 with an expansion, squeeze-excite and hard-swish, so the
residual path runs. Stride 2, no expansion and no squeeze-excite are
tested in `test_mobilenet_blocks.py`.
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>DepthwiseSeparableBlock": BlockSpec(
        lambda: kb.layers.DepthwiseSeparableBlock(
            6, strides=2, depth_multiplier=2
        ),
        (2, 7, 6, 4),
        (2, 3, 3, 6),
    ),
    "kerasblocks>SqueezeExcite": BlockSpec(
        lambda: kb.layers.SqueezeExcite(2, gate_activation="hard_sigmoid"),
        (2, 5, 4, 6),
        (2, 5, 4, 6),
    ),
    "kerasblocks>MobileNetV3Block": BlockSpec(
        lambda: kb.layers.MobileNetV3Block(
            4,
            expanded_filters=12,
            kernel_size=5,
            squeeze_filters=8,
            activation="hard_swish",
        ),
        (2, 6, 5, 4),
        (2, 6, 5, 4),
    ),
}
