"""Conformance specs for the classic CNN blocks (VGG, NiN, Inception)."""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>VGGBlock": BlockSpec(
        lambda: kb.layers.VGGBlock(2, 4), (2, 8, 8, 3), (2, 4, 4, 4)
    ),
    "kerasblocks>NiNBlock": BlockSpec(
        lambda: kb.layers.NiNBlock(4, 3, 2, "valid"),
        (2, 9, 9, 3),
        (2, 4, 4, 4),
    ),
    "kerasblocks>Inception": BlockSpec(
        lambda: kb.layers.Inception(2, (3, 4), (2, 3), 2),
        (2, 6, 6, 5),
        (2, 6, 6, 11),
    ),
}

EXCUSED = {}
