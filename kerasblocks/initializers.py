"""Custom initializers, registered for serialization.

`ThresholdedUniform` is the chapter's custom initializer (the book's
`MyInit`): uniform in [-10, 10], with every value of magnitude below 5
set to zero. `Dirac` makes a convolution (or dense) kernel start as the
identity map, the usual start for residual branches one wants to begin
as a no-op.
"""

from __future__ import annotations

import keras

from kerasblocks._registry import register


@register()
class ThresholdedUniform(keras.initializers.Initializer):
    """Uniform in [minval, maxval], zero where |value| < threshold.

    The defaults are the chapter's `MyInit`: U(-10, 10), zeroed below 5 in
    magnitude, so about half of the values are zero.

    Args:
        minval: lower bound of the uniform distribution.
        maxval: upper bound of the uniform distribution.
        threshold: values with a smaller magnitude become zero.
        seed: an int for reproducible values (the same on every call), or
            None.

    Example:

    >>> import numpy as np, kerasblocks
    >>> init = kerasblocks.initializers.ThresholdedUniform(seed=0)
    >>> w = np.asarray(init((4, 8)))
    >>> bool(np.all((w == 0) | (np.abs(w) >= 5)))
    True
    """

    def __init__(
        self,
        minval: float = -10.0,
        maxval: float = 10.0,
        threshold: float = 5.0,
        seed: int | None = None,
    ):
        if not minval < maxval:
            raise ValueError(
                f"minval must be below maxval. Received: {minval=}, {maxval=}"
            )
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0. Received: {threshold=}")
        self.minval = float(minval)
        self.maxval = float(maxval)
        self.threshold = float(threshold)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        values = keras.random.uniform(
            shape, self.minval, self.maxval, dtype=dtype, seed=self.seed
        )
        keep = keras.ops.cast(
            keras.ops.abs(values) >= self.threshold, values.dtype
        )
        return values * keep

    def get_config(self):
        return {
            "minval": self.minval,
            "maxval": self.maxval,
            "threshold": self.threshold,
            "seed": self.seed,
        }


# The book's name for it.
MyInit = ThresholdedUniform


@register()
class Dirac(keras.initializers.Initializer):
    """A kernel that maps each input channel to the same output channel.

    For a kernel of shape `(*spatial, in, out)` the centre tap is 1 where
    input index == output index (times `gain`), 0 elsewhere; extra output
    channels start at zero. A `Conv2D(padding="same")` or `Dense` layer so
    initialized (with a zero bias) is the identity when `in <= out`.

    Args:
        gain: the value on the diagonal.

    Example:

    >>> import numpy as np, kerasblocks
    >>> k = np.asarray(kerasblocks.initializers.Dirac()((3, 3, 2, 2)))
    >>> k[1, 1].tolist(), float(k.sum())
    ([[1.0, 0.0], [0.0, 1.0]], 2.0)
    """

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"Dirac needs a kernel of rank >= 2. Received: {shape=}"
            )
        *spatial, channels_in, channels_out = shape
        if not spatial:
            return keras.ops.eye(channels_in, channels_out, dtype=dtype) * (
                self.gain
            )
        centre = [s // 2 for s in spatial]
        diagonal = min(channels_in, channels_out)
        indices = [(*centre, i, i) for i in range(diagonal)]
        return keras.ops.scatter_update(
            keras.ops.zeros(shape, dtype=dtype),
            indices,
            keras.ops.full((diagonal,), self.gain, dtype=dtype),
        )

    def get_config(self):
        return {"gain": self.gain}
