"""Conformance specs for DenseNet's blocks.

`DenseBlock` is specified in keras.applications' bottleneck form (its
book form runs in the `densenet` model's conformance test). RegNet has
no blocks of its own: it uses `ResNeXtBlock` (specs_residual.py).
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>DenseBlock": BlockSpec(
        lambda: kb.layers.DenseBlock(
            2, 3, bottleneck=True, use_bias=False, epsilon=1.001e-5
        ),
        (2, 5, 5, 4),
        (2, 5, 5, 10),
    ),
    "kerasblocks>TransitionBlock": BlockSpec(
        lambda: kb.layers.TransitionBlock(3), (2, 5, 4, 6), (2, 2, 2, 3)
    ),
}
