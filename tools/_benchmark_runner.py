"""The step function of each benchmark configuration: `Runner` builds a
fresh model and the step a user of that mode would run (the modes are
described in `tools.benchmarking`), under a dtype policy if asked."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks.compile import compile_forward, compile_train_step

MODES = (
    "eager",
    "graph",
    "xla",
    "auto",
    "keras",
    "keras_tfdata",
    "handwritten",
)
TASKS = ("inference", "training")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def under_policy(
    make_model: Callable[[], keras.Model], policy: str
) -> Callable[[], keras.Model]:
    """`make_model`, building under the Keras dtype policy `policy`."""

    def make():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return make_model()
        finally:
            keras.config.set_dtype_policy(previous)

    return make


def sync(value):
    """Waits for every tensor in `value` (fetches it to the host)."""
    for t in tf.nest.flatten(value):
        if hasattr(t, "numpy"):
            t.numpy()


def repeat(function, n, *args):
    """Calls `function(*args)` `n` times; returns the last result."""
    value = None
    for _ in range(n):
        value = function(*args)
    return value


def random_labels(model, batch: int, seed: int):
    """`batch` seeded random int32 class ids for `model`'s output."""
    classes = model.output_shape[-1]
    return (
        np.random.default_rng(seed)
        .integers(0, classes, (batch,))
        .astype("int32")
    )


class Runner:
    """Builds the step function of one configuration."""

    def __init__(self, make_model: Callable[[], keras.Model], input_shape):
        self.make_model = make_model
        self.input_shape = tuple(input_shape)

    def build(self, task: str, mode: str, batch: int):
        """Returns (run(n), first-call seconds, info) for a configuration;
        run(n) runs n steps as a user of that mode would (one `fit` or
        `predict` call over n batches for "keras") and returns something
        to synchronize on."""
        keras.utils.set_random_seed(0)
        model = self.make_model()
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (batch, *self.input_shape)).astype("float32")
        y = random_labels(model, batch, 1)
        loss = keras.losses.SparseCategoricalCrossentropy()
        info: dict[str, Any] = {}
        start = time.perf_counter()
        if task == "inference":
            step = self._inference(model, mode, x, info)
        else:
            step = self._training(model, mode, x, y, loss, info)
        sync(step(1))
        return step, time.perf_counter() - start, info

    def _inference(self, model, mode, x, info):
        if mode == "keras_tfdata":
            raise ValueError("keras_tfdata is a training mode")
        if mode == "keras":
            return lambda n: model.predict(
                np.concatenate([x] * n), batch_size=len(x), verbose=0
            )
        if mode == "handwritten":
            function = tf.function(lambda t: model(t, training=False))
        else:
            function = compile_forward(
                model, (None, *self.input_shape), mode=mode
            )
            info["compiled"] = function
        tensor = tf.constant(x)
        return lambda n: repeat(function, n, tensor)

    def _training(self, model, mode, x, y, loss, info):
        optimizer = keras.optimizers.SGD(0.01)
        if mode == "keras":
            # Keras's defaults as a user writes them: compile() defaults,
            # fit() on NumPy arrays.
            model.compile(optimizer=optimizer, loss=loss)
            return lambda n: model.fit(
                np.concatenate([x] * n),
                np.concatenate([y] * n),
                batch_size=len(x),
                epochs=1,
                verbose=0,
            ).history["loss"][-1]
        if mode == "keras_tfdata":
            model.compile(optimizer=optimizer, loss=loss)
            options = tf.data.Options()
            options.autotune.enabled = False
            data = (
                tf.data.Dataset.from_tensors((x, y))
                .repeat()
                .with_options(options)
            )
            return lambda n: model.fit(
                data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False
            ).history["loss"][-1]
        if mode == "handwritten":
            variables = model.trainable_variables
            optimizer.build(variables)

            @tf.function
            def train(a, b):
                with tf.GradientTape() as tape:
                    value = loss(b, model(a, training=True))
                optimizer.apply(tape.gradient(value, variables), variables)
                return value

            tx, ty = tf.constant(x), tf.constant(y)
            return lambda n: repeat(train, n, tx, ty)
        step = compile_train_step(
            model, optimizer, loss, (None, *self.input_shape), mode=mode
        )
        tx, ty = tf.constant(x), tf.constant(y)
        info["compiled"] = step
        return lambda n: repeat(lambda a, b: step(a, b)["loss"], n, tx, ty)
