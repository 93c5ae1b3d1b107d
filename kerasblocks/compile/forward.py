"""`compile_forward`: a model's inference as a compiled function."""

from __future__ import annotations

from typing import Any

import keras

from kerasblocks.compile._modes import (
    CompiledBase,
    Traced,
)
from kerasblocks.compile._signature import (
    check_values,
    conform,
    model_spec,
)
from kerasblocks.deferred import materialize


class CompiledFunction(CompiledBase):
    """A model's forward pass compiled in one mode, with accounting.

    Attributes:
        mode: the mode in use ("eager", "graph" or "xla"); for "auto",
            what was chosen on the first call (None before it).
        choice: the `Choice` with first-call seconds and timings.
        input_spec: the signature (batch dimension dynamic).
    """

    def __init__(
        self, model: keras.Model, input_spec: Any, mode: str, training: bool
    ):
        self.model = model
        self._set_mode(mode)
        self.input_spec = input_spec
        self.training = training
        self._traced = self._counted = Traced(
            self._forward, [input_spec], f"{model.name} forward"
        )

    def _forward(self, inputs):
        return self.model(inputs, training=self.training)

    def __call__(self, inputs):
        inputs = conform(inputs, self.input_spec, f"{self.model.name} inputs")
        check_values(self.model, inputs, self.mode)
        what = f"model '{self.model.name}' (forward)"
        return self._call_in_mode(self._traced, (inputs,), what)

    def __repr__(self) -> str:
        return (
            f"<CompiledFunction {self.model.name} {self.choice or 'auto: '}"
            f"{'' if self.choice else 'not called yet'} traces="
            f"{self.trace_count}>"
        )


def compile_forward(
    model: keras.Model,
    input_spec: Any = None,
    mode: str = "auto",
    *,
    training: bool = False,
) -> CompiledFunction:
    """Compiles `model`'s forward pass for inputs matching `input_spec`.

    The batch dimension is dynamic: calling with batch sizes 1, 7 and 32
    traces once. Inputs that do not match the spec raise one clear
    ValueError. With mode="xla", an op XLA cannot compile raises
    `XlaCompilationError` naming the layer and op; with mode="auto" the
    graph variant is kept instead, with a warning.

    Args:
        model: a Keras model or layer.
        input_spec: a shape `(None, 28, 28, 1)`, a `tf.TensorSpec`, or a
            nest; None takes it from a Functional model's inputs.
        mode: "eager", "graph" (`tf.function`), "xla"
            (`jit_compile=True`) or "auto" (measure graph and XLA on the
            first call, keep the faster).
        training: run the model in training mode.

    Example:

    >>> import numpy as np, kerasblocks
    >>> from kerasblocks.compile import compile_forward
    >>> net = kerasblocks.layers.MLP(units=3)
    >>> forward = compile_forward(net, (None, 4), mode="graph")
    >>> [forward(np.ones((n, 4))).shape[0] for n in (1, 7, 32)]
    [1, 7, 32]
    >>> forward.trace_count
    1
    """
    spec = model_spec(model, input_spec)
    if not model.built:
        materialize(model, spec)
    return CompiledFunction(model, spec, mode, training)
