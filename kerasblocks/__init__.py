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

_loading = False


def _load() -> None:
    """Imports the public names (and so registers the classes)."""
    global _loading
    _loading = True
    try:
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

        loaded = locals()
        globals().update({name: loaded[name] for name in __all__})
    finally:
        _loading = False


def __getattr__(name: str):
    # While loading, a submodule asked for by `from kerasblocks import X`
    # is not an attribute yet; Python then takes it from sys.modules.
    if name in __all__ and not _loading:
        _load()
        return globals()[name]
    raise AttributeError(f"module 'kerasblocks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
