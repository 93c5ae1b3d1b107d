"""Conformance specs for Inception-v3's, Inception-ResNet-v2's and
Xception's blocks (`kerasblocks.layers.inception`,
`kerasblocks.layers.inception_resnet`, `kerasblocks.layers.xception`).

Inputs are a few pixels and channels wide; the blocks' widths are
fixed by the papers. `XceptionBlock` is specified downsampling (the
shortcut path); the identity path is tested in `test_inception_blocks.py`.
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>ConvBN": BlockSpec(
        lambda: kb.layers.ConvBN(6, (1, 3), strides=2, padding="valid"),
        (2, 5, 7, 4),
        (2, 3, 3, 6),
    ),
    "kerasblocks>InceptionA": BlockSpec(
        lambda: kb.layers.InceptionA(8, filters_1x1=16),
        (2, 4, 4, 3),
        (2, 4, 4, 184),
    ),
    "kerasblocks>InceptionB": BlockSpec(
        lambda: kb.layers.InceptionB(8, double_filters=(4, 6, 8)),
        (2, 5, 5, 3),
        (2, 2, 2, 19),
    ),
    "kerasblocks>InceptionC": BlockSpec(
        lambda: kb.layers.InceptionC(8),
        (2, 3, 3, 3),
        (2, 3, 3, 768),
    ),
    "kerasblocks>InceptionD": BlockSpec(
        lambda: kb.layers.InceptionD(),
        (2, 5, 5, 3),
        (2, 2, 2, 515),
    ),
    "kerasblocks>InceptionE": BlockSpec(
        lambda: kb.layers.InceptionE(),
        (2, 3, 3, 3),
        (2, 3, 3, 2048),
    ),
    "kerasblocks>InceptionResNetBlock": BlockSpec(
        lambda: kb.layers.InceptionResNetBlock("block17", scale=0.1),
        (2, 3, 3, 4),
        (2, 3, 3, 4),
    ),
    "kerasblocks>InceptionResNetReduction": BlockSpec(
        lambda: kb.layers.InceptionResNetReduction(),
        (2, 5, 5, 3),
        (2, 2, 2, 995),
    ),
    "kerasblocks>XceptionBlock": BlockSpec(
        lambda: kb.layers.XceptionBlock((6, 8), strides=2),
        (2, 5, 5, 4),
        (2, 3, 3, 8),
    ),
}
