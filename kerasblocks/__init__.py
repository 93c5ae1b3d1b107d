"""kerasblocks: the "Deep Learning Computation" chapter as Keras 3 parts.

Composition (`SequentialBlock`, `Parallel`, `Residual`, `repeat`), the
`Block` base class, deferred building (`materialize`), and the
submodules `layers`, `params`, `initializers`, `io`, `devices`,
`testing` and `choices` (the run's choices and the data set names).

The names below load on first use: `import kerasblocks` (or
`kerasblocks.choices`, which tools read before anything heavy) imports
no TensorFlow. The first public name used loads them all, which
registers every class with Keras, as importing the package did before.
"""

# ruff: noqa: F401  (_load reads its imports back through locals())

import os as _os

from kerasblocks import _lazy

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

__all__ = [
    "Block",
    "NotBuiltError",
    "Parallel",
    "Residual",
    "SequentialBlock",
    "devices",
    "initializers",
    "io",
    "layers",
    "materialize",
    "params",
    "register",
    "registered_objects",
    "repeat",
]


def _load() -> dict[str, object]:
    """Imports the public names (and so registers the classes)."""
    from kerasblocks import devices, initializers, io, layers, params
    from kerasblocks._registry import register, registered_objects
    from kerasblocks.block import Block
    from kerasblocks.composition import (
        Parallel,
        Residual,
        SequentialBlock,
        repeat,
    )
    from kerasblocks.deferred import NotBuiltError, materialize

    return locals()


__getattr__, __dir__ = _lazy.attach(__name__, __all__, _load)
