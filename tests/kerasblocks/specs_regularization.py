"""Conformance spec for `kerasblocks.layers.regularization`.

`DropPath` is specified with a rate above 0, so its seed generator goes
through every save format; its training behaviour is tested in
`test_regularization.py`.
"""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>DropPath": BlockSpec(
        lambda: kb.layers.DropPath(0.25, seed=1),
        (3, 4, 5),
        (3, 4, 5),
    ),
}
