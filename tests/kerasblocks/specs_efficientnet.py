"""Conformance specs for EfficientNet's blocks
(`kerasblocks.layers.efficientnet`).

`MBConv` is specified with an expansion, squeeze-and-excitation and
stride 2; `FusedMBConv` with an expansion, squeeze-and-excitation and
an identity shortcut under stochastic depth, so that its `drop` layer
goes through every save format. The other paths are tested in
`test_efficientnet_blocks.py`.
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>MBConv": BlockSpec(
        lambda: kb.layers.MBConv(6, expansion=3, kernel_size=5, strides=2),
        (2, 7, 6, 4),
        (2, 4, 3, 6),
    ),
    "kerasblocks>FusedMBConv": BlockSpec(
        lambda: kb.layers.FusedMBConv(4, se_ratio=0.5, drop_path_rate=0.2),
        (2, 5, 5, 4),
        (2, 5, 5, 4),
    ),
}
