"""Conformance specs for the preprocessing layers."""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>ImagePreprocessing": BlockSpec(
        lambda: kb.layers.ImagePreprocessing("caffe"),
        (2, 4, 4, 3),
        (2, 4, 4, 3),
        atol=1e-4,
    ),
}
