"""Conformance specs for MobileNetV2's and ConvNeXt's blocks
(`kerasblocks.layers.mobile`, `kerasblocks.layers.convnext`).

`InvertedResidual` is specified with an expansion and stride 2 (the
explicit padding path); `ConvNeXtBlock` with stochastic depth, so its
seed generator goes through every save format. The identity-shortcut and
no-expansion paths are tested in `test_mobile_convnext.py`.
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>InvertedResidual": BlockSpec(
        lambda: kb.layers.InvertedResidual(6, expansion=3, strides=2),
        (2, 7, 6, 4),
        (2, 4, 3, 6),
    ),
    "kerasblocks>ConvNeXtBlock": BlockSpec(
        lambda: kb.layers.ConvNeXtBlock(8, drop_path_rate=0.1),
        (2, 9, 9, 8),
        (2, 9, 9, 8),
    ),
}
