"""Conformance specs for NASNet's blocks (`kerasblocks.layers.nasnet`).

The separable block is specified at stride 2 (the explicit padding
path); the normal cell with the "reduce" adjust step, the reduction cell
with the "project" one, so that both adjust paths go through every save
format. The cells' weights are checked against keras.applications in
`tests/zoo/test_nasnet.py`.
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>NASNetSeparableBlock": BlockSpec(
        lambda: kb.layers.NASNetSeparableBlock(6, 5, strides=2),
        (2, 7, 6, 4),
        (2, 4, 3, 6),
    ),
    "kerasblocks>NASNetNormalCell": BlockSpec(
        lambda: kb.layers.NASNetNormalCell(4, adjust="reduce"),
        [(2, 5, 5, 8), (2, 9, 9, 6)],
        (2, 5, 5, 24),
    ),
    "kerasblocks>NASNetReductionCell": BlockSpec(
        lambda: kb.layers.NASNetReductionCell(4, adjust="project"),
        [(2, 6, 5, 3), (2, 6, 5, 5)],
        (2, 3, 3, 16),
    ),
}
