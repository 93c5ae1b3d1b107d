"""kerasblocks: the "Deep Learning Computation" chapter as Keras 3 parts.

Composition (`SequentialBlock`, `Parallel`, `Residual`, `repeat`), the
`Block` base class, deferred building (`materialize`), and the
submodules `layers`, `params`, `initializers`, `io`, `devices` and
`testing`.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasblocks import devices as devices  # noqa: E402
from kerasblocks import initializers as initializers  # noqa: E402
from kerasblocks import io as io  # noqa: E402
from kerasblocks import layers as layers  # noqa: E402
from kerasblocks import params as params  # noqa: E402
from kerasblocks._registry import register as register  # noqa: E402
from kerasblocks._registry import (  # noqa: E402
    registered_objects as registered_objects,
)
from kerasblocks.block import Block as Block  # noqa: E402
from kerasblocks.composition import Parallel as Parallel  # noqa: E402
from kerasblocks.composition import Residual as Residual  # noqa: E402
from kerasblocks.composition import SequentialBlock as SequentialBlock  # noqa: E402
from kerasblocks.composition import repeat as repeat  # noqa: E402
from kerasblocks.deferred import NotBuiltError as NotBuiltError  # noqa: E402
from kerasblocks.deferred import materialize as materialize  # noqa: E402

__version__ = "0.1.0"
