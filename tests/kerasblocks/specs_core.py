"""Conformance specs for the core blocks and the chapter's layers.

Each `specs_*.py` file in this directory defines `SPECS` (registered name
-> `BlockSpec`) and `EXCUSED` (registered name -> reason it is tested
elsewhere). `test_conformance.py` runs the shared harness on every spec
and fails if a registered object is in neither.
"""

import keras
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

SPECS = {
    "kerasblocks>MLP": BlockSpec(lambda: kb.layers.MLP(), (3, 20), (3, 10)),
    "kerasblocks>FixedHiddenMLP": BlockSpec(
        lambda: kb.layers.FixedHiddenMLP(reduce=None, seed=0), (3, 20), (3, 20)
    ),
    "kerasblocks>NestMLP": BlockSpec(
        lambda: kb.layers.NestMLP(), (3, 20), (3, 16)
    ),
    "kerasblocks>CenteredLayer": BlockSpec(
        lambda: kb.layers.CenteredLayer(), (3, 5), (3, 5)
    ),
    "kerasblocks>ScratchDense": BlockSpec(
        lambda: kb.layers.ScratchDense(4), (3, 5), (3, 4)
    ),
    "kerasblocks>Function": BlockSpec(
        lambda: kb.layers.Function("tf.nn.softplus"), (3, 5), (3, 5)
    ),
    "kerasblocks>BatchNorm": BlockSpec(
        lambda: kb.layers.BatchNorm(), (4, 3, 3, 2), (4, 3, 3, 2)
    ),
    "kerasblocks>SequentialBlock": BlockSpec(
        lambda: _tied_sequential_block(), (3, 6), (3, 2)
    ),
    "kerasblocks>Parallel": BlockSpec(
        lambda: kb.Parallel(
            keras.layers.Dense(3), keras.layers.Dense(2), tf.nn.relu
        ),
        (3, 4),
        (3, 9),
    ),
    "kerasblocks>Residual": BlockSpec(
        lambda: kb.Residual(
            keras.layers.Dense(5),
            shortcut=keras.layers.Dense(5),
            activation="relu",
        ),
        (3, 4),
        (3, 5),
    ),
}

EXCUSED = {
    "kerasblocks>ThresholdedUniform": "an initializer: test_initializers.py",
    "kerasblocks>Dirac": "an initializer: test_initializers.py",
    "kerasblocks>TiedSequential": "a loader used only by kerasblocks.io: "
    "test_chapter.py and test_io_models.py reload tied Sequentials",
}


def _tied_sequential_block():
    shared = keras.layers.Dense(6, activation="tanh", name="shared")
    return kb.SequentialBlock(
        shared, tf.nn.relu, shared, keras.layers.Dense(2, name="head")
    )
