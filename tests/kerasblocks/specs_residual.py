"""Conformance specs for the residual blocks (`kerasblocks.layers.residual`
and `kerasblocks.layers.resnext`).

The specs cover each block's shortcut kinds: identity, projection with a
stride (`BasicBlock` with stochastic depth, so its `drop_path` goes
through every save format), and for `BottleneckBlock` the pre-activation
(v2) layout with its strided max-pool shortcut; `ResNeXtBlock` also with
squeeze-and-excitation.
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>BasicBlock": BlockSpec(
        lambda: kb.layers.BasicBlock(
            6, strides=2, use_projection=True, drop_path_rate=0.2
        ),
        (2, 7, 7, 3),
        (2, 4, 4, 6),
    ),
    "kerasblocks>BottleneckBlock": BlockSpec(
        lambda: kb.layers.BottleneckBlock(
            2, strides=2, use_projection=True, name="v1"
        ),
        (2, 7, 7, 3),
        (2, 4, 4, 8),
    ),
    "kerasblocks>ResNeXtBlock": BlockSpec(
        lambda: kb.layers.ResNeXtBlock(
            8, 2, 0.5, strides=2, use_projection=True, se_ratio=0.5
        ),
        (2, 7, 7, 6),
        (2, 4, 4, 8),
    ),
}
