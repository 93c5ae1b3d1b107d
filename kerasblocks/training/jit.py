"""`--jit_compile=auto` for a run: decide cheaply, say it, keep it.

Measuring graph against XLA compiles the step twice (18 s for a
ResNet-18, 85 s for a MobileNetV2 on 2 CPU cores), so "auto" measures
only where the answer is not known and the run is long enough to repay
it. Whatever is used is recorded in the run directory (`compile.json`)
and reused on resume, so a resumed run (a deterministic one above all)
never switches between graph and XLA.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks import _keras_compat
from kerasblocks.training.config import TrainConfig

RECORD = "compile.json"
# Below this many steps, measuring costs more than XLA could save.
SHORT_RUN = 500
_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv2DTranspose,
)


def _has_convolutions(model: keras.Model) -> bool:
    return any(
        isinstance(layer, _CONVOLUTIONS)
        for layer in _keras_compat.flatten_layers(model)
    )


def plan_mode(
    config: TrainConfig,
    recorded: dict | None,
    model: keras.Model,
    total_steps: int,
    replicas: int,
) -> tuple[str, str]:
    """The mode to compile the step in ("graph", "xla", or "auto" to
    measure on the first batch) and why.

    Args:
        config: the run's settings (`jit_compile`).
        recorded: the run directory's `compile.json`, if any.
        model: the model to train.
        total_steps: the planned run length.
        replicas: replicas in sync.

    Example:

    >>> import keras
    >>> from kerasblocks.training import TrainConfig, jit
    >>> mlp = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> jit.plan_mode(TrainConfig(), None, mlp, 50, 1)
    ('graph', 'a short run (< 500 steps) does not repay measuring')
    >>> jit.plan_mode(TrainConfig(), {"mode": "xla"}, mlp, 50, 1)
    ('xla', 'chosen when the run started')
    """
    if config.jit_compile == "true":
        return "xla", "--jit_compile=true"
    if config.jit_compile == "false":
        return "graph", "--jit_compile=false"
    if recorded and recorded.get("mode") in ("graph", "xla"):
        return recorded["mode"], "chosen when the run started"
    if replicas > 1:
        return "graph", "several replicas (auto measures on one)"
    if total_steps < SHORT_RUN:
        return (
            "graph",
            f"a short run (< {SHORT_RUN} steps) does not repay measuring",
        )
    if not tf.config.list_physical_devices("GPU") and _has_convolutions(model):
        # Measured on these CPUs: oneDNN's graph kernels train
        # convolutions ~1.6x faster than XLA:CPU.
        return "graph", "convolutions on CPU: graph is known to win"
    return "auto", "measuring graph vs XLA on the first batch"
