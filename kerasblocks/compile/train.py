"""`compile_train_step`: a training step that runs under any strategy.

Keras 3.15's `fit` fails under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585); this step does not. Per replica it computes the
loss (averaged over the global batch, plus scaled regularization), the
gradients (inside an XLA cluster in mode "xla"), and applies them with
the optimizer outside of it, so that the cross-replica gradient
reduction never has to be compiled by XLA. Mixed float16 gets dynamic
loss scaling.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks._validation import positive_int
from kerasblocks.compile._modes import (
    CompiledBase,
    Traced,
)
from kerasblocks.compile._signature import (
    check_values,
    conform,
    model_spec,
    normalize_spec,
)
from kerasblocks.deferred import materialize

PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")


def _check_in_scope(strategy, model, optimizer):
    for variable in model.weights[:1]:
        if not strategy.extended.variable_created_in_scope(variable.value):
            raise ValueError(
                f"Model '{model.name}' was not created under the strategy's "
                "scope; create (and build) it inside `with strategy.scope():`."
            )


class CompiledTrainStep(CompiledBase):
    """A compiled training step; see `compile_train_step`.

    Attributes:
        mode: "eager", "graph" or "xla" (for "auto", chosen on the first
            call; None before it).
        choice: what "auto" measured, or the requested mode.
        steps_per_execution: steps each `run` call executes per compiled
            call.
    """

    def __init__(
        self,
        model,
        optimizer,
        loss,
        input_spec,
        label_spec,
        mode,
        strategy,
        steps_per_execution,
        metrics,
    ):
        self.model = model
        self._set_mode(mode)
        self.strategy = strategy
        self.steps_per_execution = steps_per_execution
        self.input_spec = input_spec
        self.label_spec = label_spec
        self.metrics = list(metrics or [])
        self.loss = keras.losses.get(loss)
        if self.loss is None:
            raise ValueError(f"Unknown loss {loss!r}.")
        # Per-example values; the global-batch average comes after.
        self._per_example = (
            self.loss.call
            if isinstance(self.loss, keras.losses.Loss)
            else self.loss
        )
        if model.dtype_policy.name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            with strategy.scope():
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self.optimizer = optimizer
        with strategy.scope():
            self.optimizer.build(model.trainable_variables)
        self._gradients = self._counted = Traced(
            self._compute_gradients, None, "gradients"
        )
        self._loops: dict[str, Any] = {}
        self._single: dict[str, Any] = {}

    # -- the per-replica computation ---------------------------------

    def _compute_gradients(self, x, y):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            predictions = self.model(x, training=True)
            per_example = self._per_example(y, predictions)
            per_example = tf.cast(per_example, tf.float32)
            if per_example.shape.rank and per_example.shape.rank > 1:
                axes = list(range(1, per_example.shape.rank))
                per_example = tf.reduce_mean(per_example, axis=axes)
            loss = tf.nn.compute_average_loss(per_example)
            if self.model.losses:
                regularization = tf.add_n(
                    [tf.cast(v, tf.float32) for v in self.model.losses]
                )
                loss += regularization / replicas
            scaled = loss
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                scaled = self.optimizer.scale_loss(loss)
        variables = [v.value for v in self.model.trainable_variables]
        gradients = tape.gradient(scaled, variables)
        return loss, gradients, predictions

    def _replica_step(self, x, y, mode):
        function = self._gradients.variant(mode)
        loss, gradients, predictions = function(x, y)
        self.optimizer.apply(gradients, self.model.trainable_variables)
        for metric in self.metrics:
            metric.update_state(y, predictions)
        return loss

    def _step(self, x, y, mode):
        per_replica = self.strategy.run(self._replica_step, args=(x, y, mode))
        return self.strategy.reduce("SUM", per_replica, axis=None)

    # -- public calls ---------------------------------------------------

    def _single_step(self, mode):
        if mode not in self._single:
            if mode == "eager":
                self._single[mode] = lambda x, y: self._step(x, y, "eager")
            else:
                self._single[mode] = tf.function(
                    lambda x, y: self._step(x, y, mode),
                    input_signature=[self.input_spec, self.label_spec],
                )
        return self._single[mode]

    def _results(self, loss) -> dict[str, float]:
        results = {"loss": float(loss)}
        for metric in self.metrics:
            results[metric.name] = float(metric.result())
        return results

    def _snapshot(self):
        variables = list(self.model.variables) + list(self.optimizer.variables)
        for metric in self.metrics:
            variables += list(metric.variables)
        values = [np.array(v.numpy()) for v in variables]

        def restore():
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)

        return restore

    def __call__(self, x, y) -> dict[str, float]:
        """One training step on one batch (single-replica strategies)."""
        if self.strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "With several replicas, feed a distributed dataset through "
                "run(iterator, steps)."
            )
        x = conform(x, self.input_spec, f"{self.model.name} inputs")
        if self.label_spec is None:
            self.label_spec = tf.TensorSpec(
                [None, *np.shape(y)[1:]],
                tf.as_dtype(getattr(y, "dtype", np.asarray(y).dtype)),
                name="labels",
            )
        y = conform(y, self.label_spec, f"{self.model.name} labels")
        check_values(self.model, x, self.mode)
        what = f"model '{self.model.name}' (train step)"
        # "auto" times graph vs XLA on the real batch, undoing each step.
        loss = self._call_in_mode(
            _Adapter(self._single_step), (x, y), what, self._snapshot
        )
        return self._results(loss)

    def run(self, iterator, steps: int | None = None) -> dict[str, float]:
        """Runs `steps` steps (default `steps_per_execution`) from a
        (distributed) iterator, `steps_per_execution` per compiled call.

        Returns the loss of the last step and the metrics' results.
        """
        steps = steps or self.steps_per_execution
        if self.choice is None:
            # "auto" needs one real batch to measure on.
            x, y = next(iterator)
            if self.strategy.num_replicas_in_sync > 1:
                raise ValueError(
                    "mode='auto' with several replicas: choose 'graph' or "
                    "'xla' (measure it with the benchmark tool)."
                )
            results = self(x, y)
            steps -= 1
            if steps == 0:
                return results
        loss = None
        while steps > 0:
            chunk = min(steps, self.steps_per_execution)
            loss = self._loop(self.mode)(iterator, tf.constant(chunk))
            steps -= chunk
        return self._results(loss)

    def _loop(self, mode):
        if mode not in self._loops:

            def loop(iterator, count):
                loss = tf.constant(0.0)
                for _ in tf.range(count):
                    x, y = next(iterator)
                    loss = self._step(x, y, mode)
                return loss

            self._loops[mode] = loop if mode == "eager" else tf.function(loop)
        return self._loops[mode]


class _Adapter:
    """Lets `run_first_call` drive a CompiledTrainStep's single step."""

    def __init__(self, single_step):
        self._single_step = single_step

    def variant(self, mode):
        return self._single_step(mode)


def compile_train_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer | str,
    loss: Any,
    input_spec: Any = None,
    mode: str = "auto",
    *,
    label_spec: Any = None,
    strategy: tf.distribute.Strategy | None = None,
    steps_per_execution: int = 1,
    metrics: list | None = None,
) -> CompiledTrainStep:
    """A compiled training step for `model`, under any tf.distribute
    strategy.

    The model (and, for a string, the optimizer) must be created under
    `strategy.scope()`. A model whose dtype policy is "mixed_float16" gets
    a `LossScaleOptimizer`; "mixed_bfloat16" needs no loss scaling.

    Args:
        model: the model to train.
        optimizer: a Keras optimizer or its name.
        loss: a Keras loss (name, function or instance).
        input_spec: the input spec (batch dynamic); None takes it from a
            Functional model.
        mode: "eager", "graph", "xla" or "auto" (time graph vs XLA on the
            first batch, undoing those steps, and keep the faster).
        label_spec: the label spec; None infers it from the first batch.
        strategy: a tf.distribute strategy; the current one if None.
        steps_per_execution: steps per compiled call in `run`.
        metrics: Keras metrics updated by each step.

    Example:

    >>> import numpy as np, keras, kerasblocks
    >>> from kerasblocks.compile import compile_train_step
    >>> net = kerasblocks.layers.MLP(hidden_units=8, units=2)
    >>> step = compile_train_step(net, keras.optimizers.SGD(0.1),
    ...     "mse", (None, 3), mode="graph")
    >>> x, y = np.ones((4, 3)), np.zeros((4, 2))
    >>> first, second = step(x, y)["loss"], step(x, y)["loss"]
    >>> second < first, step.trace_count
    (True, 1)
    """
    strategy = strategy or tf.distribute.get_strategy()
    positive_int("steps_per_execution", steps_per_execution)
    spec = model_spec(model, input_spec)
    if not model.built:
        with strategy.scope():
            materialize(model, spec)
    _check_in_scope(strategy, model, optimizer)
    if isinstance(optimizer, str):
        with strategy.scope():
            optimizer = keras.optimizers.get(optimizer)
    labels = (
        None if label_spec is None else normalize_spec(label_spec, "labels")
    )
    return CompiledTrainStep(
        model,
        optimizer,
        loss,
        spec,
        labels,
        mode,
        strategy,
        steps_per_execution,
        metrics,
    )
